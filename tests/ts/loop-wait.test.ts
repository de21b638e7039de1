// SPDX-License-Identifier: MIT
/**
 * RingOptions.loopWait 'ring': the thread's event loop sleeps in
 * io_uring_enter() on the ring (zc_poll.node's prepare handle), which polls
 * libuv's epoll fd.  Everything else the loop waits for must still wake it:
 * timers, other fds (one registered by a timer callback, which libuv's
 * epoll set only gets at its next poll), messages from another thread, the
 * threadpool (fs, dns), child processes, and the ring's own completions.
 * Real sockets, no mocks; the tests hang (and time out) when the sleep
 * misses one of those.  And it must sleep: a wait that never blocks would
 * pass all of those, so one test reads the thread's CPU time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { connect as netConnect, createServer as netServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { Ring, libuvSleepsInRing } from '../../ts/ring.ts';
import { ZcConfigError } from '../../ts/errors.ts';
import { pollWatcherKind } from '../../ts/ffi/poll.ts';
import { tcpPair } from './net-helpers.ts';
import { IN_VM, childJson, runTs } from './helpers.ts';

const native = pollWatcherKind().kind === 'native';

const rings: Ring[] = [];
afterEach(async () => {
  for (const r of rings.splice(0)) await r.close();
});
function ring(loopWait: 'epoll' | 'ring' = 'ring'): Ring {
  const r = Ring.create({ entries: 64, loopWait });
  rings.push(r);
  return r;
}

/** A receive in flight on the ring: it keeps the loop alive, which then sleeps in the ring; stop() ends it. */
async function idleReceive(r: Ring): Promise<{ stop(): Promise<void> }> {
  const { client, server, listener } = await tcpPair(r);
  const stream = server.receive({}, { chunk: (c) => c.release(), end: () => undefined });
  return {
    stop: async () => {
      stream.cancel();
      client.destroy();
      server.destroy();
      await listener.close();
    },
  };
}

