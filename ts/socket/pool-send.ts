// SPDX-License-Identifier: MIT
/**
 * {@link PoolSend}: the ring request of a PoolBuffer sent with a callback
 * on a connected datagram socket (ZcDatagram.send(pb, options, cb)), the
 * loop that resends each buffer from its completion.  One object per
 * buffer and lane, kept on the buffer (`PoolBuffer.sendReq`) and reused by
 * each of its sends: what the last send resolved (the options object the
 * lane's memo returned, and from it the offset, length and flags) is not
 * worked out again while the options stay the same, and nothing is
 * allocated, pushed or popped per send.  Its settle is {@link SendOp}'s for
 * the same send (send-op.ts): the lane's count, bytesSent, the buffer
 * given back, then the callback (from a microtask while inside the send()
 * call that made it; an exception it throws is rethrown from a microtask,
 * not thrown into the ring's dispatch).
 * @internal
 */
import { ERRNO, SEND_FLAGS } from '../ffi/abi.gen.ts';
import { rethrowLater, ZcError } from '../errors.ts';
import type { PoolBuffer } from '../pool.ts';
import type { SendOptions } from '../config.ts';
import { zeroCopyOf, type BatchedRequest, type Completion } from '../ring.ts';
import type { BatchQueue } from '../batch.ts';
import { failedSend } from './send-result.ts';
import { later, type LaneHooks, type SendCallback } from './send-op.ts';

export class PoolSend implements BatchedRequest {
  readonly opName = 'send';
  readonly lane: LaneHooks;
  readonly pb: PoolBuffer;
  /** the resolved options off, len and flags were worked out for (null: none yet) */
  o: SendOptions | null = null;
  off = 0;
  len = 0;
  /** enum zc_send_flags */
  flags = 0;
  wantZc = false;
  /** the fd when it was made (the lane's may become -1 while it waits) */
  fd = -1;
  /** set when the kernel saw it (a failure later has an unknown count) */
  issued = false;
  /** inside the send() call that made it: the callback must wait */
  starting = false;
  /** the send in flight's callback; null between sends */
  cb: SendCallback | null = null;
  readonly #poolLo: number;
  readonly #poolHi: number;
  readonly #index: number;

  constructor(lane: LaneHooks, pb: PoolBuffer) {
    this.lane = lane;
    this.pb = pb;
    this.#poolLo = pb.pool.ptrLo;
    this.#poolHi = pb.pool.ptrHi;
    this.#index = pb.index;
  }

  /** What the options resolved to (checked by the lane before). */
  setShape(o: SendOptions, off: number, len: number, flags: number): void {
    this.o = o;
    this.off = off;
    this.len = len;
    this.flags = flags;
    this.wantZc = (flags & SEND_FLAGS.ZEROCOPY) !== 0;
  }

  /** Queue it in the ring's batch (or through enqueueBatched when that is not simple). */
  enqueue(): void {
    if (this.lane.ring.enqueueSendFixed(this, this.fd, this.#poolLo, this.#poolHi, this.#index, this.off, this.len, this.flags)) {
      this.issued = true;
    }
  }

  describe(q: BatchQueue, lo: number, hi: number): boolean {
    if (q.full) return false;
    q.sendFixed(this.fd, lo, hi, this.#poolLo, this.#poolHi, this.#index, this.off, this.len, this.flags);
    this.issued = true;
    return true;
  }

  /** Issue alone (after waiting in JS for a free request slot). */
  issue(ud: number): number {
    const lane = this.lane;
    this.issued = false;
    // The socket may be closing by now.
    if (lane.fd !== this.fd) return -ERRNO.ECANCELED;
    const ring = lane.ring;
    const rc = ring.zc.zc_send_fixed(ring.ptr, this.fd, this.pb.pool.ptr, this.#index, this.off, this.len, this.flags, ud);
    this.issued = rc === 0;
    return rc;
  }

  done(c: Completion): void {
    const lane = this.lane;
    lane.sendSettled();
    const bytes = c.auxNumber;
    const zeroCopy = zeroCopyOf(c, this.wantZc);
    const res = c.res;
    this.#finish(res < 0 ? new ZcError({ errno: res, op: 'send', bytesSent: bytes }) : null, bytes, zeroCopy);
  }

  fail(e: ZcError): void {
    this.lane.sendSettled();
    const err = failedSend(e, this.issued);
    this.#finish(err, err.bytesSent ?? 0, 'unknown');
  }

  refused(e: ZcError): void {
    this.issued = false;
    this.fail(e);
  }

  #finish(err: ZcError | null, bytes: number, zeroCopy: 'used' | 'copied' | 'unknown'): void {
    this.lane.bytesSent += bytes;
    const cb = this.cb!;
    // Free for the buffer's next send from here on (the callback's own).
    this.cb = null;
    this.pb.unlend();
    if (this.starting) {
      later(cb, err, bytes, zeroCopy);
      return;
    }
    // As SendOp.finish: a callback that throws costs no other settle.
    try {
      cb(err, bytes, zeroCopy);
    } catch (e) {
      rethrowLater(e);
    }
  }
}
