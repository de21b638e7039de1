// SPDX-License-Identifier: MIT
/**
 * How a socket closes: the graceful end (every send settled, then the fd
 * closed through the ring), the abortive close (reset, queued sends ended
 * at once), and the synchronous close of error paths and ring teardown.
 */
import { ERRNO, SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import type { Ring } from '../ring.ts';
import { ringOp } from './ring-op.ts';
import { setLingerZero } from './sockopt.ts';
import type { SocketKind } from './types.ts';

/**
 * Reset on close and stop both directions now (stream sockets get
 * SO_LINGER 0).  Queued sends end now and the close is not held behind
 * sends in flight: with the kernel's unified sends their completion waits
 * for the buffers, which only the reset at close frees.
 */
export function abortFd(ring: Ring, fd: number, kind: SocketKind): void {
  if (kind === 'stream') setLingerZero(ring, fd);
  ring.libc.shutdown(fd, SYS.SHUT_RDWR);
  const rp = ring.rawPtr;
  if (rp) ring.zc.zc_sock_abort(rp, fd);
}

/** Abort and close an fd libzc may know, synchronously (error paths). */
export function closeFdNow(ring: Ring, fd: number, kind: SocketKind): void {
  const rp = ring.rawPtr;
  if (rp) ring.zc.zc_sock_forget(rp, fd);
  abortFd(ring, fd, kind);
  ring.libc.close(fd);
}

/** What the close state machine needs from its socket. */
export interface CloseHost {
  readonly ring: Ring;
  readonly kind: SocketKind;
  /** close the fd when the socket closes (else libzc only forgets it) */
  readonly owned: boolean;
  /** the fd (-1 once closed) */
  readonly fd: number;
  /** issue sends batched in this tick (they come before the close) */
  flushSends(): void;
  /** resolves when every send/accept of the socket settled */
  drain(): Promise<void>;
  /** the fd is closed: forget it (fd = -1, untrack from the ring) */
  finished(): void;
}

/** The close state of one socket. */
export class CloseMachine {
  readonly #s: CloseHost;
  #closing: Promise<void> | null = null;
  #closed = false;
  #closeIssued = false;

  constructor(host: CloseHost) {
    this.#s = host;
  }

  /** true once a close started */
  get started(): boolean {
    return this.#closed || this.#closing !== null;
  }

  /** Throw EBADF when a close started. */
  check(op: string): void {
    if (this.started) throw new ZcError({ errno: ERRNO.EBADF, op, hint: 'the socket is closed' });
  }

  /** Wait until every send settled, then close the fd through the ring. */
  end(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      await this.#s.drain();
      await this.#closeFd();
    })();
    return this.#closing;
  }

  /** Abortive close; resolves once every Promise of the socket settled. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#s.flushSends();
    this.#abort();
    this.#closing = (async () => {
      await this.#closeFd();
      await this.#s.drain();
    })();
    return this.#closing;
  }

  #abort(): void {
    const s = this.#s;
    if (!s.owned || s.fd < 0) return;
    abortFd(s.ring, s.fd, s.kind);
  }

  async #closeFd(): Promise<void> {
    if (this.#closed) return;
    const s = this.#s;
    const fd = s.fd;
    const ring = s.ring;
    if (fd < 0 || ring.closed) {
      this.closeNow();
      return;
    }
    s.flushSends();
    if (s.owned) {
      this.#closeIssued = true;
      try {
        await ringOp(ring, 'close', (ud) => ring.zc.zc_close(ring.ptr, fd, ud));
      } catch (e) {
        // Canceled before it ran (the ring is closing): the fd is still open.
        if (!(e instanceof ZcError && e.code === 'ECANCELED')) throw e;
        ring.libc.close(fd);
      }
    } else {
      ring.zc.zc_sock_forget(ring.ptr, fd);
    }
    this.#finish();
  }

  #finish(): void {
    this.#closed = true;
    this.#s.finished();
  }

  /** Synchronous close of the fd (error paths and ring teardown). */
  closeNow(): void {
    if (this.#closed) return;
    const s = this.#s;
    const fd = s.fd;
    if (fd >= 0) {
      const rp = s.ring.rawPtr;
      if (rp) s.ring.zc.zc_sock_forget(rp, fd);
      // Once a ring close op was queued, that op (or its cancel path) owns the fd.
      if (s.owned && !this.#closeIssued) {
        this.#abort();
        s.ring.libc.close(fd);
      }
    }
    this.#finish();
  }
}
