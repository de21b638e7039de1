// SPDX-License-Identifier: MIT
/** The zero-copy policy: which libzc send flags one send gets.  Pure. */
import { SEND_FLAGS } from '../ffi/abi.gen.ts';
import type { SendOptions } from '../config.ts';

/**
 * Zero-copy or not: 'zc' and 'copy' say so; 'auto' from `autoThreshold`
 * bytes for registered (pool) memory, `autoThresholdUnregistered` for
 * Uint8Arrays whose pages are pinned per send, and never on a socket
 * family without zero-copy sends (`zcCapable` false: AF_UNIX...), so
 * 'auto' works wherever 'copy' does.
 */
export function wantsZeroCopy(o: SendOptions, len: number, registered: boolean, zcCapable = true): boolean {
  if (o.mode !== 'auto') return o.mode === 'zc';
  return zcCapable && len >= (registered ? o.autoThreshold : o.autoThresholdUnregistered);
}

/** enum zc_send_flags for a send of `len` bytes with options `o`. */
export function sendFlags(o: SendOptions, len: number, registered: boolean, zcCapable = true): number {
  let f = 0;
  if (wantsZeroCopy(o, len, registered, zcCapable)) f |= SEND_FLAGS.ZEROCOPY;
  if (o.more) f |= SEND_FLAGS.MORE;
  if (!o.reportUsage) f |= SEND_FLAGS.NO_REPORT;
  return f;
}
