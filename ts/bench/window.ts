// SPDX-License-Identifier: MIT
/**
 * How many sends each sender keeps in flight.  Sized in bytes, not in
 * sends: zero-copy buffers are released only when TCP frees the skb (on
 * ACK), and with less than a couple of MSS (64 KiB on loopback) in flight
 * the receiver delays its ACKs, so a 16 x 4 KiB window stalls on the 40 ms
 * delayed-ACK timer.  ~1 MiB in flight keeps the pipe full at every size.
 */
export const WINDOW_BYTES = 1 << 20;
export const MIN_WINDOW = 8;
export const MAX_WINDOW = 256;

let override: number | null = null;

/** --window N: the same fixed number of sends in flight for every size. */
export function setWindow(n: number | null): void {
  override = n;
}

export function windowFor(size: number): number {
  if (override !== null) return override;
  return Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, Math.ceil(WINDOW_BYTES / size)));
}
