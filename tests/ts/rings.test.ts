// SPDX-License-Identifier: MIT
// Many rings in one process (issue 8, items 6 and 9): the 17th ring with
// default options works on its plain fd and says why; creating and closing
// rings leaves no JS heap behind (koffi's poll handle class, see
// docs/koffi-poll-leak.md).
import { describe, expect, it } from 'vitest';
import { Ring, ZcSocket } from '../../ts/index.ts';
import { childJson, IN_VM, runTs, scaled } from './helpers.ts';

describe('registered ring fds (16 per thread)', () => {
  it('rings past the kernel limit fall back to their plain fd, say why, and work', async () => {
    const rings: Ring[] = [];
    try {
      for (let i = 0; i < 20; i++) rings.push(Ring.create());
      const fallback = rings.filter((r) => !r.registeredFd);
      // this thread may hold a few already; at least 4 of these 20 are past 16
      expect(fallback.length).toBeGreaterThanOrEqual(4);
      for (const r of fallback) {
        expect(r.registeredFdError?.code).toBe('EBUSY');
        expect(r.registeredFdError?.hint).toMatch(/16 registered ring fds/);
      }
      for (const r of rings.filter((x) => x.registeredFd)) expect(r.registeredFdError).toBeNull();
      // every ring, registered or not, sends
      for (const [i, r] of rings.entries()) {
        const [a, b] = ZcSocket.pair({ ring: r });
        const data = new Uint8Array([i, 1, 2, 3]);
        expect((await a.send(data, { mode: 'copy' })).bytes).toBe(4);
        const got = new Uint8Array(4);
        expect(r.libc.read(b.fd, got, 4)).toBe(4);
        expect([...got]).toEqual([i, 1, 2, 3]);
        a.destroy();
        b.destroy();
      }
      // not asked: neither registered nor an error
      const plain = Ring.create({ registeredFd: false });
      expect(plain.registeredFd).toBe(false);
      expect(plain.registeredFdError).toBeNull();
      plain.close();
    } finally {
      for (const r of rings) r.close();
    }
    // the slots came back
    const again = Ring.create();
    expect(again.registeredFd).toBe(true);
    again.close();
  });
});

describe('JS heap per ring', () => {
  it('Ring.create().close() leaves (almost) nothing on the heap', async () => {
    const cycles = scaled(2000, IN_VM ? 200 : 500);
    const r = await runTs('tests/ts/fixtures/ring-heap-child.ts', [String(cycles)], { timeoutMs: 120_000 });
    const out = childJson<{ cycles: number; perCycle: number }>(r);
    // koffi.node.poll() per ring cost ~4800 bytes for good; GC noise is ~100
    expect(out.perCycle).toBeLessThan(1000);
  });
});
