// SPDX-License-Identifier: MIT
// Memory the kernel or JavaScript can still reach is never unmapped or
// reused under them (issue 8, items 3 and 4): views kept from pool buffers
// read zeros after the pool or ring closed (child processes: a SIGSEGV
// would kill them), and the range is unmapped once the views are gone.
import { describe, expect, it } from 'vitest';
import { childJson, runTs } from './helpers.ts';

describe('stale views of pool memory', () => {
  it.each(['pool', 'ring'])('after %s.close() they read zeros, take writes, never crash', async (what) => {
    const r = await runTs('tests/ts/fixtures/stale-view-child.ts', [what]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    const out = childJson<{ sum: number; written: number; length: number; mappedBefore: boolean; unmapped: boolean }>(r);
    expect(out.length).toBe(4 * 65536);
    expect(out.sum).toBe(0); // every byte read was 0 (they were 0x5a.. before)
    expect(out.written).toBe(9); // a private page took the write
    expect(out.mappedBefore).toBe(true); // kept while views existed
    expect(out.unmapped).toBe(true); // and gone with them
  });
});
