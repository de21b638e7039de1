// SPDX-License-Identifier: MIT
/**
 * Checking what a send was given: a PoolBuffer's or a received chunk's
 * offset and length (sendOffset/sendLength, numbers), a Uint8Array cut to its view
 * (sendView).  No object per send.
 */
import { rangeError, type SendOptions } from '../config.ts';

/**
 * The offset of a send from an object of `size` bytes, a PoolBuffer or a
 * received chunk (checked as a Uint8Array's; throws ZcConfigError).
 */
export function sendOffset(size: number, o: SendOptions): number {
  const off = o.offset ?? 0;
  if (off > size) throw rangeError('offset', off, size);
  return off;
}

/** The length of a send from an object of `size` bytes at `off` (checked; throws ZcConfigError). */
export function sendLength(size: number, o: SendOptions, off: number): number {
  const len = o.length ?? size - off;
  if (off + len > size) throw rangeError('length', len, size - off);
  return len;
}

/**
 * The bytes of a Uint8Array send: `data` cut to the options' offset and
 * length (checked; throws ZcConfigError), or a TypeError when `data` is
 * neither a Uint8Array nor a PoolBuffer.  Returns the view alone (its
 * length is the send's): no result object per send.  (The send lane takes
 * PoolBuffers and chunks through sendOffset/sendLength.)
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
