// SPDX-License-Identifier: MIT
// The callback form of send() (issue 9): `send(data, options, cb)` makes no
// Promise, calls cb(err, bytes, zeroCopy) once and never synchronously,
// keeps stream order with Promise sends and writes, reports a send cut
// short with its errno and bytesSent, and throws at once where send() does.
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { Ring, ZcDatagram, ZcError, ZcOwnershipError, type SendResult } from '../../ts/index.ts';
import { childJson, fillPattern, IN_VM, PatternReceiver, runTs } from './helpers.ts';
import { connected } from './net-helpers.ts';

type Outcome = { err: Error | null; bytes: number; zeroCopy: SendResult['zeroCopy']; sync: boolean };

describe.each([true, false])('send(data, options, callback) (deferTaskrun=%s)', (deferTaskrun) => {
  it('settles each send once, never synchronously, in stream order with Promise sends and writes', async () => {
    const rx = await PatternReceiver.start();
    const ring = Ring.create({ deferTaskrun });
    const pool = ring.createPool({ count: 64, size: 65536 });
    try {
      const s = await connected({ ring, host: '127.0.0.1', port: rx.port });
      const stream = new Uint8Array(4 << 20);
      fillPattern(stream, 0);
      const outcomes: Outcome[] = [];
      const pending: Promise<unknown>[] = [];
      let off = 0;
      let i = 0;
      // sizes and kinds that take every path: coalesced copies, lone
      // large copies, zero-copy from pool buffers, Promise sends and writes
      while (off < stream.length) {
        const len = Math.min(stream.length - off, [100, 70_000, 4096, 65536, 1][i % 5]!);
        const part = stream.subarray(off, off + len);
        const kind = i % 4;
        if (kind === 0 || kind === 1) {
          let inCall = true;
          const o: Outcome = { err: null, bytes: -1, zeroCopy: 'unknown', sync: false };
          outcomes.push(o);
          pending.push(
            new Promise<void>((done) => {
              const pb = kind === 1 && len <= 65536 ? pool.acquire() : null;
              if (pb) pb.write(part);
              const data = pb ?? part;
              s.send(data, pb ? { mode: 'zc', length: len } : { mode: 'copy' }, (err, bytes, zeroCopy) => {
                Object.assign(o, { err, bytes, zeroCopy, sync: inCall });
                pb?.release();
                done();
              });
            }),
          );
          inCall = false;
        } else if (kind === 2) {
          pending.push(s.send(part, { mode: 'copy' }));
        } else {
          s.write(Buffer.from(part));
        }
        off += len;
        i++;
        if (i % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(pending);
      await rx.waitFor(stream.length);
      expect(rx.mismatchAt).toBe(-1);
      expect(rx.received).toBe(stream.length);
      for (const o of outcomes) {
        expect(o.sync).toBe(false);
        expect(o.err).toBeNull();
        expect(o.bytes).toBeGreaterThan(0);
        expect(['used', 'copied', 'unknown']).toContain(o.zeroCopy);
      }
      s.destroy();
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('a send cut short calls back with the errno and bytesSent; bad arguments throw at once', async () => {
    const rx = await PatternReceiver.start({ paused: true });
    const ring = Ring.create({ deferTaskrun });
    const pool = ring.createPool({ count: 1, size: 4096 });
    try {
      const s = await connected({ ring, host: '127.0.0.1', port: rx.port });
      s.on('error', () => {});
      const big = new Uint8Array(32 << 20);
      const got = new Promise<{ err: Error | null; bytes: number }>((resolve) => s.send(big, { mode: 'copy' }, (err, bytes) => resolve({ err, bytes })));
      // the peer does not read: the send waits; a reset ends it part-way
      await new Promise((r) => setTimeout(r, 50));
      s.resetAndDestroy();
      const r = await got;
      expect(r.err).toBeInstanceOf(ZcError);
      expect((r.err as ZcError).bytesSent).toBe(r.bytes);
      expect(r.bytes).toBeLessThan(big.length);
      // throws at once, as send() does: a released PoolBuffer, a destroyed socket
      const b = pool.acquire();
      b.release();
      const s2 = await connected({ ring, host: '127.0.0.1', port: rx.port });
      expect(() => s2.send(b, undefined, () => {})).toThrow(ZcOwnershipError);
      s2.destroy();
      expect(() => s2.send(new Uint8Array(1), undefined, () => {})).toThrow(ZcError);
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('ZcDatagram.send and sendTo with a callback deliver every datagram', async () => {
    const sock = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const port = sock.address().port;
    const ring = Ring.create({ deferTaskrun });
    try {
      const u = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port } });
      const v = await ZcDatagram.open({ ring });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, k) =>
          new Promise<number>((resolve, reject) => {
            const cb = (err: Error | null, bytes: number): void => (err ? reject(err) : resolve(bytes));
            const msg = new Uint8Array(100 + k).fill(k);
            if (k % 2) u.send(msg, { mode: 'copy' }, cb);
            else v.sendTo(msg, { address: '127.0.0.1', port }, { mode: 'copy' }, cb);
          }),
        ),
      );
      expect(results).toEqual(Array.from({ length: 20 }, (_, k) => 100 + k));
      for (let t = 0; t < 200 && got.length < 20; t++) await new Promise((r) => setTimeout(r, 5));
      expect(got.map((m) => m.length).sort((a, b) => a - b)).toEqual(results);
      await u.close();
      await v.close();
    } finally {
      ring.close();
      sock.close();
    }
  });
});

describe.each(['defer', 'nodefer'])('an exception thrown by a completion callback (%s)', (defer) => {
  it("is an uncaught exception, not a rejection, and the socket goes on", async () => {
    const r = await runTs('tests/ts/fixtures/callback-throw-child.ts', [defer], { timeoutMs: IN_VM ? 100_000 : 20_000 });
    const out = childJson<{
      seen: string[]; afterBytes: number; ran: number[]; inFlight: number; ranStream: number[]; streamInFlight: number;
      ranPool: number[]; poolInFlight: number;
    }>(r);
    expect(out.seen).toEqual([
      'uncaughtException: from a send callback',
      'uncaughtException: from a write callback',
      'uncaughtException: from the first of four coalesced callbacks',
      'uncaughtException: from the first of four datagram callbacks',
      'uncaughtException: from the first of four pool datagram callbacks',
    ]);
    expect(out.afterBytes).toBe(1000);
    // the sends reaped with the one whose callback threw still settled
    expect(out.ran).toEqual([0, 1, 2, 3]);
    expect(out.inFlight).toBe(0);
    // ...and so did the sends coalesced into one request with it
    expect(out.ranStream).toEqual([0, 1, 2, 3]);
    expect(out.streamInFlight).toBe(0);
    // ...and the pool buffers' datagram sends, each through its own request
    expect(out.ranPool).toEqual([0, 1, 2, 3]);
    expect(out.poolInFlight).toBe(0);
  });
});
