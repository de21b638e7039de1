// SPDX-License-Identifier: MIT
/**
 * {@link BatchQueue}: the requests a ring collects during one tick, written
 * as `struct zc_batch_op` descriptors (libzc.h) into memory libzc reads, so
 * the whole tick reaches C in ONE FFI call (`zc_flush_batch`) instead of one
 * call per send.  Descriptors hold plain numbers (addresses included), the
 * iovecs / spans / destinations they point to live in the queue's `ext`
 * area, which libzc reads during that call only.
 * @internal
 */
import { BATCH_KIND, LAYOUT } from './ffi/abi.gen.ts';

const OP = LAYOUT.zc_batch_op;
const F = OP.fields;
const W = OP.size / 4;
const W_KIND = F.kind.offset / 4;
const W_FD = F.fd.offset / 4;
const W_UD = F.user_data.offset / 4;
const W_ADDR = F.addr.offset / 4;
const W_LEN = F.len.offset / 4;
const W_POOL = F.pool.offset / 4;
const W_DEST = F.dest.offset / 4;
const W_FLAGS = F.flags.offset / 4;
const W_N = F.n.offset / 4;
const W_BUF = F.buf.offset / 4;
const W_OFF = F.off.offset / 4;
const W_DEST_LEN = F.dest_len.offset / 4;
const W_RESERVED = F.reserved.offset / 4;
const KIND_SEND = BATCH_KIND.SEND;
const KIND_SEND_FIXED = BATCH_KIND.SEND_FIXED;
// send() and sendFixed() each write every word of a descriptor themselves,
// by name: these.  A field added to struct zc_batch_op (or a size change)
// must be written there too, so the layout's words have to be exactly this
// list.
const NAMED_WORDS = [
  W_KIND, W_FD, W_UD, W_UD + 1, W_ADDR, W_ADDR + 1, W_LEN, W_LEN + 1, W_POOL, W_POOL + 1,
  W_DEST, W_DEST + 1, W_FLAGS, W_N, W_BUF, W_OFF, W_DEST_LEN, W_RESERVED,
];
{
  const words = new Set<number>();
  for (const f of Object.values(F)) for (let b = f.offset; b < f.offset + f.size; b += 4) words.add(b / 4);
  const written = new Set(NAMED_WORDS);
  if (words.size !== W || written.size !== W || [...words].some((w) => !written.has(w))) {
    throw new Error('batch.ts: struct zc_batch_op changed: update BatchQueue.send and sendFixed, which write each of its words');
  }
}
const WORD = 2 ** 32;
const IOV_BASE = LAYOUT.iovec.fields.iov_base.offset / 4;
const IOV_LEN = LAYOUT.iovec.fields.iov_len.offset / 4;
const SPAN = LAYOUT.zc_span.fields;

/** Descriptors per batch (a fuller tick goes out in several calls). */
export const BATCH_CAP = 256;
/** Bytes of iovecs, spans and destinations per batch. */
export const BATCH_EXT = 64 * 1024;

export class BatchQueue {
  /** the descriptors, BATCH_CAP of them (passed to zc_flush_batch) */
  readonly ops = Buffer.from(new ArrayBuffer(BATCH_CAP * OP.size));
  /** per-descriptor results written by zc_flush_batch */
  readonly rcs = new Int32Array(new ArrayBuffer(BATCH_CAP * 4));
  /** iovecs, spans, sockaddrs the descriptors point into */
  readonly ext = Buffer.from(new ArrayBuffer(BATCH_EXT));
  /** descriptors written */
  n = 0;
  #u32 = new Uint32Array(this.ops.buffer);
  #i32 = new Int32Array(this.ops.buffer);
  #extU32 = new Uint32Array(this.ext.buffer);
  #extUsed = 0;
  /** address of ext[0] */
  readonly #extAddr: number;

  /** @param extAddress the address of `ext` (koffi sees it as fixed memory) */
  constructor(extAddress: (b: Buffer) => number) {
    this.#extAddr = extAddress(this.ext);
  }

  get full(): boolean {
    return this.n === BATCH_CAP;
  }

