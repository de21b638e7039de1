// SPDX-License-Identifier: MIT
// Receives and accepts stay in flight for their socket's life.  A ring
// lets them hold at most `standingLimit` of its request slots: one more
// fails at once with ENOBUFS naming maxRequests, and sends on the sockets
// already receiving still find slots (before, the receives could take
// every slot and each send waited for one that never came back).
import { once } from 'node:events';
import { connect as netConnect, createServer as netServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Ring, ZcError, type ZcSocket } from '../../ts/index.ts';
import { standingReserve } from '../../ts/ring.ts';
import { createServer } from '../../ts/socket/server.ts';
import { connected, portOf } from './net-helpers.ts';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function echoServer(): Promise<number> {
  const srv: Server = netServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => s.destroy());
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  closers.push(() => new Promise((r) => srv.close(r)));
  return (srv.address() as { port: number }).port;
}

/** Read n bytes from a receive() stream and return them. */
async function readBytes(s: ZcSocket, n: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let len = 0;
  for await (const chunk of s.receive()) {
    got.push(Buffer.from(chunk.data));
    len += chunk.length;
    chunk.release();
    if (len >= n) break;
  }
  return Buffer.concat(got);
}

describe('standing requests (receives, accepts) and the ring request slots', () => {
  it('keeps a sixteenth of the slots (1..256) for sends', () => {
    expect(standingReserve(1)).toBe(1);
    expect(standingReserve(8)).toBe(1);
    expect(standingReserve(64)).toBe(4);
    expect(standingReserve(4096)).toBe(256);
    expect(standingReserve(65536)).toBe(256);
  });

  it('refuses the receive past the limit with ENOBUFS; the others still send and receive', async () => {
    const ring = Ring.create({ entries: 4, maxRequests: 8 });
    closers.push(() => ring.close());
    expect(ring.maxRequests).toBe(8);
    expect(ring.standingLimit).toBe(7);
    const port = await echoServer();
    const socks: ZcSocket[] = [];
    for (let i = 0; i < 8; i++) socks.push(await connected({ ring, host: '127.0.0.1', port }));
    closers.push(() => socks.forEach((s) => s.destroy()));

    // Seven receives take seven slots; the eighth is refused at once.
    const reading = socks.slice(0, 7).map((s) => readBytes(s, 1024));
    expect(ring.standing).toBe(7);
    const refused = await readBytes(socks[7]!, 1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(ZcError);
    const err = refused as ZcError;
    expect(err.code).toBe('ENOBUFS');
    expect(err.message).toMatch(/maxRequests/);
    expect(err.message).toMatch(/entries/);
    expect(ring.standing).toBe(7);

    // The one slot kept free carries every echo request, in turn.
    const sent = socks.slice(0, 7).map((_, i) => Buffer.alloc(1024, i + 1));
    await Promise.all(socks.slice(0, 7).map((s, i) => s.send(sent[i]!, { mode: 'copy' })));
    const echoed = await Promise.all(reading);
    echoed.forEach((b, i) => expect(b.equals(sent[i]!)).toBe(true));

    // A receive that ended gives its slot back: the eighth socket now receives.
    while (ring.standing > 0) await new Promise((r) => setImmediate(r));
    const late = readBytes(socks[7]!, 100);
    await socks[7]!.send(Buffer.alloc(100, 9), { mode: 'copy' });
    expect((await late).equals(Buffer.alloc(100, 9))).toBe(true);
  });

  it('a server on a full ring: the sockets past the limit get an error, the others echo', async () => {
    const ring = Ring.create({ entries: 4, maxRequests: 8 }); // 7 standing: the accept and 6 receives
    closers.push(() => ring.close());
    const errors: ZcError[] = [];
    const server = createServer({ ring }, (s) => {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('error', (e: ZcError) => errors.push(e));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const port = portOf(server);
    const n = 10;
    const clients: Socket[] = [];
    closers.push(() => clients.forEach((c) => c.destroy()));
    const outcomes: Promise<'echoed' | 'closed'>[] = [];
    for (let i = 0; i < n; i++) {
      const c = netConnect({ host: '127.0.0.1', port });
      clients.push(c);
      const want = Buffer.alloc(512, i + 1);
      outcomes.push(
        new Promise((resolve) => {
          const got: Buffer[] = [];
          c.on('data', (d: Buffer) => {
            got.push(d);
            const all = Buffer.concat(got);
            if (all.length >= want.length) resolve(all.equals(want) ? 'echoed' : 'closed');
          });
          c.on('error', () => resolve('closed'));
          c.on('close', () => resolve('closed'));
        }),
      );
      await once(c, 'connect');
      c.write(want);
    }
    const res = await Promise.all(outcomes);
    expect(res.filter((r) => r === 'echoed').length).toBe(6);
    expect(errors.length).toBe(n - 6);
    for (const e of errors) {
      expect(e.code).toBe('ENOBUFS');
      expect(e.message).toMatch(/maxRequests/);
    }
  });
});
