// SPDX-License-Identifier: MIT
// One lifecycle for every resource: Ring, BufferPool, Receiver, RecvStream,
// ZcServer, ZcSocket and ZcDatagram close with a Promise and work with
// `await using`; closing waits for work in flight without blocking the
// event loop; a PoolBuffer disposed while in flight goes back to its pool
// when its send settles.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Receiver } from '../../ts/recv.ts';
import { Ring, ZcDatagram, createServer } from '../../ts/index.ts';
import { childJson, PatternReceiver, runTs, sleep } from './helpers.ts';
import { connected, portOf } from './net-helpers.ts';

describe('await using, for every resource', () => {
  it('closes ring, pool, receiver, stream, server, sockets and datagram sockets at scope end, in reverse order', async () => {
    let ringRef: Ring | undefined;
    let state: Record<string, boolean> = {};
    {
      await using ring = Ring.create();
      ringRef = ring;
      await using pool = ring.createPool({ count: 2, size: 4096 });
      await using rx = Receiver.create(ring, { mode: 'bufring', areaSize: 1 << 20 });
      await using server = createServer({ ring });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const accepted = server.accept();
      await using client = await connected({ ring, port: portOf(server), host: '127.0.0.1' });
      await using conn = await accepted;
      await using stream = rx.receive(conn.fd);
      await using udp = await ZcDatagram.open({ ring });
      const pb = pool.acquire();
      pb.bytes.set([1, 2, 3]);
      expect((await client.send(pb, { length: 3 })).bytes).toBe(3);
      const got = await stream.next();
      expect(got.done).toBe(false);
      got.value?.release();
      pb.release();
      state = { pool: pool.closed, server: !server.listening, udp: udp.closed };
    }
    expect(state).toEqual({ pool: false, server: false, udp: false });
    expect(ringRef?.closed).toBe(true);
  });
});

describe('closing with work in flight', () => {
  it.each([true, false])(
    'ring.close() settles everything without blocking the loop; pool.close() waits for its sends (deferTaskrun=%s)',
    async (deferTaskrun) => {
      const rx = await PatternReceiver.start({ paused: true }); // never reads: sends pile up
      const ring = Ring.create({ deferTaskrun });
      try {
        const sock = await connected({ ring, port: rx.port, host: '127.0.0.1' });
        const pool = ring.createPool({ count: 32, size: 256 * 1024 });
        const sends = Array.from({ length: 32 }, () => sock.send(pool.acquire(), { mode: 'zc' }).then(() => 'ok', (e: Error & { code?: string }) => e.code));
        await sleep(100);
        let poolClosed = false;
        const poolClosing = pool.close().then(() => (poolClosed = true));
        await sleep(20);
        expect(poolClosed).toBe(false); // its buffers are the kernel's
        let ticks = 0;
        const timer = setInterval(() => ticks++, 1);
        const closing = ring.close();
        expect(ring.closed).toBe(true);
        expect(ring.close()).toBe(closing); // idempotent: the same Promise
        await closing;
        clearInterval(timer);
        const codes = await Promise.all(sends);
        expect(codes.length).toBe(32);
        expect(codes.some((c) => c !== 'ok')).toBe(true);
        await poolClosing;
        expect(poolClosed).toBe(true);
        expect(pool.closed).toBe(true);
        expect(sock.destroyed).toBe(true);
        expect(ring.inFlight).toBe(0);
        console.log(`ring.close() with 32 zero-copy sends held by a stalled peer: ${ticks} timer ticks ran meanwhile`);
      } finally {
        await ring.close();
        await rx.close();
      }
    },
  );

  it('a PoolBuffer disposed while in flight goes back to the pool when its send settles', async () => {
    const rx = await PatternReceiver.start({ paused: true });
    const ring = Ring.create();
    try {
      const sock = await connected({ ring, port: rx.port, host: '127.0.0.1' });
      const pool = ring.createPool({ count: 64, size: 256 * 1024 });
      const bufs = Array.from({ length: 64 }, () => pool.acquire());
      const sends = bufs.map((b) => sock.send(b, { mode: 'zc' }).catch(() => undefined));
      await sleep(100);
      const held = bufs.filter((b) => b.inFlight);
      expect(held.length).toBeGreaterThan(0); // 16 MiB does not fit a paused loopback peer
      for (const b of held) b[Symbol.dispose]();
      expect(held.every((b) => !b.released)).toBe(true); // still the kernel's
      expect(pool.available).toBe(0);
      // the peer reads: the sends settle, the disposed buffers go back by themselves
      rx.resume();
      await Promise.all(sends);
      expect(held.every((b) => b.released)).toBe(true);
      expect(pool.available).toBe(held.length);
      await sock.close();
      for (const b of bufs) if (!b.released) b.release();
      expect(pool.available).toBe(64);
      await pool.close();
    } finally {
      await ring.close();
      await rx.close();
    }
  });
});

describe('a factory that throws after libzc made the object', () => {
  // The child makes each constructor's last step throw (it registers the
  // new object in a Set); before, the ring's fds, the pool's pinned slots
  // and the receive area stayed until the ring (or the process) went.
  it.each(['native', 'koffi'])(
    'Ring.create, BufferPool.create and Receiver.create leave no fd, pinned memory, fixed-buffer slot or area behind (%s watcher)',
    async (watcher) => {
      const env = watcher === 'koffi' ? { ...process.env, URING_ZC_NATIVE_POLL: '0' } : process.env;
      const r = await runTs('tests/ts/fixtures/create-throw-child.ts', [], { env, timeoutMs: 60_000 });
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      type Kind = { threw: string[]; held: Record<string, number>; leaked: Record<string, number>; after: string };
      const j = childJson<{ watcher: string; ring: Kind; pool: Kind; receiver: Kind }>(r);
      expect(j.watcher).toBe(watcher);
      for (const kind of ['ring', 'pool', 'receiver'] as const) {
        const k = j[kind];
        expect({ kind, threw: k.threw }).toEqual({ kind, threw: new Array(6).fill('injected') });
        // the ring (two fixed-buffer slots) still takes a new object of the kind
        expect({ kind, after: k.after }).toEqual({ kind, after: 'ok' });
        expect({ kind, io_uring: k.leaked['io_uring'], eventfd: k.leaked['eventfd'], VmPin: k.leaked['VmPin'], VmLck: k.leaked['VmLck'] }).toEqual({
          kind,
          io_uring: 0,
          eventfd: 0,
          VmPin: 0,
          VmLck: 0,
        });
      }
      // what one of each holds, seen by the same check (pool pinning shows where the kernel accounts VmPin)
      expect(j.ring.held['io_uring']).toBe(1);
      // six leaked 16 MiB areas would add 96 MiB of mappings (a bufring area
      // is not pinned); VmSize also moves with the JS heap, by far less
      expect(j.receiver.held['VmSize']).toBeGreaterThanOrEqual(12 * 1024);
      expect(j.receiver.leaked['VmSize']).toBeLessThan(12 * 1024);
    },
    60_000,
  );
});