  /** Forget what was written (after zc_flush_batch read it). */
  reset(): void {
    this.n = 0;
    this.#extUsed = 0;
  }

  /** user_data of descriptor i, low word (the ring's slot) */
  slotOf(i: number): number {
    return this.#u32[i * W + W_UD]!;
  }

  /** user_data of descriptor i, high word (the slot's generation) */
  genOf(i: number): number {
    return this.#u32[i * W + W_UD + 1]!;
  }

  #begin(kind: number, fd: number, udLo: number, udHi: number, flags: number): number {
    const w = this.n++ * W;
    const u = this.#u32;
    // A descriptor is written whole: zero what this kind does not set
    // (plain stores: TypedArray.fill is a runtime call).
    for (let k = 0; k < W; k++) u[w + k] = 0;
    u[w + W_KIND] = kind;
    this.#i32[w + W_FD] = fd;
    u[w + W_UD] = udLo;
    u[w + W_UD + 1] = udHi;
    u[w + W_FLAGS] = flags;
    return w;
  }

  #u64(at: number, v: number): void {
    // floor and a multiply, not `%`: a double's modulo is a runtime call
    const hi = Math.floor(v / WORD);
    this.#u32[at] = v - hi * WORD;
    this.#u32[at + 1] = hi;
  }

  /**
   * zc_send(fd, addr, len, flags): the path of every send from a
   * Uint8Array, written like sendFixed() (each word once, by name; the
   * words 0 in every plain send written only when this slot held another
   * kind's descriptor).
   */
  send(fd: number, udLo: number, udHi: number, addr: number, len: number, flags: number): void {
    const w = this.n++ * W;
    const u = this.#u32;
    if (u[w + W_KIND] !== KIND_SEND) {
      u[w + W_KIND] = KIND_SEND;
      u[w + W_POOL] = 0;
      u[w + W_POOL + 1] = 0;
      u[w + W_DEST] = 0;
      u[w + W_DEST + 1] = 0;
      u[w + W_N] = 0;
      u[w + W_BUF] = 0;
      u[w + W_OFF] = 0;
      u[w + W_DEST_LEN] = 0;
      u[w + W_RESERVED] = 0;
    }
    // floor and a multiply, not `%` (see #u64); a length under 4 GiB (all
    // but the rarest) needs no division
    const addrHi = Math.floor(addr / WORD);
    const lenHi = len < WORD ? 0 : Math.floor(len / WORD);
    u[w + W_FD] = fd; // int32 bits (-1 stays 0xffffffff)
    u[w + W_UD] = udLo;
    u[w + W_UD + 1] = udHi;
    u[w + W_ADDR] = addr - addrHi * WORD;
    u[w + W_ADDR + 1] = addrHi;
    u[w + W_LEN] = len - lenHi * WORD;
    u[w + W_LEN + 1] = lenHi;
    u[w + W_FLAGS] = flags;
  }

  /**
   * zc_send_fixed(fd, pool, buf, off, len, flags), the pool pointer as its
   * two 32-bit words.  The path of every send from a pool buffer: each
   * word written once, by name, no zeroing pass, and the words that are 0
   * in every fixed send not written at all when this slot of the array
   * held a fixed send's descriptor already (the last tick's, usually).
   */
  sendFixed(
    fd: number, udLo: number, udHi: number, poolLo: number, poolHi: number, buf: number, off: number, len: number, flags: number,
  ): void {
    const w = this.n++ * W;
    const u = this.#u32;
    if (u[w + W_KIND] !== KIND_SEND_FIXED) {
      u[w + W_KIND] = KIND_SEND_FIXED;
      u[w + W_ADDR] = 0;
      u[w + W_ADDR + 1] = 0;
      u[w + W_DEST] = 0;
      u[w + W_DEST + 1] = 0;
      u[w + W_N] = 0;
      u[w + W_DEST_LEN] = 0;
      u[w + W_RESERVED] = 0;
    }
    // A fixed send's length fits in 32 bits (a pool buffer's size): no
    // division for it.
    u[w + W_FD] = fd; // int32 bits (-1 stays 0xffffffff)
    u[w + W_UD] = udLo;
    u[w + W_UD + 1] = udHi;
    u[w + W_LEN] = len;
    u[w + W_LEN + 1] = len < WORD ? 0 : Math.floor(len / WORD);
    u[w + W_POOL] = poolLo;
    u[w + W_POOL + 1] = poolHi;
    u[w + W_FLAGS] = flags;
    u[w + W_BUF] = buf;
    u[w + W_OFF] = off;
  }

  /**
   * zc_sendmsg(fd, iovecs at ext offset `vec`, n, dest at ext offset `dest`
   * (-1: none), destLen, flags)
   */
  sendmsg(fd: number, udLo: number, udHi: number, vec: number, n: number, dest: number, destLen: number, flags: number): void {
    const w = this.#begin(BATCH_KIND.SENDMSG, fd, udLo, udHi, flags);
    this.#u64(w + W_ADDR, this.#extAddr + vec);
    this.#u32[w + W_N] = n;
    if (dest >= 0) {
      this.#u64(w + W_DEST, this.#extAddr + dest);
      this.#u32[w + W_DEST_LEN] = destLen;
    }
  }

  /** zc_sendv_fixed(fd, pool, spans at ext offset `vec`, n, flags) */
  sendvFixed(fd: number, udLo: number, udHi: number, pool: number, vec: number, n: number, flags: number): void {
    const w = this.#begin(BATCH_KIND.SENDV_FIXED, fd, udLo, udHi, flags);
    this.#u64(w + W_POOL, pool);
    this.#u64(w + W_ADDR, this.#extAddr + vec);
    this.#u32[w + W_N] = n;
  }

  /** zc_rx_release_many(rx, offsets at ext offset `vec`, n): no record */
  rxRelease(rx: number, vec: number, n: number): void {
    const w = this.#begin(BATCH_KIND.RX_RELEASE, -1, 0, 0, 0);
    this.#u64(w + W_POOL, rx);
    this.#u64(w + W_ADDR, this.#extAddr + vec);
    this.#u32[w + W_N] = n;
  }

  /** Copy n 32-bit words to ext offset `at` (16-byte aligned by reserve()). */
  words(at: number, src: Uint32Array, n: number): void {
    // a loop, not set(subarray()): no typed array per call
    const u = this.#extU32;
    const w = at >>> 2;
    for (let i = 0; i < n; i++) u[w + i] = src[i]!;
  }

  /** Room for `bytes` in ext (16-byte aligned): its offset, or -1 when full. */
  reserve(bytes: number): number {
    const at = this.#extUsed;
    const end = at + ((bytes + 15) & ~15);
    if (end > BATCH_EXT) return -1;
    this.#extUsed = end;
    return at;
  }

  /** Write a struct iovec at ext offset `at`. */
  iovec(at: number, addr: number, len: number): void {
    const w = at >>> 2;
    const u = this.#extU32;
    const hi = Math.floor(addr / WORD);
    u[w + IOV_BASE] = addr - hi * WORD;
    u[w + IOV_BASE + 1] = hi;
    u[w + IOV_LEN] = len % WORD;
    u[w + IOV_LEN + 1] = Math.floor(len / WORD);
  }

  /** Write a struct zc_span at ext offset `at`. */
  span(at: number, buf: number, off: number, len: number): void {
    const w = at >>> 2;
    const u = this.#extU32;
    u[w + SPAN.buf.offset / 4] = buf;
    u[w + SPAN.off.offset / 4] = off;
    u[w + SPAN.len.offset / 4] = len;
    u[w + SPAN.reserved.offset / 4] = 0;
  }

  /** Bytes of one iovec / zc_span. */
  static readonly IOV_SIZE = LAYOUT.iovec.size;
  static readonly SPAN_SIZE = LAYOUT.zc_span.size;

  /** Copy bytes (a sockaddr) to ext offset `at`. */
  copy(at: number, src: Uint8Array): void {
    this.ext.set(src, at);
  }
}
