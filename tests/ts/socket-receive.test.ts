// SPDX-License-Identifier: MIT
// ZcSocket.receive() on both backends: chunks in order (checked byte for
// byte against random data, zero-copy sends from pool buffers on the ring), the end, a reset,
// cancel, a second receive, asyncDispose, AbortSignal, destroy, and the
// exclusion with the Duplex side mean the same over io_uring and node:net.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, ZcError, type Backend, type ChunkStream, type ZcSocket } from '../../ts/index.ts';
import { QUEUE_LIMIT } from '../../ts/socket/net-receive.ts';
import { backendPair, connected, listening, portOf, until } from './net-helpers.ts';
import { scaled, sleep } from './helpers.ts';

describe.each<Backend>(['uring', 'net'])('backend %s', (backend) => {
  let ring: Ring | undefined;
  beforeAll(() => {
    if (backend === 'uring') ring = Ring.create();
  });
  afterAll(async () => {
    await ring?.close();
  });
  const pair = (): ReturnType<typeof backendPair> => backendPair(backend, ring);

  it('receive() yields what send() sent, in order, then ends at the FIN', async () => {
    const { client, server, done } = await pair();
    const size = 65536;
    const total = Math.ceil(scaled(64) / 4) * 4 * size; // whole batches of 4
    // random bytes, made and compared natively (cheap under TCG in the VMs)
    const expected = randomBytes(total);
    const sending = (async () => {
      let off = 0;
      if (ring) {
        // zero-copy sends from registered memory
        const pool = ring.createPool({ count: 4, size });
        const bufs = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
        while (off < total) {
          const batch = bufs.map((b) => {
            b.bytes.set(expected.subarray(off, off + size));
            off += size;
            return client.send(b, { mode: 'zc' });
          });
          for (const r of await Promise.all(batch)) expect(r.bytes).toBe(size);
        }
        for (const b of bufs) b.release();
        await pool.close();
      } else {
        while (off < total) {
          const b = expected.subarray(off, off + size);
          off += size;
          expect((await client.send(b)).bytes).toBe(size);
        }
      }
      await client.close();
    })();

    const stream: ChunkStream = server.receive();
    expect(stream.mode).toBe(backend === 'net' ? 'net' : 'bufring');
    let got = 0;
    let bad = -1;
    let first = true;
    for await (const chunk of stream) {
      expect(chunk.streamOffset).toBe(got);
      const d = chunk.data;
      expect(d.length).toBe(chunk.length);
      if (bad < 0 && !d.equals(expected.subarray(got, got + d.length))) bad = got;
      got += d.length;
      if (first) {
        // a copy outlives the chunk; the chunk itself does not
        first = false;
        const copy = chunk.copy();
        chunk.release();
        expect(chunk.released).toBe(true);
        expect(() => chunk.data).toThrow(/released/);
        expect(() => chunk.release()).toThrow(/already released/);
        expect(copy.equals(expected.subarray(0, copy.length))).toBe(true);
      } else {
        chunk.release();
      }
    }
    await sending;
    expect(bad).toBe(-1);
    expect(got).toBe(total);
    expect(stream.bytes).toBe(total);
    expect(stream.done).toBe(true);
    await stream.finished;
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    await done();
  }, 60_000);

  it('a reset ends the stream with ZcError ECONNRESET once, then done', async () => {
    const { client, server, done } = await pair();
    server.on('error', () => {}); // the socket may report the reset too
    const stream = server.receive();
    await client.send(Buffer.from('hello'));
    const r = await stream.next();
    expect(r.done).toBe(false);
    if (!r.done) {
      expect(r.value.copy().toString()).toBe('hello');
      r.value.release();
    }
    client.resetAndDestroy();
    const err = await stream.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ZcError);
    expect(err).toMatchObject({ code: 'ECONNRESET', op: 'recv' });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    await stream.finished;
    await done();
  });

  it('cancel() releases queued chunks and ends; the socket stays open, and a new receive() goes on', async () => {
    const { client, server, done } = await pair();
    const stream = server.receive();
    await client.send(Buffer.from('abc'));
    await until(() => stream.queued > 0);
    expect(() => server.receive()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    stream.cancel();
    expect(stream.queued).toBe(0);
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    await stream.finished;
    expect(server.destroyed).toBe(false);
    // the socket still sends and receives
    const again = server.receive();
    expect((await server.send(Buffer.from('pong'))).bytes).toBe(4);
    const gotPong = new Promise<string>((res) => client.once('data', (d: Buffer) => res(d.toString())));
    expect(await gotPong).toBe('pong');
    await client.send(Buffer.from('xyz'));
    const r = await again.next();
    expect(r.done).toBe(false);
    if (!r.done) {
      expect(r.value.copy().toString()).toBe('xyz');
      expect(r.value.streamOffset).toBe(0); // offsets count from the start of this receive
      r.value.release();
    }
    {
      await using s = again;
      expect(s.done).toBe(false);
    }
    expect(again.done).toBe(true);
    await done();
  });

  it('an aborted signal, and destroying the socket, end a waiting iterator cleanly', async () => {
    const { client, server, done } = await pair();
    const ac = new AbortController();
    const stream = server.receive({ signal: ac.signal });
    const first = stream.next();
    ac.abort();
    expect(await first).toEqual({ value: undefined, done: true });
    await stream.finished;

    const second = client.receive();
    const waiting = second.next();
    client.destroy();
    expect(await waiting).toEqual({ value: undefined, done: true });
    await second.finished;
    await once(client, 'close');
    expect(() => client.receive()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await done();
  });

  it('receive() and the Duplex side exclude each other; bad options are refused on both', async () => {
    const { client, server, done } = await pair();
    server.on('data', () => {});
    await sleep(10);
    expect(() => server.receive()).toThrow(/already reading/);
    expect(() => client.receive({ areaSize: -1 })).toThrow(/areaSize/);
    // receive() first: 'data' listeners get nothing, the chunks go to the stream
    const stream = client.receive();
    const seen: Buffer[] = [];
    client.on('data', (d: Buffer) => seen.push(d));
    await server.send(Buffer.from('to the stream'));
    const r = await stream.next();
    expect(r.done ? '' : r.value.copy().toString()).toBe('to the stream');
    expect(seen).toEqual([]);
    stream.cancel();
    await done();
  });
});

describe('backend net', () => {
  it('chunks not taken pause the socket near QUEUE_LIMIT (backpressure), and nothing is lost', async () => {
    const listener = await listening({ backend: 'net' });
    const [client, server] = await Promise.all([connected({ backend: 'net', host: '127.0.0.1', port: portOf(listener) }), listener.accept()]);
    const total = scaled(16 << 20, 4 * QUEUE_LIMIT);
    const data = randomBytes(total);
    const sent = client.send(data).then(() => client.end());
    const stream = server.receive();
    await until(() => stream.bytes >= QUEUE_LIMIT);
    await sleep(50);
    // paused: at most the limit plus what node:net had read before the pause took effect
    expect(stream.bytes).toBeLessThan(QUEUE_LIMIT + (1 << 20));
    expect(stream.bytes).toBeLessThan(total);
    let got = 0;
    let bad = -1;
    for await (const c of stream) {
      const d = c.data;
      if (bad < 0 && !d.equals(data.subarray(got, got + d.length))) bad = got;
      got += d.length;
      c.release();
    }
    await sent;
    expect(bad).toBe(-1);
    expect(got).toBe(total);
    client.destroy();
    server.destroy();
    await listener.close();
  }, 60_000);

  async function until(cond: () => boolean): Promise<void> {
    while (!cond()) await sleep(5);
  }
});
