// SPDX-License-Identifier: MIT
/**
 * One send of the fast lane as the ring sees it, with no closure per send:
 * {@link SendOp} is what the caller gave and how it is told the outcome (a
 * callback, or the resolve/reject of a Promise); a send that goes alone is
 * its own {@link BatchedRequest}, which the ring writes into the tick's
 * batch (`describe`) or, after backpressure, issues by itself (`issue`).
 * The settle rules are send-result.ts's: whole or rejected with the errno
 * and bytesSent.
 * @internal
 */
import { ERRNO, SEND_FLAGS } from '../ffi/abi.gen.ts';
import { rethrowLater, ZcError } from '../errors.ts';
import type { PoolBuffer } from '../pool.ts';
import type { Chunk } from '../recv.ts';
import { zeroCopyOf, type BatchedRequest, type Completion, type Ring } from '../ring.ts';
import type { BatchQueue } from '../batch.ts';
import { BatchQueue as Q } from '../batch.ts';
import { iovecFor } from './memory.ts';
import { detached, detachedError, failedSend } from './send-result.ts';
import type { SendCallback, SendResult } from './types.ts';

export type ZeroCopyUse = SendResult['zeroCopy'];
export type { SendCallback } from './types.ts';

/** What the lane does when any of its sends settles. */
export interface LaneHooks {
  readonly ring: Ring;
  /** the fd sends go to; -1 once the socket started closing */
  readonly fd: number;
  /** one send settled (its buffer given back) */
  sendSettled(): void;
  /**
   * bytes the kernel took from this lane's sends that are not Duplex
   * writes (opName 'write': the socket counts those itself), whole or cut
   * short: with the socket's own count, its bytesWritten
   */
  bytesSent: number;
  /**
   * A send that went alone is over and nothing refers to it any more: the
   * lane may reuse the object for its next send (no allocation, and no
   * young object stored into the ring's tables, per send).
   */
  recycle(op: SendOp): void;
}

/**
 * Run a callback from a microtask.  Not an arrow inside SendOp.finish:
 * V8 allocates the context of the variables an arrow captures when the
 * function is entered, so finish() would allocate one on every send.
 */
export function later(cb: SendCallback, err: ZcError | null, bytes: number, zeroCopy: ZeroCopyUse): void {
  queueMicrotask(() => cb(err, bytes, zeroCopy));
}

/**
 * One send the caller made: its bytes, how to tell it the outcome, and,
 * when it goes alone (not coalesced), the ring request itself (one object
 * per send: no wrapper).
 */
export class SendOp implements BatchedRequest {
  /** set when the kernel saw it (a failure later has an unknown count) */
  issued = false;
  /** may leave with other sends of its tick */
  coalesce = true;
  /** inside the send() call that made it: a callback must wait */
  starting = false;
  resolve: ((r: SendResult) => void) | null = null;
  reject: ((e: unknown) => void) | null = null;
  /** zero-copy asked (flags has ZEROCOPY) */
  wantZc = false;
  opName = '';
  pb: PoolBuffer | null = null;
  /** a Uint8Array's bytes (also kept alive by holding it), or null */
  view: Uint8Array | null = null;
  off = 0;
  len = 0;
  /** a received chunk this send took (its bytes are at addr), given back when it settles; else null */
  chunk: Chunk | null = null;
  /** a Uint8Array's or a chunk's send address (the lane's, checked for the ring), else 0 */
  addr = 0;
  /** enum zc_send_flags */
  flags = 0;
  /** the fd when it was made (the lane's may become -1 while it waits) */
  private fd = -1;
  /** encoded destination (unconnected datagram socket), or null */
  private to: Buffer | null = null;
  /** the callback form's callback; null: a Promise's resolve/reject are set */
  cb: SendCallback | null = null;

  constructor(private readonly lane: LaneHooks) {}

  /**
   * What one send is (a new object, or one its lane recycled: every field
   * is set here).
   */
  init(
    opName: string, pb: PoolBuffer | null, view: Uint8Array | null, off: number, len: number, addr: number, flags: number,
    fd: number, to: Buffer | null, cb: SendCallback | null, chunk: Chunk | null = null,
  ): this {
    this.issued = false;
    this.coalesce = true;
    this.starting = false;
    this.resolve = null;
    this.reject = null;
    this.wantZc = (flags & SEND_FLAGS.ZEROCOPY) !== 0;
    this.opName = opName;
    this.pb = pb;
    this.view = view;
    this.off = off;
    this.len = len;
    this.addr = addr;
    this.flags = flags;
    this.fd = fd;
    this.to = to;
    this.cb = cb;
    this.chunk = chunk;
    return this;
  }

  /** Drop what a recycled op would keep alive (the lane's free list). */
  clear(): void {
    this.pb = null;
    this.chunk = null;
    this.view = null;
    this.to = null;
    this.cb = null;
    this.resolve = null;
    this.reject = null;
  }

