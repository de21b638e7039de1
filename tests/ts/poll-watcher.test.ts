// SPDX-License-Identifier: MIT
// The rings' watcher (ts/ffi/poll.ts; it polls the ring fd, or the eventfd
// of a DEFER_TASKRUN ring): the zc_poll.node addon (libzc/node/, mapped
// in zc_poll.h: reaps in C, one callback into JS per wakeup) and its
// fallback, koffi's poll handle.  Each case runs in a child process with
// either watcher, so a handle left referenced (the child never exits) or a
// crash at teardown shows.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ring } from '../../ts/index.ts';
import { libraryPath, loadNative } from '../../ts/ffi/libzc.ts';
import { memoryView, POLL_ADDON, pollWatcherKind } from '../../ts/ffi/poll.ts';
import { probe } from '../../ts/probe.ts';
import { childJson, IN_VM, runTs } from './helpers.ts';

const TIMEOUT = IN_VM ? 100_000 : 20_000;
const child = (mode: string, env: NodeJS.ProcessEnv = {}) =>
  runTs('tests/ts/fixtures/watcher-child.ts', [mode], { env: { ...process.env, ...env }, timeoutMs: TIMEOUT });

describe('the ring watcher', () => {
  it('is the native addon in this checkout (make -C libzc builds it next to libzc.so), and probe says so', () => {
    const info = pollWatcherKind();
    expect(info).toMatchObject({ kind: 'native', reason: null });
    expect(info.path).toBe(join(libraryPath(), '..', POLL_ADDON));
    expect(probe().pollWatcher.kind).toBe('native');
    const ring = Ring.create();
    try {
      expect(ring.watcher).toBe('native');
    } finally {
      void ring.close();
    }
  });

  it("view() keeps a length above 4 GiB (a pool's or receive area's), not cut to 32 bits", () => {
    expect(pollWatcherKind().kind).toBe('native');
    // An external ArrayBuffer over real memory: nothing past its first
    // bytes is touched, only the length is checked.
    const u8 = new Uint8Array(4096);
    const addr = loadNative().c.addressOf(u8);
    // 4 GiB exactly was a view of 0 bytes.  Past the largest ArrayBuffer
    // this Node makes (4 GiB in Node 20), a throw, never a shorter view.
    for (const len of [4096, 2 ** 32 - 4096, 2 ** 32, 2 ** 32 + 8192, 2 ** 40]) {
      let got: number | string;
      try {
        got = memoryView(addr, len).byteLength;
      } catch (e) {
        got = 'threw';
        expect(len).toBeGreaterThan(2 ** 32);
        expect(e).toBeInstanceOf(Error);
      }
      if (got !== 'threw') expect(got).toBe(len);
    }
    expect(new Uint8Array(memoryView(addr, 2 ** 32), 0, 1)[0]).toBe(0);
    expect(() => memoryView(addr, -1)).toThrow(TypeError);
    expect(() => memoryView(addr, 1.5)).toThrow(TypeError);
  });

  it('falls back to koffi when the addon is missing next to libzc.so, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'uring-zc-noaddon-'));
    try {
      copyFileSync(libraryPath(), join(dir, 'libzc.so'));
      const r = await child('echo', { URING_ZC_LIB: join(dir, 'libzc.so') });
      expect(r.signal).toBeNull();
      expect(childJson(r)).toMatchObject({ watcher: 'koffi', got: 100 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stays loaded after the worker threads that alone loaded it are gone (-z nodelete: their close callbacks run after dlclose)', async () => {
    const r = await child('worker-only');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(childJson(r)).toMatchObject({ before: false, got: 'www', codes: [1, 1, 1], after: true });
  });

  describe.each([
    ['native', {}],
    ['koffi', { URING_ZC_NATIVE_POLL: '0' }],
  ] as const)('%s', (kind, env) => {
    it('a ring gets its records: 100 round trips with an echo peer, woken by the watcher', async () => {
      const r = await child('echo', env);
      expect(r.signal).toBeNull();
      const j = childJson<{ watcher: string; got: number; wakeups: number }>(r);
      expect(j.watcher).toBe(kind);
      expect(j.got).toBe(100);
      expect(j.wakeups).toBeGreaterThan(0);
    });

    it('close() from inside a wakeup (a receive continuation) closes it; the process exits', async () => {
      const r = await child('close-in-cb', env);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      const j = childJson<{ watcher: string; first: string; wakeups: number }>(r);
      expect(j).toMatchObject({ watcher: kind, first: 'x' });
      expect(j.wakeups).toBeGreaterThan(0);
    });

    it('close() while the eventfd is readable and not yet polled: the receive settles, the process exits', async () => {
      const r = await child('close-pending', env);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      const j = childJson<{ watcher: string; next: string }>(r);
      expect(j.watcher).toBe(kind);
      expect(['chunk', 'done', 'ZcError']).toContain(j.next);
    });

    it('a CQE posted before the watcher is first polled wakes it (the ring fd is level-triggered)', async () => {
      const r = await child('before-arm', env);
      expect(r.signal).toBeNull(); // killed by the timeout = the wakeup was lost
      const j = childJson<{ watcher: string; pending: number; wakeups: number }>(r);
      // the CQE sat in the kernel's CQ, and only the watcher could bring it
      expect(j).toMatchObject({ watcher: kind, watches: 'ring', pending: 1, got: 'q' });
      expect(j.wakeups).toBeGreaterThan(0);
    });

    it('a DEFER_TASKRUN ring keeps its eventfd, and the same wakeup is not lost', async () => {
      const r = await child('before-arm-defer', env);
      expect(r.signal).toBeNull();
      const j = childJson<{ watcher: string; wakeups: number }>(r);
      expect(j).toMatchObject({ watcher: kind, watches: 'eventfd', got: 'q' });
      expect(j.wakeups).toBeGreaterThan(0);
    });

    it('completions beyond the CQ (the kernel overflow list) all arrive', async () => {
      const r = await child('overflow', env);
      expect(r.signal).toBeNull();
      const j = childJson<{ watcher: string; overflowed: number; ok: number; n: number }>(r);
      expect(j).toMatchObject({ watcher: kind, ok: j.n });
      // -1: the kernel's fdinfo does not list the overflow; 0 would mean no overflow was made
      expect(j.overflowed === -1 || j.overflowed > 0).toBe(true);
    });

    it('an idle ring left open does not keep the process alive (no handle left at exit)', async () => {
      const r = await child('open', env);
      expect(r.signal).toBeNull(); // killed by the timeout = a referenced handle
      expect(r.code).toBe(0);
      expect(childJson(r)).toMatchObject({ watcher: kind, open: true });
    });

    it('a worker thread exiting, or terminated, with its ring open and a receive armed', async () => {
      const r = await child('worker', env);
      expect(r.signal).toBeNull(); // a SIGSEGV here: a close callback ran after the addon was unloaded
      expect(r.code).toBe(0);
      // a worker that exits (not terminated) frees its open ring and sockets
      expect(childJson(r)).toMatchObject({ watcher: kind, got: 'w', code: 0, code2: 1, leaked: { io_uring: 0, eventfd: 0, socket: 0 } });
    });
  });
});
