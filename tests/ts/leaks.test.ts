// SPDX-License-Identifier: MIT
// Nothing leaks: fds (/proc/self/fd), pinned and locked memory (VmPin, VmLck),
// poll handles (a child process must exit on its own), whatever was in flight.
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ring, ZcDatagram, ZcError, ZcSocket, type SendResult } from '../../ts/index.ts';
import { connected, listening, portOf } from './net-helpers.ts';
import { fdCount, IN_VM, PatternReceiver, runTs, scaled, sleep, UdpReceiver, vmKb } from './helpers.ts';

async function cycle(deferTaskrun: boolean, port: number, udpPort: number): Promise<{ settled: number; sent: number; pinnedKb: number }> {
  const ring = Ring.create({ deferTaskrun });
  const pool = ring.createPool({ count: 16, size: 256 * 1024 });
  const listener = await listening({ ring });
  const acc = listener.accept();
  const c = await connected({ ring, host: '127.0.0.1', port: portOf(listener) });
  const s = await acc;
  const pending = listener.accept(); // left pending on purpose
  const paused = await connected({ ring, host: '127.0.0.1', port });
  const udp = await ZcDatagram.open({ ring });
  const [p1, p2] = ZcSocket.pair({ ring });
  const pinnedKb = vmKb('VmPin');
  const ps: Promise<SendResult | void>[] = [];
  // enough to fill the paused peer's buffers: some stay in flight
  for (let i = 0; i < 16; i++) ps.push(paused.send(pool.acquire(), { mode: 'zc' }).catch(() => {}));
  for (let i = 0; i < 8; i++) ps.push(paused.send(new Uint8Array(200_000), { mode: i % 2 ? 'zc' : 'copy' }).catch(() => {}));
  ps.push(c.send(new Uint8Array(1000)));
  ps.push(s.send(new Uint8Array(1000), { mode: 'zc' }));
  ps.push(udp.sendTo(new Uint8Array(100), { address: '127.0.0.1', port: udpPort }, { mode: 'zc' }));
  ps.push(p1.send(new Uint8Array(10), { mode: 'copy' }));
  void p2;
  pending.catch(() => {});
  const settled = Promise.allSettled([...ps, pending]); // observed from the start
  await sleep(50);
  // close with all of that in flight: nothing explicit but the ring
  expect(ring.inFlight).toBeGreaterThan(2);
  ring.close();
  const rs = await settled;
  return { settled: rs.length, sent: ps.length + 1, pinnedKb };
}

/**
 * The fd count once closes in progress are done (destroyed sockets close
 * their fds a loop turn later; under TCG much later): the first value read
 * twice 100 ms apart; at most 5 s.
 */
async function steadyFdCount(): Promise<number> {
  let last = fdCount();
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const now = fdCount();
    if (now === last) break;
    last = now;
  }
  return last;
}

