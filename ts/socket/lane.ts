// SPDX-License-Identifier: MIT
/**
 * The Promise fast lane of one socket: `send(data) -> { bytes, zeroCopy }`
 * straight into the ring, with the same-tick {@link Coalescer} on stream
 * sockets.  Both the Duplex writes of {@link ZcSocket} and its `send()` go
 * through here, so they share one order.  The owner checks that the socket
 * is open; the lane counts what is in flight and settles it.
 */
import { ERRNO, SEND_FLAGS } from '../ffi/abi.gen.ts';
import type { SendOptions, SendOptionsInput } from '../config.ts';
import { ZcError, ZcOwnershipError } from '../errors.ts';
import { poolOf, type PoolBuffer } from '../pool.ts';
import type { Completion, Ring, RingRequest } from '../ring.ts';
import { Coalescer, COALESCE_MAX_SEND } from './coalescer.ts';
import { addressOf, iovecFor } from './memory.ts';
import { decodeSendArgs } from './send-args.ts';
import { sendFlags } from './send-flags.ts';
import { SendOptionsMemo } from './send-options.ts';
import { detached, failedSend, settleSend } from './send-result.ts';
import { zeroCopyCapable } from './sockopt.ts';
import type { SendResult } from './types.ts';

/**
 * Memory of a pool can only be sent on the pool's ring: another ring can
 * neither hold it while the kernel reads it nor keep its pool from being
 * unmapped and reused under the send.
 */
function checkRing(ring: Ring, pb: PoolBuffer | null, view: Uint8Array | null, op: string): void {
  const pool = pb ? pb.pool : view ? poolOf(view.buffer) : undefined;
  if (pool && pool.ring !== ring) {
    throw new ZcOwnershipError(
      op,
      `this memory belongs to a buffer pool of ring #${pool.ring.id}, the socket is on ring #${ring.id}: ` +
        'send pool memory on a socket of its own ring (or copy it into a Uint8Array)',
    );
  }
}

/** Sends of one fd through its ring. */
export class SendLane {
  readonly ring: Ring;
  /**
   * the fd sends go to; -1 from the moment the socket starts closing:
   * requests issued later (waiting in JS for a free slot) end with
   * ECANCELED instead of reaching the number, which the kernel may have
   * given to another socket by then
   */
  fd: number;
  /** stream socket: same-tick sends may coalesce */
  readonly stream: boolean;
  /** the family has zero-copy sends (not AF_UNIX): 'auto' may use them */
  readonly zcCapable: boolean;
  readonly #opts: SendOptionsMemo;
  readonly #coalescer: Coalescer;
  #inFlight = 0;
  #waiters: (() => void)[] = [];

  constructor(ring: Ring, fd: number, stream: boolean, defaults: SendOptions) {
    this.ring = ring;
    this.fd = fd;
    this.stream = stream;
    this.zcCapable = zeroCopyCapable(ring, fd);
    this.#opts = new SendOptionsMemo(defaults);
    this.#coalescer = new Coalescer(ring, () => this.fd, () => this.#settled());
  }

  /** sends not settled yet */
  get inFlight(): number {
    return this.#inFlight;
  }

  get defaults(): Readonly<SendOptions> {
    return this.#opts.defaults;
  }

  setDefaults(options: SendOptionsInput): void {
    this.#opts.setDefaults(options);
  }

  /** Resolves when every send made so far has settled. */
  settled(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }

  /**
   * Count a request the lane does not build itself (sendFile) as in
   * flight; call the returned function once when it settled.
   */
  begin(): () => void {
    this.#inFlight++;
    return () => this.#settled();
  }

  /** Issue this tick's coalesced sends now (before a shutdown or close). */
  flush(): void {
    this.#coalescer.flush();
  }

  #settled(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#waiters.length > 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    }
  }

  /**
   * One send (see ZcSocket.send).  `to` is an encoded sockaddr for
   * unconnected datagram sockets, else null.  `lent`: a PoolBuffer the
   * caller already lent (a Duplex write).  Throws ZcOwnershipError /
   * ZcConfigError / TypeError at once; kernel errors reject.
   */
  send(
    data: Uint8Array | PoolBuffer, options: SendOptionsInput | undefined, to: Buffer | null, opName: string, lent = false,
  ): Promise<SendResult> {
    const o = this.#opts.resolve(options);
    const ring = this.ring;
    const zc = ring.zc;
    const fd = this.fd;
    const { pb, view, off, len } = decodeSendArgs(data, o, opName);
    checkRing(ring, pb, view, opName);
    const flags = sendFlags(o, len, pb !== null, this.zcCapable);
    const wantZc = (flags & SEND_FLAGS.ZEROCOPY) !== 0;

    // Sends on a stream socket made in one tick leave together, like Node's
    // writev: small copying sends as one sendmsg, zero-copy sends from pool
    // buffers as one SENDMSG_ZC from registered memory.  One kernel op, one
    // notification and one record for all of them.
    if (o.coalesce && to === null && this.stream && len > 0) {
      if (!wantZc && len <= COALESCE_MAX_SEND) {
        if (pb && !lent) pb.lend(opName); // throws if in flight or released
        this.#inFlight++;
        return this.#coalescer.add(null, pb, view, off, len, flags);
      }
      if (wantZc && pb && ring.sendvFixed) {
        if (!lent) pb.lend(opName);
        this.#inFlight++;
        return this.#coalescer.add(pb.pool, pb, null, off, len, flags);
      }
    }
    this.#coalescer.flush(); // keep stream order

    let send: (ud: number) => number;
    if (pb) {
      if (!lent) pb.lend(opName); // throws if in flight or released
      const pool = pb.pool;
      if (to === null) {
        const poolPtr = pool.ptr;
        const idx = pb.index;
        send = (ud) => zc.zc_send_fixed(ring.ptr, fd, poolPtr, idx, off, len, flags, ud);
      } else {
        const iov = iovecFor(pool.baseAddress + BigInt(pb.index * pool.size + off), len);
        const sa = to;
        send = (ud) => zc.zc_sendmsg(ring.ptr, fd, iov, 1, sa, sa.length, flags, ud);
      }
    } else {
      const v = view as Uint8Array;
      if (to === null) {
        send = (ud) => zc.zc_send(ring.ptr, fd, v, len, flags, ud);
      } else {
        const iov = iovecFor(len > 0 ? addressOf(ring, v) : 0n, len);
        const sa = to;
        send = (ud) => zc.zc_sendmsg(ring.ptr, fd, iov, 1, sa, sa.length, flags, ud);
      }
    }

    this.#inFlight++;
    const held = pb;
    let issued = false;
    return new Promise<SendResult>((resolve, reject) => {
      const req: RingRequest = {
        opName,
        keep: view,
        // Checked when the request really goes to libzc (it may have waited
        // in JS for a free slot): the socket may be closing by then, and
        // the memory may have been detached.
        issue: (ud) => {
          if (this.fd !== fd) return -ERRNO.ECANCELED;
          if (detached(view, len)) return -ERRNO.EFAULT;
          const rc = send(ud);
          issued = rc === 0;
          return rc;
        },
        done: (c: Completion) => {
          if (held) held.unlend();
          this.#settled();
          settleSend(c, len, view, wantZc, opName, resolve, reject);
        },
        fail: (e: ZcError) => {
          if (held) held.unlend();
          this.#settled();
          reject(failedSend(e, issued));
        },
      };
      ring.enqueue(req);
    });
  }
}
