// SPDX-License-Identifier: MIT
/**
 * Checks of where an 'auto' ring's loop sleeps, for test files only: they
 * use vitest's expect, so the fixtures (child processes) cannot import them
 * (net-helpers.ts is theirs too).
 */
import { expect } from 'vitest';
import type { Ring } from '../../ts/ring.ts';
import type { Bells } from '../../ts/ffi/poll.ts';
import { IN_VM } from './helpers.ts';

/** A client that does request/response round trips (ringClient's). */
type RoundTripper = { roundTrips(n: number): Promise<unknown> };

/** Round trips of `c` in batches of 100 (at most 5) until the loop sleeps in `r`'s ring; then it must. */
export async function ringTakesSleep(r: Ring, c: RoundTripper): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await c.roundTrips(100);
    if (r.loopSleep === 'ring') break;
  }
  expect(r.loopSleep).toBe('ring');
}

/**
 * `n` round trips of `c` during which `r`'s loop (loopWait 'auto') stays
 * asleep in its ring: no switch to epoll and no doorbell rung (in the ring
 * the bell is not polled: the ring's sleep wakes for the socket).  On the
 * host one batch decides.  In a TCG guest the test runner's own messages are
 * foreign wakeups among slow round trips and can move the sleep during a
 * batch (stock VM, session 23: once in loop-wait, 1 switch and 14 rings;
 * once in doorbell), so there a batch is tried up to 5 times, each once the
 * ring took the sleep back, and one must stay in the ring whole.  Returns
 * the switch count and the bells at the start of the batch that decided.
 */
export async function staysInRing(r: Ring, c: RoundTripper, n: number): Promise<{ switches: number; bells: Bells }> {
  let switches = 0;
  let bells: Bells = [0, 0, 0];
  for (let i = 0; i < (IN_VM ? 5 : 1); i++) {
    await ringTakesSleep(r, c);
    switches = r.loopSwitches;
    bells = [...(r.bells ?? [0, 0, 0])];
    await c.roundTrips(n);
    if (r.loopSleep === 'ring' && r.loopSwitches === switches && sameBells(r.bells, bells)) break;
  }
  expect([r.loopSleep, r.loopSwitches - switches, r.bells]).toEqual(['ring', 0, bells]);
  return { switches, bells };
}

function sameBells(now: Bells | null, then: Bells): boolean {
  return now !== null && now.every((v, i) => v === then[i]);
}
