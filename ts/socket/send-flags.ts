// SPDX-License-Identifier: MIT
/** The zero-copy policy: which libzc send flags one send gets.  Pure. */
import { SEND_FLAGS } from '../ffi/abi.gen.ts';
import type { SendOptions } from '../config.ts';

/**
 * enum zc_send_flags for a send of `len` bytes with options `o`.
 * Zero-copy or not: 'zc' and 'copy' say so; 'auto' from `autoThreshold`
 * bytes for registered (pool) memory, `autoThresholdUnregistered` for
 * Uint8Arrays whose pages are pinned per send, and only where `autoZc`
 * says zero-copy can pay: never on a socket family without zero-copy
 * sends (AF_UNIX...), so 'auto' works wherever 'copy' does, and never to
 * a peer on this host, where the kernel copies at delivery anyway.  Runs
 * on every send.
 */
export function sendFlags(o: SendOptions, len: number, registered: boolean, autoZc: boolean): number {
  let f = o.reportUsage ? 0 : SEND_FLAGS.NO_REPORT;
  if (o.more) f |= SEND_FLAGS.MORE;
  const mode = o.mode;
  if (mode === 'zc' || (mode === 'auto' && autoZc && len >= (registered ? o.autoThreshold : o.autoThresholdUnregistered))) {
    f |= SEND_FLAGS.ZEROCOPY;
  }
  return f;
}
