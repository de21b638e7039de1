// SPDX-License-Identifier: MIT
/**
 * The same-tick coalescer of one stream socket: sends made in one tick
 * leave as one request, like Node's writev.  Copying sends as one sendmsg
 * (struct iovec list), zero-copy sends from one registered region of a
 * pool as one SENDMSG_ZC (struct zc_span list); a batch of one is a plain
 * send.  The batch is described into the ring's tick batch by the ring's
 * flush hook (once per tick), or earlier by {@link Coalescer.flush} when
 * stream order needs it.  Each send settles with its own bytes.
 */
import { ERRNO, LAYOUT, LIMITS } from '../ffi/abi.gen.ts';
import { rethrowLater, ZcError } from '../errors.ts';
import type { BufferPool, PoolBuffer } from '../pool.ts';
import { zeroCopyOf, type BatchedRequest, type BatchQueue, type Completion, type Ring } from '../ring.ts';
import { BatchQueue as Q } from '../batch.ts';
import type { LaneHooks, SendOp } from './send-op.ts';
import { detached } from './send-result.ts';

/** Copying sends up to this size are coalesced into one sendmsg per tick. */
export const COALESCE_MAX_SEND = 64 * 1024;
/**
 * Bytes one coalesced request carries at most (unless one send is larger).
 * Also what keeps a window of zero-copy sends pipelined: a request's
 * buffers come back together, so one huge request would drain the pipe.
 */
export const COALESCE_MAX_BATCH = 256 * 1024;
const IOV_SIZE = LAYOUT.iovec.size;
const IOV_BASE = LAYOUT.iovec.fields.iov_base.offset;
const IOV_LEN = LAYOUT.iovec.fields.iov_len.offset;
const SPAN = LAYOUT.zc_span;
const ZC_MAX_IOV = LIMITS.ZC_MAX_IOV;

/** Sends of one tick that leave as one ring request. */
class CoalescedSend implements BatchedRequest {
  readonly opName = 'send';
  /** the sends (their Uint8Arrays stay alive through this) */
  readonly keep: SendOp[] = [];
  bytes = 0;

  constructor(
    private readonly lane: LaneHooks,
    readonly fd: number,
    readonly flags: number,
    /** zero-copy from this pool's registered region; null: a copying send */
    readonly pool: BufferPool | null,
    readonly region: number,
  ) {}

  describe(q: BatchQueue, lo: number, hi: number): boolean {
    if (q.full) return false;
    const ops = this.keep;
    const n = ops.length;
    const fd = this.fd;
    const pool = this.pool;
    if (n === 1) {
      const e = ops[0]!;
      if (e.pb) q.sendFixed(fd, lo, hi, e.pb.pool.ptrLo, e.pb.pool.ptrHi, e.pb.index, e.off, e.len, this.flags);
      else q.send(fd, lo, hi, e.addr, e.len, this.flags);
    } else if (pool) {
      const at = q.reserve(n * Q.SPAN_SIZE);
      if (at < 0) return false;
      for (let i = 0; i < n; i++) {
        const e = ops[i]!;
        q.span(at + i * Q.SPAN_SIZE, (e.pb as PoolBuffer).index, e.off, e.len);
      }
      q.sendvFixed(fd, lo, hi, pool.ptrAddress, at, n, this.flags);
    } else {
      const at = q.reserve(n * Q.IOV_SIZE);
      if (at < 0) return false;
      for (let i = 0; i < n; i++) {
        const e = ops[i]!;
        const addr = e.pb ? e.pb.pool.baseNumber + e.pb.index * e.pb.pool.size + e.off : e.addr;
        q.iovec(at + i * Q.IOV_SIZE, addr, e.len);
      }
      q.sendmsg(fd, lo, hi, at, n, -1, 0, this.flags);
    }
    for (const e of ops) e.issued = true;
    return true;
  }

