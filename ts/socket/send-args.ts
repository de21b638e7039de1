// SPDX-License-Identifier: MIT
/**
 * Checking what a send was given: a PoolBuffer's offset and length
 * (poolSendOffset/poolSendLength, numbers), a Uint8Array cut to its view
 * (sendView).  No object per send.
 */
import { rangeError, type SendOptions } from '../config.ts';
import type { PoolBuffer } from '../pool.ts';
import type { Chunk } from '../recv.ts';

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

/** The offset of a send of a received chunk (checked as a Uint8Array's; throws ZcConfigError). */
export function chunkSendOffset(c: Chunk, o: SendOptions): number {
  const off = o.offset ?? 0;
  if (off > c.length) throw rangeError('offset', off, c.length);
  return off;
}

/** The length of a send of a received chunk from `off` (checked; throws ZcConfigError). */
export function chunkSendLength(c: Chunk, o: SendOptions, off: number): number {
  const len = o.length ?? c.length - off;
  if (off + len > c.length) throw rangeError('length', len, c.length - off);
  return len;
}

/**
 * The bytes of a Uint8Array send: `data` cut to the options' offset and
 * length (checked; throws ZcConfigError), or a TypeError when `data` is
 * neither a Uint8Array nor a PoolBuffer.  Returns the view alone (its
 * length is the send's): no result object per send.  (The send lane takes
 * PoolBuffers through poolSendOffset/poolSendLength.)
 */
export function sendView(data: unknown, o: SendOptions, opName: string): Uint8Array {
  if (data instanceof Uint8Array) {
    const off = o.offset ?? 0;
    if (off > data.length) throw rangeError('offset', off, data.length);
    const len = o.length ?? data.length - off;
    if (off + len > data.length) throw rangeError('length', len, data.length - off);
    return off === 0 && len === data.length ? data : data.subarray(off, off + len);
  }
  throw new TypeError(`${opName}: data must be a Uint8Array, a PoolBuffer or a received Chunk`);
}
