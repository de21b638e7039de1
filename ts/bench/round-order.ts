// SPDX-License-Identifier: MIT
/**
 * The order a bench round runs its modes in: round r starts at mode
 * r mod n and goes round, so no mode always runs first (what ran just
 * before colours a run: the caches, the sink's state, whether the other
 * vCPU was halted).  Round 0 keeps the order given.
 */
export function roundOrder<T>(modes: readonly T[], round: number): T[] {
  if (modes.length === 0) return [];
  const start = round % modes.length;
  return [...modes.slice(start), ...modes.slice(0, start)];
}
