// SPDX-License-Identifier: MIT
/**
 * The same-tick coalescer of one stream socket: sends made in one tick
 * leave as one request, like Node's writev.  Copying sends as one sendmsg
 * (struct iovec list), zero-copy sends from one registered region of a
 * pool as one SENDMSG_ZC (struct zc_span list).  The batch is issued by the
 * ring's flush hook (once per tick), or earlier by {@link Coalescer.flush}
 * when stream order needs it.  Each Promise settles with its own bytes.
 */
import { ERRNO, LAYOUT, LIMITS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import type { BufferPool, PoolBuffer } from '../pool.ts';
import { zeroCopyOf, type Completion, type Ring } from '../ring.ts';
import { addressOf } from './memory.ts';
import { bytesOf, detached, detachedError, failedSend } from './send-result.ts';
import type { SendResult } from './types.ts';

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

interface BatchEntry {
  off: number;
  len: number;
  pb: PoolBuffer | null;
  keep: Uint8Array | null;
  resolve: (r: SendResult) => void;
  reject: (e: unknown) => void;
}

/** Sends of one tick that leave as one request. */
interface SendBatch {
  flags: number;
  /** zero-copy from this pool's registered region; null: copying sendmsg */
  pool: BufferPool | null;
  region: number;
  bytes: number;
  /** ZC_MAX_IOV iovecs or zc_spans (both 16 bytes) */
  vec: Buffer;
  entries: BatchEntry[];
}

/** Batches the sends of one socket made during one tick. */
export class Coalescer {
  readonly #ring: Ring;
  readonly #fd: () => number;
  readonly #settled: () => void;
  #batch: SendBatch | null = null;
  readonly #flushHook = (): void => this.flush();

  /**
   * @param fd the socket's fd when the batch is issued (-1 once it closes)
   * @param settled called once per send as it settles (after its buffer was given back)
   */
  constructor(ring: Ring, fd: () => number, settled: () => void) {
    this.#ring = ring;
    this.#fd = fd;
    this.#settled = settled;
  }

  /**
   * Add one send (its PoolBuffer already lent) to this tick's batch.
   * `pool` non-null: zero-copy from that pool's registered memory; null: a
   * copying send of `pb` or `view`.
   */
  add(pool: BufferPool | null, pb: PoolBuffer | null, view: Uint8Array | null, off: number, len: number, flags: number): Promise<SendResult> {
    const region = pool && pb ? Math.floor(pb.index / pool.regionBuffers) : 0;
    let b = this.#batch;
    if (
      b &&
      (b.flags !== flags ||
        b.pool !== pool ||
        b.region !== region ||
        b.entries.length === ZC_MAX_IOV ||
        b.bytes + len > COALESCE_MAX_BATCH)
    ) {
      this.flush();
      b = null;
    }
    if (!b) {
      b = { flags, pool, region, bytes: 0, vec: Buffer.alloc(ZC_MAX_IOV * IOV_SIZE), entries: [] };
      this.#batch = b;
      this.#ring.beforeFlush(this.#flushHook);
    }
    if (pool && pb) {
      const at = b.entries.length * SPAN.size;
      b.vec.writeUInt32LE(pb.index, at + SPAN.fields.buf.offset);
      b.vec.writeUInt32LE(off, at + SPAN.fields.off.offset);
      b.vec.writeUInt32LE(len, at + SPAN.fields.len.offset);
    } else {
      const addr = pb ? pb.pool.baseAddress + BigInt(pb.index * pb.pool.size + off) : addressOf(this.#ring, view as Uint8Array);
      const at = b.entries.length * IOV_SIZE;
      b.vec.writeBigUInt64LE(addr, at + IOV_BASE);
      b.vec.writeBigUInt64LE(BigInt(len), at + IOV_LEN);
    }
    b.bytes += len;
    return new Promise<SendResult>((resolve, reject) => {
      (b as SendBatch).entries.push({ off, len, pb, keep: view, resolve, reject });
    });
  }

  /** Issue the sends batched so far as one request (no-op when none). */
  flush(): void {
    const b = this.#batch;
    if (!b) return;
    this.#batch = null;
    const ring = this.#ring;
    const zc = ring.zc;
    const fd = this.#fd();
    const n = b.entries.length;
    const pool = b.pool;
    const finish = (each: (e: BatchEntry) => void): void => {
      for (const e of b.entries) {
        if (e.pb) e.pb.unlend();
        this.#settled();
        each(e);
      }
    };
    let send: (ud: number) => number;
    if (!pool) {
      send = (ud) => zc.zc_sendmsg(ring.ptr, fd, b.vec, n, null, 0, b.flags, ud);
    } else if (n === 1) {
      const e = b.entries[0] as BatchEntry;
      const idx = (e.pb as PoolBuffer).index;
      send = (ud) => zc.zc_send_fixed(ring.ptr, fd, pool.ptr, idx, e.off, e.len, b.flags, ud);
    } else {
      send = (ud) => zc.zc_sendv_fixed(ring.ptr, fd, pool.ptr, b.vec, n, b.flags, ud);
    }
    let issued = false;
    ring.enqueue({
      opName: 'send',
      keep: b,
      // As in SendLane: the socket may be closing, or an array detached, by
      // the time the request leaves JS.
      issue: (ud) => {
        if (this.#fd() !== fd) return -ERRNO.ECANCELED;
        if (b.entries.some((e) => detached(e.keep, e.len))) return -ERRNO.EFAULT;
        const rc = send(ud);
        issued = rc === 0;
        return rc;
      },
      done: (c: Completion) => {
        // The record counts the bytes the kernel took for the whole request
        // (aux): they are the first sends' bytes, in order.  A send whose
        // bytes all left resolves; the one cut short and those after it
        // reject with the record's errno and what of each did leave.
        const zeroCopy = pool ? zeroCopyOf(c, true) : 'copied';
        let left = bytesOf(c);
        finish((e) => {
          const bytes = Math.min(e.len, left);
          left -= bytes;
          if (detached(e.keep, e.len)) e.reject(detachedError('send', bytes, true));
          else if (bytes === e.len) e.resolve({ bytes, zeroCopy });
          else e.reject(new ZcError({ errno: c.res < 0 ? c.res : ERRNO.EIO, op: 'send', bytesSent: bytes }));
        });
      },
      fail: (err: ZcError) => finish((e) => e.reject(failedSend(err, issued))),
    });
  }
}
