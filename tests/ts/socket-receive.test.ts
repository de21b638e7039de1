// SPDX-License-Identifier: MIT
// Both ends through the ring: zero-copy sends from pool buffers on one
// ZcSocket, ZcSocket.receive() chunks on the other, checked byte for byte.
import { afterEach, expect, it } from 'vitest';
import { Ring } from '../../ts/index.ts';
import { connected, listening, portOf } from './net-helpers.ts';
import { fillPattern, patternByte, scaled } from './helpers.ts';

let ring: Ring | undefined;
afterEach(() => {
  ring?.close();
  ring = undefined;
});

it('ZcSocket.receive() yields what ZcSocket.send() sent, in order', async () => {
  ring = Ring.create();
  const listener = await listening({ ring, host: '127.0.0.1', port: 0 });
  const [client, server] = await Promise.all([
    connected({ ring, host: '127.0.0.1', port: portOf(listener) }),
    listener.accept(),
  ]);
  const pool = ring.createPool({ count: 4, size: 65536 });
  const total = Math.ceil(scaled(64) / 4) * 4 * 65536; // whole batches of 4

  const sending = (async () => {
    let off = 0;
    const bufs = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
    while (off < total) {
      const batch = bufs.map((b) => {
        fillPattern(b.bytes, off);
        off += b.bytes.length;
        return client.send(b, { mode: 'zc' });
      });
      for (const r of await Promise.all(batch)) expect(r.bytes).toBe(65536);
    }
    for (const b of bufs) b.release();
    await client.close();
  })();

  const stream = server.receive();
  let got = 0;
  let bad = -1;
  for await (const chunk of stream) {
    const d = chunk.data;
    for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== patternByte(got + i)) bad = got + i;
    got += d.length;
    chunk.release();
  }
  await sending;
  expect(bad).toBe(-1);
  expect(got).toBe(total);
  await server.close();
  await listener.close();
  pool.close();
}, 60_000);
