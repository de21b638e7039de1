// SPDX-License-Identifier: MIT
// A ring's per-tick flush through the zc_poll.node watcher (its flusher():
// flushBatch(n, max), a direct Node-API call bound to the ring's addresses)
// instead of koffi's zc_flush_batch_at, and koffi's with the koffi watcher:
// the bytes and the records are the same (fixtures/flush-child.ts), and the
// addon's function refuses what would make it touch memory it was not given.
import { describe, expect, it } from 'vitest';
import { Ring } from '../../ts/index.ts';
import { loadNative } from '../../ts/ffi/libzc.ts';
import { LAYOUT } from '../../ts/ffi/abi.gen.ts';
import { pollAddon, pollWatcherKind, watchRing } from '../../ts/ffi/poll.ts';
import { childJson, IN_VM, runTs } from './helpers.ts';

const TIMEOUT = IN_VM ? 200_000 : 60_000;
const OP_SIZE = LAYOUT.zc_batch_op.size;
const RECORD_SIZE = LAYOUT.zc_completion.size;

describe('the flush through the ring watcher', () => {
  describe.each([
    ['native', {}, (n: number) => expect(n).toBe(0)],
    ['koffi', { URING_ZC_NATIVE_POLL: '0' }, (n: number) => expect(n).toBeGreaterThan(0)],
  ] as const)('%s watcher', (kind, env, koffiFlushes) => {
    it(
      'bursts of 1-300 sends per tick (plain and pool, over a batch) and their echo arrive byte-exact, every send resolves with its length',
      async () => {
        const r = await runTs('tests/ts/fixtures/flush-child.ts', [], { env: { ...process.env, ...env }, timeoutMs: TIMEOUT });
        expect(r.signal).toBeNull();
        const j = childJson<{
          watcher: string;
          koffiFlushes: number;
          submits: number;
          issued: number;
          sentBytes: number;
          echoed: number;
          wrongResults: number;
          mismatches: number;
        }>(r);
        expect(j.watcher).toBe(kind);
        // which path the flushes took: koffi's call is not made at all with the addon
        koffiFlushes(j.koffiFlushes);
        expect(j.submits).toBeGreaterThan(10);
        expect(j.wrongResults).toBe(0);
        expect(j.mismatches).toBe(0);
        expect(j.sentBytes).toBeGreaterThan(1_000_000);
        expect(j.echoed).toBe(j.sentBytes);
        // every send of both ends issued: 1256 from the client, the echo's at least one per chunk
        expect(j.issued).toBeGreaterThan(1256);
        expect(r.code).toBe(0);
      },
      TIMEOUT,
    );
  });

  it('flusher() and its flushBatch(n, max) refuse a wrong handle, bad arrays, n or max out of range, and a closed watcher', async () => {
    expect(pollWatcherKind().kind).toBe('native');
    const addon = pollAddon()!;
    const { c } = loadNative();
    const ring = Ring.create();
    // A watcher of its own on the ring (on its eventfd: the ring fd has
    // the ring's watcher), with a records buffer of 4.
    const out = new Uint8Array(4 * RECORD_SIZE);
    const w = watchRing(ring.eventFd, Number(c.address(ring.ptr)), Number(c.addressOf(out)), 4, () => {}, () => {});
    try {
      const ops = new Uint8Array(new ArrayBuffer(3 * OP_SIZE));
      const rcs = new Int32Array(8);
      // not a watcher handle: a TypeError, nothing dereferenced
      expect(() => addon.flusher({}, 1, ops, rcs)).toThrow(TypeError);
      expect(() => addon.flusher(Object.create(null) as object, 1, ops, rcs)).toThrow(/watcher handle/);
      // arrays of the wrong kind, or descriptors not 8-byte aligned
      expect(() => w.flusher(new Uint8Array(ops.buffer, 4, OP_SIZE), rcs)).toThrow(TypeError);
      expect(() => w.flusher(ops, new Uint32Array(8) as unknown as Int32Array)).toThrow(TypeError);
      expect(() => w.flusher([] as unknown as Uint8Array, rcs)).toThrow(TypeError);
      const f = w.flusher(ops, rcs)!;
      expect(typeof f).toBe('function');
      expect(() => w.flusher(ops, rcs)).toThrow(/already/);
      // capacity: 3 descriptors (ops), 8 results: 3; records: 4 (watch's max)
      for (const n of [4, -1, 1.5, NaN, Infinity, 2 ** 32]) {
        expect(() => f(n, 0)).toThrow(RangeError);
        expect(() => f(n, 0)).toThrow(/\bn is .* 0 to 3\b/);
      }
      for (const max of [5, -1, 0.5, NaN]) {
        expect(() => f(0, max)).toThrow(RangeError);
        expect(() => f(0, max)).toThrow(/\bmax is .* 0 to 4\b/);
      }
      expect(() => (f as (...a: unknown[]) => number)('1', 0)).toThrow(TypeError);
      expect(() => (f as (...a: unknown[]) => number)(1)).toThrow(TypeError);
      // In range it is zc_flush_batch on these very arrays: descriptors of
      // kind 0 are refused one by one (-EINVAL in rcs), nothing is queued.
      rcs.fill(7);
      expect(f(3, 4)).toBe(0);
      expect([...rcs]).toEqual([-22, -22, -22, 7, 7, 7, 7, 7]);
      expect(f(0, 4)).toBe(0); // zc_flush
      w.close();
      expect(() => f(0, 0)).toThrow(/closed/);
      expect(() => w.flusher(ops, rcs)).toThrow(/closed|already/);
    } finally {
      w.close();
      await ring.close();
    }
  });

  it('a flushBatch that outlives its watcher handle (collected) throws, never touches freed memory', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    const { c } = loadNative();
    const ring = Ring.create();
    const out = new Uint8Array(4 * RECORD_SIZE);
    let f: ((n: number, max: number) => number) | null;
    {
      const w = watchRing(ring.eventFd, Number(c.address(ring.ptr)), Number(c.addressOf(out)), 4, () => {}, () => {});
      f = w.flusher(new Uint8Array(new ArrayBuffer(OP_SIZE)), new Int32Array(1))!;
      w.close();
    }
    try {
      if (gc) for (let i = 0; i < 3; i++) gc();
      for (let i = 0; i < 3; i++) await new Promise((res) => setImmediate(res));
      expect(() => f!(0, 0)).toThrow(/closed/);
      f = null;
      if (gc) gc();
    } finally {
      await ring.close();
    }
  });
});