/** This thread's CPU time in clock ticks (utime + stime of /proc/thread-self/stat). */
function threadTicks(): number {
  const f = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/**
 * CPU time (ms, at 100 ticks/s) this thread spends while its loop waits `ms`
 * for a timer: a loop that sleeps spends next to none, one whose wait never
 * blocks (a sleep that returns at once) about all its share of a CPU.
 */
async function idleCpuMs(ms: number): Promise<number> {
  const t0 = threadTicks();
  await new Promise<void>((res) => setTimeout(res, ms));
  return (threadTicks() - t0) * 10;
}

/** An echo on the ring: resolves with what came back for each message. */
async function echo(r: Ring, msgs: string[]): Promise<string[]> {
  const { client, server, listener } = await tcpPair(r);
  server.receive({}, {
    chunk: (c) => {
      server.send(c.data, undefined, () => c.release());
    },
    end: () => undefined,
  });
  const out: string[] = [];
  let want = '';
  let got = '';
  let wake: (() => void) | null = null;
  const stream = client.receive({}, {
    chunk: (c) => {
      got += Buffer.from(c.data).toString();
      c.release();
      if (got.length >= want.length && wake) wake();
    },
    end: () => undefined,
  });
  for (const m of msgs) {
    want = m;
    got = '';
    const back = new Promise<void>((res) => (wake = res));
    client.send(Buffer.from(m));
    await back;
    out.push(got);
  }
  stream.cancel();
  client.destroy();
  server.destroy();
  await listener.close();
  return out;
}

describe.runIf(native)('loopWait ring', () => {
  it('is taken by the native watcher and carries a request/response exchange', async () => {
    const r = ring();
    expect(r.loopWait).toBe('ring');
    const msgs = Array.from({ length: 200 }, (_, i) => `m${i}`);
    expect(await echo(r, msgs)).toEqual(msgs);
    expect(r.stats.wakeups).toBeGreaterThan(0);
  });

  it('one ring per thread: a second is refused until the first is closed', async () => {
    const a = ring();
    expect(() => Ring.create({ loopWait: 'ring' })).toThrow(ZcConfigError);
    expect(() => Ring.create({ loopWait: 'ring', deferTaskrun: true })).toThrow(ZcConfigError);
    const b = ring('epoll');
    expect(b.loopWait).toBe('epoll');
    await a.close();
    const c = ring();
    expect(c.loopWait).toBe('ring');
  });

  it('sleeps: an idle wait with a receive in flight costs the thread next to no CPU', async () => {
    const r = ring();
    const idle = await idleReceive(r);
    // 1 s idle: a sleeping loop spends 0-30 ms here, a spinning one 250 ms and
    // more even with the machine's two vCPUs loaded 8-deep.
    expect(await idleCpuMs(1000)).toBeLessThan(IN_VM ? 300 : 100);
    await idle.stop();
  });

  it('is refused on a libuv older than 1.44 (or of unknown version): ring.loopWait reads epoll', () => {
    expect(libuvSleepsInRing(process.versions.uv)).toBe(true);
    expect(libuvSleepsInRing('1.44.0')).toBe(true);
    expect(libuvSleepsInRing('1.51.0-dev')).toBe(true);
    expect(libuvSleepsInRing('2.0.0')).toBe(true);
    expect(libuvSleepsInRing('1.43.0')).toBe(false);
    expect(libuvSleepsInRing('1.9.1')).toBe(false);
    expect(libuvSleepsInRing('')).toBe(false);
    expect(libuvSleepsInRing(undefined)).toBe(false);
  });

  it('wakes for the threadpool (fs, dns) and for a child process', async () => {
    const r = ring();
    expect(r.loopWait).toBe('ring');
    const idle = await idleReceive(r);
    // Each completes on another thread or in another process and wakes this
    // loop through an fd of its epoll set (the threadpool's async handle, the
    // child's pipes and the SIGCHLD signal pipe): nothing else would.
    const text = await readFile(fileURLToPath(import.meta.url), 'utf8');
    expect(text).toContain('wakes for the threadpool');
    const { address } = await lookup('localhost', { family: 4 });
    expect(address).toMatch(/^127\./);
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['-e', 'process.stdout.write("child")'], (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    expect(out).toBe('child');
    await idle.stop();
  });

  it('a timer fires while the loop sleeps in the ring with a receive in flight', async () => {
    const r = ring();
    const { client, server, listener } = await tcpPair(r);
    const stream = server.receive({}, { chunk: (c) => c.release(), end: () => undefined });
    // The check is that the timer fires at all: were the ring's sleep to
    // ignore libuv's timeout, this would wait for good (the test times out).
    await new Promise<void>((res) => setTimeout(res, 30));
    stream.cancel();
    client.destroy();
    server.destroy();
    await listener.close();
  });

  it('wakes for an fd a timer callback registered, and for another thread', async () => {
    const r = ring();
    const { client, server, listener } = await tcpPair(r);
    // A receive in flight: the ring keeps the loop alive and would sleep for good.
    const stream = server.receive({}, { chunk: (c) => c.release(), end: () => undefined });
    // The only other fds: a worker's server (its messages come through the loop's async handle)
    // and, from a timer callback, a node:net socket connecting to it.
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const s = require('node:net').createServer((c) => c.end('hello')).listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
       parentPort.once('message', () => s.close(() => process.exit(0)));`,
      { eval: true },
    );
    const [port] = (await once(w, 'message')) as [number];
    const text = await new Promise<string>((resolve, reject) => {
      setTimeout(() => {
        let data = '';
        const s = netConnect({ host: '127.0.0.1', port });
        s.on('data', (d) => (data += d.toString()));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      }, 5);
    });
    expect(text).toBe('hello');
    w.postMessage('stop');
    await once(w, 'exit');
    stream.cancel();
    client.destroy();
    server.destroy();
    await listener.close();
  });

  // An fd libuv has queued but not yet put into its epoll set (a listen or
  // bind from a timer callback): that turn must not sleep on the epoll fd.
  // The child has no timer, no immediate and a silent peer thread; were its
  // loop to sleep there, only the peer's watchdog would wake it (late: true),
  // or the child hangs and is killed.
  const CHILD_MS = IN_VM ? 120_000 : 30_000;
  it.each(['listen', 'dgram'])('wakes for a %s fd started in the turn it would sleep in', async (mode) => {
    const r = await runTs('tests/ts/fixtures/loop-wait-watcher-child.ts', [mode], { timeoutMs: CHILD_MS });
    expect(r.signal, `the child hung (killed after ${CHILD_MS} ms)\n${r.stderr}`).toBeNull();
    expect(childJson(r)).toEqual({ loopWait: 'ring', got: mode === 'listen' ? 'connection' : 'message', late: false });
  }, CHILD_MS + 10_000);

  it('serves node:net sockets on the same thread while it sleeps in the ring', async () => {
    const r = ring();
    const { client, server, listener } = await tcpPair(r);
    const stream = server.receive({}, { chunk: (c) => c.release(), end: () => undefined });
    const srv = netServer((c) => c.pipe(c));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const addr = srv.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const s = netConnect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    for (let i = 0; i < 50; i++) {
      s.write(`x${i}`);
      const [d] = (await once(s, 'data')) as [Buffer];
      expect(d.toString()).toBe(`x${i}`);
    }
    s.destroy();
    await new Promise<void>((res) => srv.close(() => res()));
    stream.cancel();
    client.destroy();
    server.destroy();
    await listener.close();
  });

  it('a closed ring no longer holds the loop, and the loop still runs', async () => {
    const r = ring();
    expect(await echo(r, ['a', 'b'])).toEqual(['a', 'b']);
    await r.close();
    await new Promise<void>((res) => setTimeout(res, 5));
    await new Promise<void>((res) => setImmediate(res));
  });
});

describe.runIf(!native)('loopWait ring without the addon', () => {
  it('falls back to epoll', async () => {
    expect(ring().loopWait).toBe('epoll');
  });
});
