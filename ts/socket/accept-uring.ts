// SPDX-License-Identifier: MIT
/**
 * Accepting connections through the ring for a {@link ZcServer}: a
 * listening socket opened through the ring and one multishot accept
 * request (one request, one record per connection) kept in flight for it,
 * re-armed whenever the kernel ends it.
 */
import { COMP_FLAGS, ERRNO, SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import type { Completion, Ring, RingRequest, RingResource } from '../ring.ts';
import type { SocketAddress } from '../addr.ts';
import { closeFd, closeFdNow } from './close.ts';
import { openListener, type ListenSpec } from './factories.ts';
import { localAddressOf } from './sockopt.ts';

/** What the server hears from its acceptor. */
export interface AcceptSink {
  /** a new connection's fd (the sink owns it) */
  connection(fd: number): void;
  /** accept failed (EMFILE...); accepting goes on */
  error(err: ZcError): void;
  /** the ring closed under the server */
  ringClosed(): void;
}

/** Back-off before re-arming after an accept error (EMFILE...), so it does not spin. */
const RETRY_MS = 100;

export class UringAcceptor implements RingResource {
  readonly ring: Ring;
  readonly #sink: AcceptSink;
  #fd = -1;
  #req: RingRequest | null = null;
  #closing = false;
  #refed = true;
  #retry: NodeJS.Timeout | null = null;

  constructor(ring: Ring, sink: AcceptSink) {
    this.ring = ring;
    this.#sink = sink;
  }

  get fd(): number {
    return this.#fd;
  }

  /** Open the listening socket and start accepting; resolves with the bound address. */
  async listen(spec: ListenSpec): Promise<SocketAddress> {
    const fd = await openListener(this.ring, spec);
    if (this.#closing) {
      closeFdNow(this.ring, fd, false);
      throw new ZcError({ errno: ERRNO.ECANCELED, op: 'listen', hint: 'the server was closed while listen() was in progress' });
    }
    this.#fd = fd;
    this.ring.ownFd(fd); // closed with the ring if the thread is terminated
    this.ring.track(this);
    this.#arm();
    return localAddressOf(this.ring, fd) ?? { address: spec.host ?? '::', port: spec.port, family: 6 };
  }

  #arm(): void {
    if (this.#closing || this.#fd < 0 || this.#req || this.ring.closed) return;
    const ring = this.ring;
    const fd = this.#fd;
    const req: RingRequest = {
      opName: 'accept',
      issue: (ud) => ring.zc.zc_accept_multishot(ring.ptr, fd, ud),
      standing: true,
      done: (c) => this.#record(req, c),
      fail: (e) => this.#ended(req, e),
    };
    this.#req = req;
    ring.enqueue(req);
    if (!this.#refed && this.#req === req) ring.refRequest(req, false);
  }

  #record(req: RingRequest, c: Completion): void {
    // multishot: the request goes on while records carry MORE; the last one
    // (a CQ overflow can end it with a connection) re-arms, even when a
    // 'connection' listener threw (the exception still reaches the caller)
    const last = !(c.flags & COMP_FLAGS.MORE);
    try {
      if (c.res >= 0) {
        if (this.#closing) closeFdNow(this.ring, c.res, true);
        else this.#sink.connection(c.res);
      }
    } finally {
      if (last) this.#ended(req, c.res < 0 ? new ZcError({ errno: c.res, op: 'accept' }) : null);
    }
  }

  #ended(req: RingRequest, err: ZcError | null): void {
    if (this.#req === req) this.#req = null;
    if (this.#closing) return;
    if (err && err.code !== 'ECANCELED') {
      this.#sink.error(err);
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.#arm();
      }, RETRY_MS);
      if (!this.#refed) this.#retry.unref();
      return;
    }
    this.#arm();
  }

  /** Stop accepting and close the listening socket. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#retry) clearTimeout(this.#retry);
    const fd = this.#fd;
    if (fd < 0) return;
    // shutdown() on a listening socket ends the accept in flight at once.
    this.ring.libc.shutdown(fd, SYS.SHUT_RDWR);
    await closeFd(this.ring, fd, false);
    this.#fd = -1;
    this.ring.untrack(this);
  }

  ref(on: boolean): void {
    this.#refed = on;
    if (this.#req) this.ring.refRequest(this.#req, on);
    if (this.#retry) {
      if (on) this.#retry.ref();
      else this.#retry.unref();
    }
  }

  /** @internal Ring.close() */
  destroyFromRing(): void {
    this.#closing = true;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#fd >= 0) closeFdNow(this.ring, this.#fd, false);
    this.#fd = -1;
    this.#sink.ringClosed();
  }
}
