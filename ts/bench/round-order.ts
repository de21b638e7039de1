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

/**
 * The TCP send bench's order: round r starts at mode r mod n like
 * roundOrder, going forward in even rounds and backward in odd ones.  The
 * paired runs of a check are then early/late in alternate directions,
 * so a machine drifting faster or slower over a round's ~25 s biases no
 * pair's median one way (docs/PERFORMANCE.md, Session 26, tcp26: with
 * forward rounds only, auto ran after send in 2 of 5 rounds and before it
 * in 3, and a rising host read 0.948).  With two modes it is roundOrder.
 */
export function alternatingOrder<T>(modes: readonly T[], round: number): T[] {
  if (round % 2 === 0) return roundOrder(modes, round);
  const n = modes.length;
  return Array.from({ length: n }, (_, i) => modes[(((round - i) % n) + n) % n]!);
}
