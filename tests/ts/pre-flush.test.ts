// SPDX-License-Identifier: MIT
/**
 * Ring.beforeFlush(): the hooks a flush runs first (a socket's coalesced
 * sends, a receive area's releases).  The list is reused from flush to
 * flush by count (docs/PERFORMANCE.md, Session 25 wake25): every hook runs
 * once, in order, at the next flush, also when a hook queues another or
 * throws, and over many flushes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Ring } from '../../ts/ring.ts';

const rings: Ring[] = [];
afterEach(async () => {
  for (const r of rings.splice(0)) await r.close();
});
function ring(): Ring {
  const r = Ring.create({ entries: 64 });
  rings.push(r);
  return r;
}

describe('Ring.beforeFlush', () => {
  it('runs each hook once, in order, at the next flush, and none before it', () => {
    const r = ring();
    const ran: number[] = [];
    for (let i = 0; i < 5; i++) r.beforeFlush(() => ran.push(i));
    expect(ran).toEqual([]);
    r.submit();
    expect(ran).toEqual([0, 1, 2, 3, 4]);
    r.submit();
    expect(ran).toEqual([0, 1, 2, 3, 4]);
  });

  it('runs a hook that a hook queues in the same flush, after the others', () => {
    const r = ring();
    const ran: string[] = [];
    r.beforeFlush(() => {
      ran.push('a');
      r.beforeFlush(() => {
        ran.push('c');
        r.beforeFlush(() => ran.push('d'));
      });
    });
    r.beforeFlush(() => ran.push('b'));
    r.submit();
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
    r.submit();
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
  });

  it('runs a flush nested in a hook with its own list: every hook once, the lists kept apart', () => {
    const r = ring();
    const ran: string[] = [];
    r.beforeFlush(() => {
      ran.push('a');
      r.beforeFlush(() => ran.push('x'));
      r.submit(); // nested: runs x now, from a list of its own
    });
    r.beforeFlush(() => ran.push('b'));
    r.submit();
    expect(ran).toEqual(['a', 'x', 'b']);
    // afterwards the lists still take turns without sharing an array: each
    // later hook runs once, at its own flush
    for (let i = 0; i < 4; i++) {
      r.beforeFlush(() => ran.push(`p${i}`));
      r.beforeFlush(() => ran.push(`q${i}`));
      r.submit();
    }
    expect(ran).toEqual(['a', 'x', 'b', 'p0', 'q0', 'p1', 'q1', 'p2', 'q2', 'p3', 'q3']);
  });

  it('runs the hooks after one that throws, and rethrows its error as an uncaught exception', async () => {
    const r = ring();
    const ran: number[] = [];
    const boom = new Error('hook');
    const caught: unknown[] = [];
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', (e) => caught.push(e));
    try {
      r.beforeFlush(() => ran.push(0));
      r.beforeFlush(() => {
        throw boom;
      });
      r.beforeFlush(() => ran.push(2));
      r.submit();
      expect(ran).toEqual([0, 2]);
      await new Promise((res) => setImmediate(res));
      expect(caught).toEqual([boom]);
      // the list is whole after it: the next flush runs the next hooks once
      r.beforeFlush(() => ran.push(3));
      r.submit();
      expect(ran).toEqual([0, 2, 3]);
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const l of listeners) process.on('uncaughtException', l);
    }
  });

  it('runs every hook exactly once over many flushes of varying size, lazy ones included', async () => {
    const r = ring();
    const counts = new Array<number>(3000).fill(0);
    let k = 0;
    for (let f = 0; f < 300; f++) {
      const n = (f * 7) % 13; // 0..12 hooks per flush, list lengths going up and down
      for (let i = 0; i < n; i++) {
        const id = k++;
        r.beforeFlush(() => counts[id]!++, i % 3 === 0);
      }
      if (f % 2 === 0) r.submit();
      else await Promise.resolve(); // the scheduled flush (a microtask) runs them
    }
    // lazy hooks left with no flush scheduled go with the loop's next turn
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    expect(k).toBeGreaterThan(1500);
    expect(counts.slice(0, k).every((c) => c === 1)).toBe(true);
  });
});