  /** Issue alone (after waiting in JS for a free request slot). */
  issue(ud: number): number {
    const ring = this.lane.ring;
    const zc = ring.zc;
    const ops = this.keep;
    const n = ops.length;
    const pool = this.pool;
    for (const e of ops) e.issued = false;
    // The socket may be closing, or an array detached, by now.
    if (this.lane.fd !== this.fd) return -ERRNO.ECANCELED;
    if (ops.some((e) => detached(e.view, e.len))) return -ERRNO.EFAULT;
    const vec = Buffer.alloc(ZC_MAX_IOV * IOV_SIZE);
    let rc: number;
    if (pool && n === 1) {
      const e = ops[0]!;
      rc = zc.zc_send_fixed(ring.ptr, this.fd, pool.ptr, (e.pb as PoolBuffer).index, e.off, e.len, this.flags, ud);
    } else if (pool) {
      ops.forEach((e, i) => {
        vec.writeUInt32LE((e.pb as PoolBuffer).index, i * SPAN.size + SPAN.fields.buf.offset);
        vec.writeUInt32LE(e.off, i * SPAN.size + SPAN.fields.off.offset);
        vec.writeUInt32LE(e.len, i * SPAN.size + SPAN.fields.len.offset);
      });
      rc = zc.zc_sendv_fixed(ring.ptr, this.fd, pool.ptr, vec, n, this.flags, ud);
    } else {
      ops.forEach((e, i) => {
        const addr = e.pb
          ? e.pb.pool.baseAddress + BigInt(e.pb.index * e.pb.pool.size + e.off)
          : BigInt(e.addr); // a view's or a received chunk's, as the lane found it
        vec.writeBigUInt64LE(addr, i * IOV_SIZE + IOV_BASE);
        vec.writeBigUInt64LE(BigInt(e.len), i * IOV_SIZE + IOV_LEN);
      });
      rc = zc.zc_sendmsg(ring.ptr, this.fd, vec, n, null, 0, this.flags, ud);
    }
    for (const e of ops) e.issued = rc === 0;
    return rc;
  }

  done(c: Completion): void {
    // The record counts the bytes the kernel took for the whole request
    // (aux): they are the first sends' bytes, in order.  A send whose
    // bytes all left resolves; the one cut short and those after it
    // reject with the record's errno and what of each did leave.
    const zeroCopy = this.pool ? zeroCopyOf(c, true) : 'copied';
    const errno = c.res < 0 ? c.res : ERRNO.EIO;
    let left = c.auxNumber;
    for (const e of this.keep) {
      const bytes = Math.min(e.len, left);
      left -= bytes;
      this.lane.sendSettled();
      e.finish(bytes === e.len ? null : new ZcError({ errno, op: e.opName, bytesSent: bytes }), bytes, zeroCopy);
    }
  }

  fail(err: ZcError): void {
    for (const e of this.keep) {
      this.lane.sendSettled();
      e.failWith(err);
    }
  }

  refused(err: ZcError): void {
    for (const e of this.keep) e.issued = false;
    this.fail(err);
  }
}

/**
 * The coalescers of one ring that hold sends for this tick's flush.  One
 * pre-flush hook per ring and flush runs them all, each through a method
 * call V8 can inline, instead of one hook per socket: the ring's hook list
 * also holds the receive areas' release hooks, so calling a socket's own
 * arrow from it was a generic (megamorphic) call per socket and flush
 * (docs/PERFORMANCE.md, Session 18, rr1000).
 */
class FlushGroup {
  readonly #ring: Ring;
  /**
   * coalescers to flush, in the order their first send of the tick came:
   * the first #n entries (a count, not `length = 0` after each flush, which
   * drops the array's storage and has the next tick's add allocate anew)
   */
  #pending: (Coalescer | undefined)[] = [];
  #n = 0;
  /** the other list, while not in use (the two take turns, as the ring's hook lists) */
  #spare: (Coalescer | undefined)[] | null = [];
  /**
   * The pre-flush hook: flush each; one that throws does not cost the
   * others their flush (its exception is rethrown from a microtask, as the
   * ring does per hook).  A coalescer added while this runs (a settle
   * callback that sends) goes into a new list with a hook of its own,
   * which the ring runs in this flush, or in a flush nested in it, as it
   * would a socket's own hook.  The work in the arrow itself, not a call
   * of a method from it: one frame less per flush (docs/PERFORMANCE.md,
   * Session 27, lean27).
   */
  readonly #hook = (): void => {
    const p = this.#pending;
    const n = this.#n;
    this.#pending = this.#spare ?? [];
    this.#n = 0;
    this.#spare = null;
    for (let i = 0; i < n; i++) {
      const c = p[i] as Coalescer;
      p[i] = undefined;
      try {
        c.flushQueued();
      } catch (e) {
        rethrowLater(e);
      }
    }
    this.#spare = p;
  };

  constructor(ring: Ring) {
    this.#ring = ring;
  }

  /** `c` has sends for this tick's flush (once until it ran). */
  add(c: Coalescer): void {
    if (this.#n === 0) this.#ring.beforeFlush(this.#hook);
    this.#pending[this.#n++] = c;
  }
}