  /**
   * The send is over: `bytes` left, `err` why not all of them (null: all
   * did).  `alone`: it went as its own ring request, which is over, so
   * the lane may reuse this object once the caller has been told (a
   * coalesced send's batch still holds it).
   */
  finish(err: ZcError | null, bytes: number, zeroCopy: ZeroCopyUse, alone = false): void {
    if (this.opName !== 'write') this.lane.bytesSent += bytes;
    const pb = this.pb;
    const chunk = this.chunk;
    if (pb !== null) pb.unlend();
    else if (chunk !== null) {
      // The memory of a chunk the send took goes back to the kernel (once: sent() and this both see to it).
      this.chunk = null;
      chunk.sent();
    } else if (detached(this.view, this.len)) err = detachedError(this.opName, bytes, this.issued);
    const cb = this.cb;
    if (cb !== null) {
      if (this.starting) {
        later(cb, err, bytes, zeroCopy);
        return;
      }
      // Recycled before the callback runs: the send it makes reuses it.
      if (alone) this.lane.recycle(this);
      // A callback that throws must not cost the sends settled after it
      // in the same loop (a coalesced request's, a refused batch's, the
      // ring's close) their settle: its exception is an uncaught one, as
      // from queueMicrotask, and the caller's loop goes on.
      try {
        cb(err, bytes, zeroCopy);
      } catch (e) {
        rethrowLater(e);
      }
      return;
    }
    const resolve = this.resolve!;
    const reject = this.reject!;
    if (alone) this.lane.recycle(this);
    if (err) reject(err);
    else resolve({ bytes, zeroCopy });
  }

  /** Settle from this send's own record. */
  settle(c: Completion, alone = false): void {
    const bytes = c.auxNumber;
    const res = c.res;
    const zeroCopy = zeroCopyOf(c, this.wantZc);
    if (res < 0) this.finish(new ZcError({ errno: res, op: this.opName, bytesSent: bytes }), bytes, zeroCopy, alone);
    else this.finish(null, bytes, zeroCopy, alone);
  }

  /** Settle with an error that came before any record (the lane's count is the caller's). */
  failWith(e: ZcError, alone = false): void {
    const err = failedSend(e, this.issued);
    this.finish(err, err.bytesSent ?? 0, 'unknown', alone);
  }

  // The ring request of a send that goes alone: one descriptor in the tick's batch.

  describe(q: BatchQueue, lo: number, hi: number): boolean {
    if (q.full) return false;
    const pb = this.pb;
    const to = this.to;
    const len = this.len;
    if (to === null) {
      if (pb !== null) q.sendFixed(this.fd, lo, hi, pb.pool.ptrLo, pb.pool.ptrHi, pb.index, this.off, len, this.flags);
      else q.send(this.fd, lo, hi, this.addr, len, this.flags);
    } else {
      const at = q.reserve(Q.IOV_SIZE + to.length);
      if (at < 0) return false;
      const addr = pb ? pb.pool.baseNumber + pb.index * pb.pool.size + this.off : this.addr;
      q.iovec(at, addr, len);
      q.copy(at + Q.IOV_SIZE, to);
      q.sendmsg(this.fd, lo, hi, at, 1, at + Q.IOV_SIZE, to.length, this.flags);
    }
    this.issued = true;
    return true;
  }

  /** Issue alone (after waiting in JS for a free request slot). */
  issue(ud: number): number {
    const lane = this.lane;
    this.issued = false;
    // The socket may be closing, or the array detached, by now.
    if (lane.fd !== this.fd) return -ERRNO.ECANCELED;
    if (detached(this.view, this.len)) return -ERRNO.EFAULT;
    const ring = lane.ring;
    const zc = ring.zc;
    const { pb, view, off, len } = this;
    let rc: number;
    if (this.to === null) {
      if (pb) rc = zc.zc_send_fixed(ring.ptr, this.fd, pb.pool.ptr, pb.index, off, len, this.flags, ud);
      else if (view) rc = zc.zc_send(ring.ptr, this.fd, view, len, this.flags, ud);
      // a chunk's bytes, by their address
      else rc = zc.zc_sendmsg(ring.ptr, this.fd, iovecFor(BigInt(this.addr), len), 1, null, 0, this.flags, ud);
    } else {
      const addr = pb
        ? pb.pool.baseAddress + BigInt(pb.index * pb.pool.size + off)
        : BigInt(this.addr); // a view's or a received chunk's, as the lane found it
      rc = zc.zc_sendmsg(ring.ptr, this.fd, iovecFor(addr, len), 1, this.to, this.to.length, this.flags, ud);
    }
    this.issued = rc === 0;
    return rc;
  }

  done(c: Completion): void {
    this.lane.sendSettled();
    this.settle(c, true);
  }

  fail(e: ZcError): void {
    this.lane.sendSettled();
    this.failWith(e, true);
  }

  refused(e: ZcError): void {
    this.issued = false;
    this.fail(e);
  }
}
