// SPDX-License-Identifier: MIT
/** Size parsing/formatting for the bench CLI: "4K" = 4096 bytes, "1M" = 1 MiB. */

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, KIB: 1024, M: 1 << 20, MB: 1 << 20, MIB: 1 << 20 };

/** Largest single send the bench accepts (the pool buffer size). */
export const MAX_BENCH_SIZE = 16 << 20;

/** "4K" | "64k" | "4096" | "1M" -> bytes; throws naming the bad value. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`--size: "${text}" is not a size (use e.g. 4096, 4K, 64K, 1M)`);
  }
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_BENCH_SIZE) {
    throw new Error(`--size: "${text}" is out of range (1 byte .. ${formatSize(MAX_BENCH_SIZE)})`);
  }
  return n;
}

/** 4096 -> "4K", 65536 -> "64K", 1000 -> "1000". */
export function formatSize(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}
