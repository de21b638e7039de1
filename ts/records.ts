// SPDX-License-Identifier: MIT
/**
 * Completion records (struct zc_completion, libzc.h) read straight from the
 * buffer zc_reap()/zc_flush() fill: typed-array loads, no object and no
 * BigInt per record.  One {@link RecordCursor} per ring is moved from
 * record to record and handed to each request's `done()`; it is only
 * valid during that call.
 * @internal
 */
import { LAYOUT } from './ffi/abi.gen.ts';

const F = LAYOUT.zc_completion.fields;
/** bytes per record */
export const RECORD_SIZE = LAYOUT.zc_completion.size;
const W = RECORD_SIZE / 4;
const W_UD = F.user_data.offset / 4;
const W_RES = F.res.offset / 4;
const W_FLAGS = F.flags.offset / 4;
const W_AUX = F.aux.offset / 4;
const W_AUX2 = F.aux2.offset / 4;
const H_OP = F.op.offset / 2;
const H_CQES = F.cqes.offset / 2;
const WORD = 2 ** 32;

/** One decoded completion record (struct zc_completion). */
export interface Completion {
  /** bytes, fd or 0; -errno on failure */
  readonly res: number;
  /** enum zc_completion_flags */
  readonly flags: number;
  /** enum zc_op */
  readonly op: number;
  /** kernel CQEs merged into this record */
  readonly cqes: number;
  /** op specific, 64 bits (sends: bytes the kernel took; receive: area offset) */
  readonly aux: bigint;
  /** `aux` as a number (exact below 2^53) */
  readonly auxNumber: number;
  /** op specific (receive: buffer id) */
  readonly aux2: number;
}

/** A view of the record at one index of a record buffer. */
export class RecordCursor implements Completion {
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  readonly #u16: Uint16Array;
  #w = 0;
  res = 0;
  flags = 0;

  constructor(buf: Uint8Array) {
    this.#u32 = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
    this.#i32 = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
    this.#u16 = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 1);
  }

  /** Move to record i; reads res and flags (the fields every consumer needs). */
  at(i: number): this {
    const w = i * W;
    this.#w = w;
    this.res = this.#i32[w + W_RES]!;
    this.flags = this.#u32[w + W_FLAGS]!;
    return this;
  }

  /** user_data, low word (the slot) */
  get udLo(): number {
    return this.#u32[this.#w + W_UD]!;
  }

  /** user_data, high word (the generation) */
  get udHi(): number {
    return this.#u32[this.#w + W_UD + 1]!;
  }

  get op(): number {
    return this.#u16[this.#w * 2 + H_OP]!;
  }

  get cqes(): number {
    return this.#u16[this.#w * 2 + H_CQES]!;
  }

  get aux(): bigint {
    return BigInt(this.#u32[this.#w + W_AUX]!) + (BigInt(this.#u32[this.#w + W_AUX + 1]!) << 32n);
  }

  get auxNumber(): number {
    const w = this.#w;
    const hi = this.#u32[w + W_AUX + 1]!;
    const lo = this.#u32[w + W_AUX]!;
    return hi === 0 ? lo : lo + hi * WORD;
  }

  get aux2(): number {
    return this.#u32[this.#w + W_AUX2]!;
  }
}
