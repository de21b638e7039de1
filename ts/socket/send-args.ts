// SPDX-License-Identifier: MIT
/** Decoding what a send was given: data, offset and length into one range. */
import { rangeError, type SendOptions } from '../config.ts';
import { PoolBuffer } from '../pool.ts';

/** The bytes one send covers: a range of a pool buffer, or a Uint8Array view. */
export interface SendRange {
  /** pool buffer sent from (registered memory), or null */
  pb: PoolBuffer | null;
  /** the bytes of a Uint8Array send (already cut to offset/length), or null */
  view: Uint8Array | null;
  off: number;
  len: number;
}

/** The offset of a send from a PoolBuffer (checked; throws ZcConfigError). */
export function poolSendOffset(pb: PoolBuffer, o: SendOptions): number {
  const off = o.offset ?? 0;
  if (off > pb.size) throw rangeError('offset', off, pb.size);
  return off;
}

/** The length of a send from a PoolBuffer at `off` (checked; throws ZcConfigError). */
export function poolSendLength(pb: PoolBuffer, o: SendOptions, off: number): number {
  const len = o.length ?? pb.size - off;
  if (off + len > pb.size) throw rangeError('length', len, pb.size - off);
  return len;
}

/**
 * Check offset/length against the data; throws ZcConfigError or TypeError.
 * (The send lane takes PoolBuffers through poolSendOffset/poolSendLength,
 * with no result object.)
 */
export function decodeSendArgs(data: Uint8Array | PoolBuffer, o: SendOptions, opName: string): SendRange {
  if (data instanceof PoolBuffer) {
    const off = poolSendOffset(data, o);
    return { pb: data, view: null, off, len: poolSendLength(data, o, off) };
  }
  if (data instanceof Uint8Array) {
    const off = o.offset ?? 0;
    if (off > data.length) throw rangeError('offset', off, data.length);
    const len = o.length ?? data.length - off;
    if (off + len > data.length) throw rangeError('length', len, data.length - off);
    const view = off === 0 && len === data.length ? data : data.subarray(off, off + len);
    return { pb: null, view, off, len };
  }
  throw new TypeError(`${opName}: data must be a Uint8Array or a PoolBuffer`);
}
