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
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { connect as netConnect, createServer as netServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { Ring, libuvSleepsInRing } from '../../ts/ring.ts';
import { ZcConfigError } from '../../ts/errors.ts';
import { pollWatcherKind } from '../../ts/ffi/poll.ts';
import { freeLoopSleep, listening, netEcho, portOf, ringClient, sleepingIn, tcpPair } from './net-helpers.ts';
import { ringTakesSleep, staysInRing } from './loop-sleep.ts';
import { IN_VM, childJson, idleCpuMs, runTs } from './helpers.ts';

const native = pollWatcherKind().kind === 'native';

const rings: Ring[] = [];
function track(r: Ring): Ring {
  rings.push(r);
  return r;
}
beforeEach(freeLoopSleep);
afterEach(async () => {
  for (const r of rings.splice(0)) await r.close();
});
function ring(loopWait: 'epoll' | 'ring' | 'auto' = 'ring', deferTaskrun = false): Ring {
  const r = Ring.create({ entries: 64, loopWait, deferTaskrun });
  rings.push(r);
  return r;
}

/**
 * A node:net echo on a worker thread that answers 1 ms late, and ring
 * sockets to it: this loop sleeps for each reply, and what wakes it is the
 * ring's completion (an echo inside this thread never sleeps: its replies
 * come back inside the flush's own io_uring_enter()).
 */
async function slowEcho(): Promise<{
  client(r: Ring): ReturnType<typeof ringClient>;
  stop(): Promise<void>;
}> {
  const w = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const s = require('node:net').createServer({ noDelay: true }, (c) => c.on('data', (d) => setTimeout(() => c.write(d), 1)))
       .listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
     parentPort.once('message', () => process.exit(0));`,
    { eval: true },
  );
  const [port] = (await once(w, 'message')) as [number];
  return {
    client: (r) => ringClient(r, port),
    stop: async () => {
      w.postMessage('stop');
      await once(w, 'exit');
    },
  };
}

/** The default ring with its loop's sleep moved to `where` (node:net traffic moves it to epoll). */
const autoRing = (where: 'ring' | 'epoll'): Promise<Ring> => sleepingIn(ring('auto'), where);

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

/**
 * Thread CPU allowed in 1 s of idle wait inside the VMs: TCG makes each
 * timer and wakeup dearer, and on a loaded host an idle ring read 320-340 ms
 * there (cold CI, session 19); a loop that never blocks reads about all of it.
 */
const IDLE_VM_MS = 500;

/** n round trips of a ringClient with an echo on the same ring (a ring socket that sends back what it receives). */
async function echo(r: Ring, n: number): Promise<void> {
  const listener = await listening({ ring: r });
  const [client, server] = await Promise.all([ringClient(r, portOf(listener)), listener.accept()]);
  server.receive({}, {
    chunk: (c) => {
      server.send(c.data, undefined, () => c.release());
    },
    end: () => undefined,
  });
  await client.roundTrips(n);
  client.close();
  server.destroy();
  await listener.close();
}

describe.runIf(native)('loopWait ring', () => {
  it('is taken by the native watcher and carries a request/response exchange', async () => {
    const r = ring();
    expect(r.loopWait).toBe('ring');
    await echo(r, 200);
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
    expect(await idleCpuMs(1000)).toBeLessThan(IN_VM ? IDLE_VM_MS : 100);
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
    await echo(r, 2);
    await r.close();
    await new Promise<void>((res) => setTimeout(res, 5));
    await new Promise<void>((res) => setImmediate(res));
  });
});

// The default: the first ring of the main thread sleeps in the ring while
// the loop's wakeups are mostly its completions, in epoll while they are
// mostly other fds' (node:net) or timers' (zc_poll.node's tally()).
describe.runIf(native)('loopWait auto', () => {
  it('is the default: takes the sleep on a ring-only thread, gives it up under node:net traffic and takes it back', async () => {
    const echo = await slowEcho();
    const r = track(Ring.create({ entries: 64 }));
    expect([r.loopWait, r.loopSleep]).toEqual(['auto', 'ring']);
    const c = await echo.client(r);
    // Setting up a thread and connections may have moved it (each is a few
    // foreign wakeups), and in a TCG guest the test runner's own messages
    // are foreign wakeups among slow round trips (stock VM, session 21: still
    // in epoll after 100): the ring's traffic takes it back, in a batch or a few.
    // In the ring, the doorbell is not polled: its sleep wakes for the
    // socket (counted from the batch's start: the setup's epoll phase, if
    // any, rang it).
    const { switches: s0, bells: [rang0] } = await staysInRing(r, c, 20);
    // node:net on the same thread, the ring idle with a receive in flight
    await netEcho(100);
    expect(r.loopSleep).toBe('epoll');
    // and the ring's own traffic again: back in the ring, one switch each way;
    // in epoll the doorbell rang for its replies (each lands on a polled bell,
    // whoever reaps it) and those wakeups counted as the ring's; back in the
    // ring it is not polled
    await ringTakesSleep(r, c);
    expect(r.loopSwitches - s0).toBe(2);
    const [rang] = r.bells!;
    expect(rang).toBeGreaterThan(rang0);
    await c.roundTrips(20);
    expect(r.bells![0]).toBe(rang);
    c.close();
    await echo.stop();
  });

  it('does not flap: traffic half the ring\'s, half node:net\'s, moves the sleep a few times at most', async () => {
    const echo = await slowEcho();
    const r = ring('auto');
    const c = await echo.client(r);
    for (let i = 0; i < 10; i++) {
      await c.roundTrips(8);
      await netEcho(8);
    }
    expect(r.loopSwitches).toBeLessThan(10);
    c.close();
    await echo.stop();
  });

  it.each(['ring', 'epoll'] as const)('an idle loop sleeping in %s costs the thread next to no CPU', async (where) => {
    const r = await autoRing(where);
    const idle = await idleReceive(r);
    expect(await idleCpuMs(1000)).toBeLessThan(IN_VM ? IDLE_VM_MS : 100);
    await idle.stop();
  });

  it.each(['ring', 'auto, in the ring', 'auto, in epoll'] as const)(
    'loopWait %s: timers, the threadpool, a child process and a signal wake the loop',
    async (how) => {
      const r = how === 'ring' ? ring('ring') : await autoRing(how === 'auto, in epoll' ? 'epoll' : 'ring');
      const idle = await idleReceive(r);
      await new Promise<void>((res) => setTimeout(res, 20));
      expect(await readFile(fileURLToPath(import.meta.url), 'utf8')).toContain('loopWait auto');
      expect((await lookup('localhost', { family: 4 })).address).toMatch(/^127\./);
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['-e', 'process.stdout.write("child")'], (e, stdout) => (e ? reject(e) : resolve(stdout))),
      );
      expect(out).toBe('child');
      // A signal from another process: only the signal pipe in libuv's epoll set wakes the loop.
      const got = new Promise<void>((res) => process.once('SIGUSR2', () => res()));
      execFile('kill', ['-USR2', String(process.pid)]);
      await got;
      // ...and the ring's own traffic still flows.
      await echo(r, 2);
      await idle.stop();
    },
  );

  it('every ring that cannot have the sleep reads epoll and carries its traffic', async () => {
    const d = ring('auto', true); // deferTaskrun: the ring fd cannot be polled
    expect(d.loopWait).toBe('epoll');
    const a = ring('auto');
    expect(a.loopWait).toBe('auto');
    const b = ring('auto'); // a second ring of the thread
    expect(b.loopWait).toBe('epoll');
    const e = ring('epoll');
    expect(e.loopWait).toBe('epoll');
    for (const r of [d, a, b, e]) await echo(r, 3);
    // the sleeper closed: the next ring has it
    await a.close();
    expect(ring('auto').loopWait).toBe('auto');
  });

  it.each([
    ['a worker thread', 'worker', {}],
    ['the koffi watcher (URING_ZC_NATIVE_POLL=0)', 'main', { URING_ZC_NATIVE_POLL: '0' }],
  ] as const)('on %s it reads epoll and carries traffic', async (_, mode, env) => {
    const r = await runTs('tests/ts/fixtures/loop-wait-auto-child.ts', [mode], { env: { ...process.env, ...env } });
    expect(childJson(r)).toEqual({ loopWait: 'epoll', loopSleep: 'epoll', got: 50 });
  });

  it('an explicit ring takes the sleep over from the default one, and both rings keep working', async () => {
    const a = ring('auto');
    expect(a.loopSleep).toBe('ring');
    const b = ring('ring');
    expect([a.loopWait, a.loopSleep, b.loopWait, b.loopSleep]).toEqual(['epoll', 'epoll', 'ring', 'ring']);
    await echo(a, 3);
    await echo(b, 3);
    // the loop sleeps (in b) with a receive in flight on each
    const ia = await idleReceive(a);
    const ib = await idleReceive(b);
    expect(await idleCpuMs(1000)).toBeLessThan(IN_VM ? IDLE_VM_MS : 100);
    expect(() => Ring.create({ loopWait: 'ring' })).toThrow(ZcConfigError);
    await ia.stop();
    await ib.stop();
  });
});

describe.runIf(!native)('loopWait ring without the addon', () => {
  it('falls back to epoll', async () => {
    expect(ring().loopWait).toBe('epoll');
  });
});
