// SPDX-License-Identifier: MIT
// A handler that throws while the ring hands out records (a caller's send
// callback, or any request's handler that calls user code): the other
// requests whose records came in the same reap or flush still settle, and
// the exception reaches 'uncaughtException' as from queueMicrotask.  Each
// case runs in a child process (its uncaughtException handler, and a stuck
// request is a timeout there, not here).
import { describe, expect, it } from 'vitest';
import { childJson, IN_VM, runTs } from './helpers.ts';

const TIMEOUT = IN_VM ? 100_000 : 30_000;

describe('a throwing handler during dispatch', () => {
  it.each([
    ['native', {}],
    ['koffi', { URING_ZC_NATIVE_POLL: '0' }],
  ] as const)('records brought by a wakeup (%s watcher): the first callback throws, every other send settles', async (kind, env) => {
    const r = await runTs('tests/ts/fixtures/wakeup-throw-child.ts', [], { env: { ...process.env, ...env }, timeoutMs: TIMEOUT });
    expect(r.signal).toBeNull();
    const j = childJson<{ watcher: string; ran: number[]; promises: string[]; seen: string[]; inFlight: number; wakeups: number }>(r);
    expect(j.watcher).toBe(kind);
    expect(j.ran).toEqual([0, 1, 2, 3, 4, 5]);
    expect(j.promises).toEqual(new Array(6).fill('fulfilled'));
    expect(j.seen).toHaveLength(1);
    expect(j.seen[0]).toMatch(/^uncaughtException: from the callback of send \d$/);
    expect(j.inFlight).toBe(0);
    expect(j.wakeups).toBeGreaterThan(0);
  }, TIMEOUT);

  it('a refused descriptor whose handler throws does not lose the records of the same flush', async () => {
    const r = await runTs('tests/ts/fixtures/batch-refused-throw-child.ts', [], { timeoutMs: TIMEOUT });
    expect(r.signal).toBeNull();
    const j = childJson<{ settled: string[]; seen: string[]; inFlight: number }>(r);
    // before: good1-3 were sent, but their records (copied out by that
    // flush) were dropped: in flight until ring.close() failed them ECANCELED
    expect(j.settled).toEqual(['bad: refused EBADF', 'good1: 16', 'good2: 16', 'good3: 16']);
    expect(j.seen).toEqual(["uncaughtException: from bad's refused handler"]);
    expect(j.inFlight).toBe(0);
  }, TIMEOUT);

  it('a pre-flush hook that throws: an uncaught exception, and the flush and later ones still go out; a nested flush runs the hooks queued meanwhile', async () => {
    const r = await runTs('tests/ts/fixtures/flush-hook-throw-child.ts', [], { timeoutMs: TIMEOUT });
    expect(r.signal).toBeNull();
    const j = childJson<{ sends: string[]; received: number; seen: string[]; inFlight: number }>(r);
    // before: the throw lost the socket's hook queued after it (its send
    // never went out) and left the flush marked scheduled for good
    expect(j.sends).toEqual(['first: 100', 'second: 200', 'third: 300', 'nested: 400']);
    expect(j.received).toBe(1000);
    expect(j.seen).toEqual(['uncaughtException: from a pre-flush hook']);
    expect(j.inFlight).toBe(0);
  }, TIMEOUT);
});
