// SPDX-License-Identifier: MIT
/**
 * What a send's record means for its Promise (the contract of libzc's send
 * records, libzc.h struct zc_completion): `res >= 0` only when the whole
 * length left, and `aux` is the exact 64-bit count of bytes the kernel
 * took, so a send resolves with its whole length or rejects with the
 * errno and `bytesSent`.
 */
import { ERRNO } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import { zeroCopyOf, type Completion } from '../ring.ts';
import type { SendResult } from './types.ts';

/** Bytes the kernel took for this send (struct zc_completion.aux). */
export function bytesOf(c: Completion): number {
  return Number(c.aux);
}

/**
 * A Uint8Array whose ArrayBuffer was detached (transferred with
 * postMessage/structuredClone, or resized) is empty: the memory the kernel
 * was given is no longer the caller's.
 */
export function detached(view: Uint8Array | null, len: number): boolean {
  return view !== null && view.byteLength !== len;
}

/** The rejection for a send whose memory was detached; `inFlight`: after it was handed to the kernel. */
export function detachedError(op: string, bytesSent: number, inFlight: boolean): ZcError {
  return new ZcError({
    errno: ERRNO.EFAULT,
    op,
    bytesSent,
    hint: inFlight
      ? "the Uint8Array's ArrayBuffer was detached (transferred or resized) while the send was in flight: the bytes" +
        ' that left may not be the ones given; do not transfer a buffer before its send settled'
      : "the Uint8Array's ArrayBuffer was detached (transferred or resized) before the send was issued: nothing was sent",
  });
}

/** Settle one send of `len` bytes from its record. */
export function settleSend(
  c: Completion, len: number, view: Uint8Array | null, wantZc: boolean, op: string,
  resolve: (r: SendResult) => void, reject: (e: unknown) => void,
): void {
  const bytes = bytesOf(c);
  if (detached(view, len)) reject(detachedError(op, bytes, true));
  else if (c.res < 0) reject(new ZcError({ errno: c.res, op, bytesSent: bytes }));
  else resolve({ bytes, zeroCopy: zeroCopyOf(c, wantZc) });
}

/**
 * A failure before any record: `issued` false means the kernel never saw
 * the send (refused by libzc, or canceled while waiting in JS), so nothing
 * left.  Otherwise the count is unknown (the ring gave up on the request).
 */
export function failedSend(e: ZcError, issued: boolean): ZcError {
  if (issued || e.bytesSent !== undefined) return e;
  return new ZcError({ errno: e.errno, op: e.op, hint: e.hint, details: e.details, bytesSent: 0 });
}