const groups = new WeakMap<Ring, FlushGroup>();

function flushGroupOf(ring: Ring): FlushGroup {
  let g = groups.get(ring);
  if (g === undefined) {
    g = new FlushGroup(ring);
    groups.set(ring, g);
  }
  return g;
}

/**
 * Batches the sends of one socket made during one tick.  The first send of
 * a tick waits alone (no batch object): when no other joins it, it goes as
 * its own ring request (the SendOp itself), which its lane can reuse.
 */
export class Coalescer {
  readonly #lane: LaneHooks;
  #batch: CoalescedSend | null = null;
  /** the tick's first send while it is alone, and what it was added with */
  #single: SendOp | null = null;
  #singlePool: BufferPool | null = null;
  #singleRegion = 0;
  #singleFd = -1;
  readonly #group: FlushGroup;
  /** in its ring's FlushGroup for the coming flush */
  #queued = false;

  constructor(lane: LaneHooks) {
    this.#lane = lane;
    this.#group = flushGroupOf(lane.ring);
  }

  /**
   * Add one send (its PoolBuffer already lent) to this tick's batch.
   * `pool` non-null: zero-copy from that pool's registered memory; null: a
   * copying send of the op's PoolBuffer or Uint8Array.
   */
  add(op: SendOp, pool: BufferPool | null, flags: number): void {
    const region = pool && op.pb ? Math.floor(op.pb.index / pool.regionBuffers) : 0;
    let b = this.#batch;
    if (
      b &&
      (b.flags !== flags ||
        b.pool !== pool ||
        b.region !== region ||
        b.keep.length === ZC_MAX_IOV ||
        b.bytes + op.len > COALESCE_MAX_BATCH)
    ) {
      this.flush();
      b = null;
    }
    const s = this.#single;
    if (s) {
      if (s.flags !== flags || this.#singlePool !== pool || this.#singleRegion !== region || s.len + op.len > COALESCE_MAX_BATCH) {
        this.flush();
      } else {
        // A second send joins the first: now a batch.
        b = new CoalescedSend(this.#lane, this.#singleFd, flags, pool, region);
        b.keep.push(s);
        b.bytes = s.len;
        this.#single = null;
        this.#singlePool = null;
        this.#batch = b;
      }
    }
    if (b) {
      b.keep.push(op);
      b.bytes += op.len;
      return;
    }
    this.#single = op;
    this.#singlePool = pool;
    this.#singleRegion = region;
    this.#singleFd = this.#lane.fd;
    if (!this.#queued) {
      this.#queued = true;
      this.#group.add(this);
    }
  }

  /** @internal The ring's flush (FlushGroup): what was batched goes out. */
  flushQueued(): void {
    this.#queued = false;
    this.flush();
  }

  /** Hand the sends batched so far to the ring as one request (no-op when none). */
  flush(): void {
    const op = this.#single;
    if (op) {
      this.#single = null;
      this.#singlePool = null;
      if (this.#lane.fd !== this.#singleFd) {
        op.refused(new ZcError({ errno: ERRNO.ECANCELED, op: op.opName, hint: 'the socket was closed before the send was issued' }));
      } else if (detached(op.view, op.len)) {
        op.refused(new ZcError({ errno: ERRNO.EFAULT, op: op.opName }));
      } else {
        this.#lane.ring.enqueueBatched(op);
      }
      return;
    }
    const b = this.#batch;
    if (!b) return;
    this.#batch = null;
    // The socket started closing, or an array was detached, since send():
    // nothing reaches the kernel.
    if (this.#lane.fd !== b.fd) {
      b.refused(new ZcError({ errno: ERRNO.ECANCELED, op: 'send', hint: 'the socket was closed before the send was issued' }));
      return;
    }
    if (b.keep.some((e) => detached(e.view, e.len))) {
      b.refused(new ZcError({ errno: ERRNO.EFAULT, op: 'send' }));
      return;
    }
    this.#lane.ring.enqueueBatched(b);
  }
}
