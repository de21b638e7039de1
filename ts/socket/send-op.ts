// SPDX-License-Identifier: MIT
/**
 * One send of the fast lane as the ring sees it, with no closure per send:
 * {@link SendOp} is what the caller gave and how it is told the outcome (a
 * callback, or the resolve/reject of a Promise); {@link SingleSend} is a
 * send that goes alone, a {@link BatchedRequest} the ring writes into the
 * tick's batch (`describe`) or, after backpressure, issues by itself
 * (`issue`).  The settle rules are send-result.ts's: whole or rejected with
 * the errno and bytesSent.
 * @internal
 */
import { ERRNO } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import type { PoolBuffer } from '../pool.ts';
import { zeroCopyOf, type BatchedRequest, type Completion, type Ring } from '../ring.ts';
import type { BatchQueue } from '../batch.ts';
import { BatchQueue as Q } from '../batch.ts';
import { addressNumber, poolAddresses, iovecFor, addressOf } from './memory.ts';
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
}

/** One send the caller made: its bytes and how to tell it the outcome. */
export class SendOp {
  /** set when the kernel saw it (a failure later has an unknown count) */
  issued = false;
  cb: SendCallback | null = null;
  /** enum zc_send_flags */
  flags = 0;
  /** may leave with other sends of its tick */
  coalesce = true;
  /** inside the send() call that made it: a callback must wait */
  starting = false;
  resolve: ((r: SendResult) => void) | null = null;
  reject: ((e: unknown) => void) | null = null;

  constructor(
    readonly opName: string,
    readonly pb: PoolBuffer | null,
    /** a Uint8Array's bytes (also kept alive by holding it), or null */
    readonly view: Uint8Array | null,
    readonly off: number,
    readonly len: number,
    readonly wantZc: boolean,
  ) {}

  /** The send is over: `bytes` left, `err` why not all of them (null: all did). */
  finish(err: ZcError | null, bytes: number, zeroCopy: ZeroCopyUse): void {
    if (this.pb) this.pb.unlend();
    if (detached(this.view, this.len)) err = detachedError(this.opName, bytes, this.issued);
    const cb = this.cb;
    if (cb) {
      if (this.starting) queueMicrotask(() => cb(err, bytes, zeroCopy));
      else cb(err, bytes, zeroCopy);
      return;
    }
    if (err) this.reject!(err);
    else this.resolve!({ bytes, zeroCopy });
  }

  /** Settle from this send's own record. */
  settle(c: Completion): void {
    const bytes = c.auxNumber;
    if (c.res < 0) this.finish(new ZcError({ errno: c.res, op: this.opName, bytesSent: bytes }), bytes, zeroCopyOf(c, this.wantZc));
    else this.finish(null, bytes, zeroCopyOf(c, this.wantZc));
  }

  /** Settle with an error that came before any record. */
  fail(e: ZcError): void {
    const err = failedSend(e, this.issued);
    this.finish(err, err.bytesSent ?? 0, 'unknown');
  }
}

/** A send that is its own ring request: one descriptor in the tick's batch. */
export class SingleSend implements BatchedRequest {
  readonly opName: string;
  /** memory the kernel may read until the record */
  readonly keep: Uint8Array | null;

  constructor(
    private readonly lane: LaneHooks,
    private readonly op: SendOp,
    private readonly fd: number,
    private readonly flags: number,
    /** encoded destination (unconnected datagram socket), or null */
    private readonly to: Buffer | null,
  ) {
    this.opName = op.opName;
    this.keep = op.view;
  }

  describe(q: BatchQueue, lo: number, hi: number): boolean {
    if (q.full) return false;
    const { pb, view, off, len } = this.op;
    const to = this.to;
    const fd = this.fd;
    if (to === null) {
      if (pb) q.sendFixed(fd, lo, hi, poolAddresses(pb.pool).ptr, pb.index, off, len, this.flags);
      else q.send(fd, lo, hi, len > 0 ? addressNumber(this.lane.ring, view as Uint8Array) : 0, len, this.flags);
    } else {
      const at = q.reserve(Q.IOV_SIZE + to.length);
      if (at < 0) return false;
      const addr = pb
        ? poolAddresses(pb.pool).base + pb.index * pb.pool.size + off
        : len > 0 ? addressNumber(this.lane.ring, view as Uint8Array) : 0;
      q.iovec(at, addr, len);
      q.copy(at + Q.IOV_SIZE, to);
      q.sendmsg(fd, lo, hi, at, 1, at + Q.IOV_SIZE, to.length, this.flags);
    }
    this.op.issued = true;
    return true;
  }

  /** Issue alone (after waiting in JS for a free request slot). */
  issue(ud: number): number {
    const op = this.op;
    const lane = this.lane;
    op.issued = false;
    // The socket may be closing, or the array detached, by now.
    if (lane.fd !== this.fd) return -ERRNO.ECANCELED;
    if (detached(op.view, op.len)) return -ERRNO.EFAULT;
    const ring = lane.ring;
    const zc = ring.zc;
    const { pb, view, off, len } = op;
    let rc: number;
    if (this.to === null) {
      rc = pb
        ? zc.zc_send_fixed(ring.ptr, this.fd, pb.pool.ptr, pb.index, off, len, this.flags, ud)
        : zc.zc_send(ring.ptr, this.fd, view as Uint8Array, len, this.flags, ud);
    } else {
      const addr = pb ? pb.pool.baseAddress + BigInt(pb.index * pb.pool.size + off) : len > 0 ? addressOf(ring, view as Uint8Array) : 0n;
      rc = zc.zc_sendmsg(ring.ptr, this.fd, iovecFor(addr, len), 1, this.to, this.to.length, this.flags, ud);
    }
    op.issued = rc === 0;
    return rc;
  }

  done(c: Completion): void {
    this.lane.sendSettled();
    this.op.settle(c);
  }

  fail(e: ZcError): void {
    this.lane.sendSettled();
    this.op.fail(e);
  }

  refused(e: ZcError): void {
    this.op.issued = false;
    this.fail(e);
  }
}
