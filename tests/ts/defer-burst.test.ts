// SPDX-License-Identifier: MIT
// A DEFER_TASKRUN ring under a burst of task work.  Linux (7.2's
// io_uring/tw.c: IO_LOCAL_TW_DEFAULT_MAX) runs at most 20 local task-work
// items per io_uring_enter() and signals the eventfd only when the work list
// goes from empty to non-empty: work left over after a reap is announced to
// nobody.  Here 200 sockets receive data in one tick, so 200 receive task
// works queue behind a single eventfd signal; the consumers hold every chunk
// (a release would flush the ring, and so run more work by accident).  All
// of it must arrive without any further activity on the ring: what brings
// the loop back for the leftover work is the eventfd signal of the CQEs each
// capped enter posts, so a ring that muted its eventfd while reaping (as
// libzc does on other rings) would stall here; with muting on DEFER_TASKRUN
// rings, 180 of 200 receives stalled (libzc/ring.c, mute()).  The 'data'
// consumers (the Duplex) flush on their own; they are checked as well.
import { once } from 'node:events';
import { createServer as netServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Ring, type ZcSocket } from '../../ts/index.ts';
import type { ReceivedChunk } from '../../ts/recv.ts';
import { connected } from './net-helpers.ts';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const CONNS = 200;
const BYTES = 100;
/** A stall is forever; this only bounds how long the test waits to say so. */
const STALL_MS = 20_000;

describe.each([
  { deferTaskrun: true, reader: 'receive', name: 'DEFER_TASKRUN' },
  { deferTaskrun: false, reader: 'receive', name: 'COOP_TASKRUN' },
  { deferTaskrun: true, reader: 'data', name: 'DEFER_TASKRUN' },
  { deferTaskrun: false, reader: 'data', name: 'COOP_TASKRUN' },
])('$name ring, $reader', ({ deferTaskrun, reader }) => {
  it(`delivers a burst of ${CONNS} receives that completed in one tick, nothing released`, async () => {
    const peers: Socket[] = [];
    const srv = netServer((s) => {
      peers.push(s);
      s.on('error', () => s.destroy());
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    closers.push(() => new Promise((r) => srv.close(r)));
    closers.push(() => peers.forEach((p) => p.destroy()));
    const port = (srv.address() as { port: number }).port;

    const ring = Ring.create({ entries: 1024, deferTaskrun });
    closers.push(() => ring.close());
    const socks: ZcSocket[] = [];
    closers.push(() => socks.forEach((s) => s.destroy()));
    for (let i = 0; i < CONNS; i++) socks.push(await connected({ ring, host: '127.0.0.1', port }));
    while (peers.length < CONNS) await new Promise((r) => setTimeout(r, 5));

    // Every socket's receive in flight, each consumer holding what it gets.
    const held: ReceivedChunk[] = [];
    const got = new Uint32Array(CONNS);
    let complete = 0;
    let allIn!: () => void;
    const all = new Promise<void>((r) => (allIn = r));
    const heldData: Buffer[] = [];
    const issuedBefore = ring.stats.issued;
    const count = (i: number, n: number): void => {
      const total = (got[i] ?? 0) + n;
      got[i] = total;
      if (total === BYTES && ++complete === CONNS) allIn();
    };
    socks.forEach((s, i) => {
      if (reader === 'data') {
        s.on('data', (d: Buffer) => {
          heldData.push(d);
          count(i, d.length);
        });
        return;
      }
      void (async () => {
        for await (const chunk of s.receive({ mode: 'bufring' })) {
          held.push(chunk);
          count(i, chunk.length);
        }
      })();
    });
    // Every receive handed to the kernel before the peers write (not a timed guess).
    while (ring.stats.issued - issuedBefore < CONNS) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setImmediate(r));

    // One tick: node:net writes each peer's bytes at once (libuv tries the
    // write synchronously), so all the receives complete before we reap.
    const payload = Buffer.alloc(BYTES, 0x5a);
    for (const p of peers) p.write(payload);

    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((r) => (timer = setTimeout(() => r('stalled'), STALL_MS)));
    const outcome = await Promise.race([all.then(() => 'delivered' as const), stalled]);
    clearTimeout(timer);
    expect(
      { outcome, complete, bytes: got.reduce((a, b) => a + b, 0) },
      `${CONNS - complete} of ${CONNS} sockets still waiting after ${STALL_MS} ms`,
    ).toEqual({ outcome: 'delivered', complete: CONNS, bytes: CONNS * BYTES });
    for (const c of held) expect(c.data.every((b) => b === 0x5a)).toBe(true);
    for (const d of heldData) expect(d.every((b) => b === 0x5a)).toBe(true);
    for (const c of held) c.release();
  });
});