/** The open fds, number -> what they refer to (the listing's own fd left out). */
function fdTable(): Map<string, string> {
  const t = new Map<string, string>();
  for (const n of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${n}`);
    } catch {
      continue; // the listing's own fd, closed by now
    }
    if (target !== `/proc/${process.pid}/fd`) t.set(n, target);
  }
  return t;
}

/**
 * The fds open now that were not open (as the same thing) in `base`, once
 * closes in progress are done: empty as soon as it is, else after 5 s.
 * Compared by fd and target, not by count: with vitest's --no-isolate (the
 * VMs) an earlier file's socket may close meanwhile, and a count would
 * come out one short.
 */
async function fdsOpenedSince(base: Map<string, string>): Promise<string[]> {
  let extra: string[] = [];
  for (let i = 0; i < 50; i++) {
    extra = [...fdTable()].filter(([n, t]) => base.get(n) !== t).map(([n, t]) => `${n} -> ${t}`);
    if (extra.length === 0) break;
    await sleep(100);
  }
  return extra;
}

describe.each([true, false])('no leaks after close (deferTaskrun=%s)', (deferTaskrun) => {
  it('fds and pinned memory return to the baseline after rings close with work in flight', async () => {
    const rx = await PatternReceiver.start({ paused: true });
    const urx = await UdpReceiver.start();
    // warm-up: loads libzc/libc, lazy Node internals
    await cycle(deferTaskrun, rx.port, urx.port);
    // the paused receiver's own accepted sockets are not ours to count
    const dropPeers = () => rx.sockets.splice(0).forEach((x) => x.destroy());
    dropPeers();
    await steadyFdCount();
    const fd0 = fdTable();
    const pin0 = vmKb('VmPin');
    const lck0 = vmKb('VmLck');
    const n = scaled(5, 2);
    for (let i = 0; i < n; i++) {
      const r = await cycle(deferTaskrun, rx.port, urx.port);
      expect(r.settled).toBe(r.sent);
      // the pool was really pinned while it lived, so the probe can see a
      // leak -- where the kernel accounts it: 7.2 accounts nothing (VmPin,
      // RLIMIT_MEMLOCK) for a process with CAP_IPC_LOCK, as root in a VM
      if (r.pinnedKb === pin0 && i === 0) {
        console.warn('leaks: VmPin is not accounted for this process here; only fds and VmLck are checked');
      }
      if (r.pinnedKb !== pin0) expect(r.pinnedKb - pin0).toBeGreaterThanOrEqual(4096);
    }
    // A client's connect completes on the SYN-ACK; this process's node:net
    // server accepts once the final ACK went through (later under load):
    // wait for the last one, at most 5 s.
    for (let i = 0; i < 50 && rx.connections < n + 1; i++) await sleep(100);
    expect(rx.connections).toBe(n + 1);
    dropPeers();
    expect(await fdsOpenedSince(fd0)).toEqual([]);
    expect(vmKb('VmPin')).toBe(pin0);
    expect(vmKb('VmLck')).toBe(lck0);
    await rx.close();
    await urx.close();
  });
});

describe('no handle keeps the process alive', () => {
  it.each([
    ['closed', 'defer'],
    ['closed', 'nodefer'],
    ['idle', 'defer'],
    ['idle', 'nodefer'],
  ])('a child whose ring is %s (%s) exits by itself', async (mode, defer) => {
    const r = await runTs('tests/ts/fixtures/exit-child.ts', [mode, defer], { timeoutMs: IN_VM ? 100_000 : 15_000 });
    expect(r.signal).toBeNull(); // killed by the timeout = a handle leaked
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`exit ${mode} 65536,1000 inFlight=0`);
  });
});

describe('a ring closed while sockets are being opened', () => {
  it('ZcDatagram.open() leaves no fd: it resolves, or rejects with ECANCELED, wherever the close lands', async () => {
    await steadyFdCount();
    const fd0 = fdTable();
    const outcomes = new Set<string>();
    // the close lands 0..9 microtask hops after open(): before the socket
    // op, during the bind, or after the last op's record (before: the fd
    // was left open when the socket's constructor met the closed ring)
    for (let round = 0; round < 3; round++) {
      for (let hops = 0; hops < 10; hops++) {
        const ring = Ring.create();
        const opened = ZcDatagram.open(round === 2 ? { ring } : { ring, host: '127.0.0.1', port: 0 }).then(
          (d) => d.close().then(() => 'opened'),
          (e: unknown) => (e instanceof ZcError ? `${e.op}: ${e.code}` : String(e)),
        );
        for (let k = 0; k < hops; k++) await Promise.resolve();
        await ring.close();
        outcomes.add(await opened);
      }
    }
    for (const o of outcomes) expect(['opened', 'socket: ECANCELED', 'bind: ECANCELED', 'udp.open: ECANCELED']).toContain(o);
    expect(await fdsOpenedSince(fd0)).toEqual([]);
  });

  it('ZcSocket.pair() and ZcDatagram.pair() on a closed ring throw EBADF before making the fds', async () => {
    const ring = Ring.create();
    await ring.close();
    await steadyFdCount();
    const fd0 = fdTable();
    for (const pair of [() => ZcSocket.pair({ ring }), () => ZcDatagram.pair({ ring })]) {
      let err: unknown;
      try {
        pair();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ZcError);
      expect({ op: (err as ZcError).op, code: (err as ZcError).code, hint: (err as ZcError).hint }).toEqual({
        op: 'socketpair',
        code: 'EBADF',
        hint: 'the ring is closed',
      });
    }
    expect(await fdsOpenedSince(fd0)).toEqual([]);
  });
});
