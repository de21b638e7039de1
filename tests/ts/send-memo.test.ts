// SPDX-License-Identifier: MIT
// The send lane's memo (ts/socket/lane.ts: the ArrayBuffer of its last
// Uint8Array send, that buffer's pool and address), checked on real rings
// and sockets, every byte compared: views of one ArrayBuffer at every
// offset between other buffers' and pool sends (coalesced, alone, with a
// destination); pool memory of another ring refused on every send, not
// only the first; an ArrayBuffer detached by each kind of transfer refused
// with the cause and the fix, its new owner's memory sent from its own
// address; a resizable ArrayBuffer across resizes; the memo dropped when
// the socket closes.
import { Worker } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Ring, ZcDatagram, ZcOwnershipError, type ZcSocket } from '../../ts/index.ts';
import { fillPattern, patternByte, sleep, UdpReceiver } from './helpers.ts';
import { tcpPair, until } from './net-helpers.ts';

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/**
 * Whether a WeakRef's target is collected within a few full collections.
 * (deref() keeps its target alive to the end of the job that called it:
 * never a collection in the same job as a deref.)
 */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    gc();
    await sleep(5);
    if (ref.deref() === undefined) return true;
    await sleep(1);
  }
  return false;
}

/** Collects what a socket receives. */
function collect(s: ZcSocket): { bytes: () => Buffer; length: () => number } {
  const got: Buffer[] = [];
  let n = 0;
  s.on('data', (d: Buffer) => {
    got.push(Buffer.from(d));
    n += d.length;
  });
  return { bytes: () => Buffer.concat(got), length: () => n };
}

/**
 * Waits until rx holds as many bytes as `want` (then `settleMs` more, for
 * anything extra to show), and checks they are want's bytes in order.
 */
async function expectReceived(rx: ReturnType<typeof collect>, want: Uint8Array[], settleMs = 0): Promise<void> {
  const total = want.reduce((n, w) => n + w.length, 0);
  await until(() => rx.length() >= total);
  if (settleMs > 0) await sleep(settleMs);
  expect(rx.length()).toBe(total);
  expect(rx.bytes().equals(Buffer.concat(want))).toBe(true);
}

/** The error a call throws, or null. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return null;
}

/** An ArrayBuffer of `n` bytes holding the pattern from `start`. */
function patterned(n: number, start: number): ArrayBuffer {
  const ab = new ArrayBuffer(n);
  fillPattern(new Uint8Array(ab), start);
  return ab;
}

type Send = (s: ZcSocket, data: Uint8Array, opts: { coalesce: boolean; offset?: number; length?: number }) => Promise<unknown>;
const viaPromise: Send = (s, data, opts) => s.send(data, { mode: 'copy', ...opts });
const viaCallback: Send = (s, data, opts) =>
  new Promise((resolve, reject) => {
    s.send(data, { mode: 'copy', ...opts }, (err, bytes) => (err ? reject(err) : resolve(bytes)));
  });

describe.each([true, false])('views of one ArrayBuffer at every offset (deferTaskrun=%s)', (deferTaskrun) => {
  it.each([
    ['coalesced, Promise', true, viaPromise],
    ['alone, Promise', false, viaPromise],
    ['coalesced, callback', true, viaCallback],
    ['alone, callback', false, viaCallback],
  ] as const)('%s: between other buffers and pool sends, every byte in order', async (_name, coalesce, send) => {
    const ring = Ring.create({ deferTaskrun });
    try {
      const { client, server, listener } = await tcpPair(ring);
      const rx = collect(server);
      const pool = ring.createPool({ count: 4, size: 4096 });
      const A = patterned(4096, 0); // the memo's buffer, sent again and again
      const B = patterned(4096, 1 << 20); // another
      const poolView = pool.acquire(); // pool memory sent as a Uint8Array (its pool is memoized)
      fillPattern(poolView.bytes, 2 << 20);
      const pb = pool.acquire(); // a PoolBuffer send
      fillPattern(pb.bytes, 3 << 20);
      const want: Uint8Array[] = [];
      const sends: Promise<unknown>[] = [];
      const go = (data: Uint8Array, opts: { offset?: number; length?: number } = {}): void => {
        const off = opts.offset ?? 0;
        want.push(Uint8Array.from(data.subarray(off, opts.length === undefined ? undefined : off + opts.length)));
        sends.push(send(client, data, { coalesce, ...opts }));
      };
      for (let off = 0; off < 4096; off += 37) {
        const len = 1 + ((off * 7) % 300);
        const end = Math.min(4096, off + len);
        go(new Uint8Array(A, off, end - off));
        go(Buffer.from(A, end >> 1, (end >> 1) % 61)); // a Buffer of A at another offset, the memo hit
        if (off % 3 === 0) go(new Uint8Array(B, 4096 - end, end - off)); // memo miss, then A again
        if (off % 5 === 0) go(new Uint8Array(A), { offset: off, length: end - off }); // the offset an option
        if (off % 7 === 0) go(poolView.bytes.subarray(off, end)); // pool memory, as a view
        if (off % 11 === 0) {
          // a PoolBuffer (no memo) waits for its own send before its next
          want.push(Uint8Array.from(pb.bytes.subarray(off, end)));
          sends.push(client.send(pb, { mode: 'copy', coalesce, offset: off, length: end - off }));
          await sends[sends.length - 1];
        }
        if (off % 13 === 0) await sleep(0); // some ticks end here, some go on
      }
      await Promise.all(sends);
      await expectReceived(rx, want);
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });
});

describe('views of one ArrayBuffer with a destination', () => {
  it('sendTo at every offset, other buffers between, each datagram byte for byte', async () => {
    const rx = await UdpReceiver.start();
    const ring = Ring.create();
    try {
      const u = await ZcDatagram.open({ ring });
      const A = patterned(2048, 0);
      const B = patterned(2048, 5000);
      const want: Buffer[] = [];
      const sends: Promise<unknown>[] = [];
      const to = { address: '127.0.0.1', port: rx.port };
      for (let off = 0; off < 2048; off += 97) {
        const a = new Uint8Array(A, off, Math.min(200, 2048 - off));
        want.push(Buffer.from(a));
        sends.push(u.sendTo(a, to, { mode: 'copy' }));
        if (off % 2 === 0) {
          const b = new Uint8Array(B, 2048 - off - 1, 1 + (off % 50));
          want.push(Buffer.from(b));
          sends.push(u.sendTo(b, to, { mode: 'copy' }));
        }
        // one per tick: loopback UDP drops what the receiver's buffer has no room for
        await Promise.all(sends);
      }
      await rx.waitFor(want.length);
      expect(rx.datagrams.map((d) => d.toString('hex'))).toEqual(want.map((d) => d.toString('hex')));
      await u.close();
    } finally {
      ring.close();
      await rx.close();
    }
  });
});

describe('pool memory of another ring', () => {
  it.each([true, false])('is refused on every send, memoized buffers between (coalesce=%s)', async (coalesce) => {
    const a = Ring.create();
    const b = Ring.create();
    try {
      const foreign = a.createPool({ count: 2, size: 4096 });
      const fb = foreign.acquire();
      const own = b.createPool({ count: 2, size: 4096 });
      const ob = own.acquire();
      fillPattern(ob.bytes, 0);
      const { client, server, listener } = await tcpPair(b);
      const rx = collect(server);
      const mine = patterned(4096, 4096);
      const want: Uint8Array[] = [];
      for (let i = 0; i < 6; i++) {
        // the foreign view first, then again after a memoized own buffer,
        // then after own pool memory (a memo that has a pool), each refused
        for (const v of [fb.bytes.subarray(i * 100, i * 100 + 50), fb.bytes]) {
          const err = thrown(() => void client.send(v, { mode: 'copy', coalesce }));
          expect(err, `send ${i}`).toBeInstanceOf(ZcOwnershipError);
          expect((err as Error).message).toMatch(new RegExp(`ring #${a.id}.*ring #${b.id}`));
          const cbErr = thrown(() => client.send(v, { mode: 'copy', coalesce }, () => {}));
          expect(cbErr, `callback send ${i}`).toBeInstanceOf(ZcOwnershipError);
        }
        const m = new Uint8Array(mine, i * 10, 100);
        want.push(Uint8Array.from(m));
        await client.send(m, { mode: 'copy', coalesce });
        const o = ob.bytes.subarray(i * 10, i * 10 + 100);
        want.push(Uint8Array.from(o));
        await client.send(o, { mode: 'copy', coalesce });
      }
      // nothing of the foreign pool left, and its pool holds none of it
      await expectReceived(rx, want, 20);
      expect(foreign.inFlight).toBe(0);
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      a.close();
      b.close();
    }
  });
});

/** Ways to detach an ArrayBuffer; each returns the ArrayBuffer its memory went to (or null). */
const transfers: [string, ((ab: ArrayBuffer) => Promise<ArrayBuffer | null>) | null][] = [
  ['structuredClone transfer', async (ab) => structuredClone(ab, { transfer: [ab] })],
  [
    'ArrayBuffer.prototype.transfer',
    typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'
      ? async (ab) => (ab as ArrayBuffer & { transfer(n?: number): ArrayBuffer }).transfer(ab.byteLength * 2)
      : null,
  ],
  [
    'postMessage to a worker',
    async (ab) => {
      const w = new Worker('require("node:worker_threads").parentPort.once("message", (ab) => { require("node:worker_threads").parentPort.postMessage(ab, [ab]); })', { eval: true });
      const back = new Promise<ArrayBuffer>((resolve) => w.once('message', resolve));
      w.postMessage(ab, [ab]);
      const got = await back;
      await w.terminate();
      return got;
    },
  ],
];

describe('an ArrayBuffer detached after a send', () => {
  it.each(transfers)('%s: its views are refused with the cause and the fix; its new owner sends its own bytes', async (how, transfer) => {
    if (transfer === null) {
      // ArrayBuffer.prototype.transfer is Node 22+
      expect(Number(process.versions.node.split('.')[0])).toBeLessThan(22);
      return;
    }
    const ring = Ring.create();
    try {
      const { client, server, listener } = await tcpPair(ring);
      const rx = collect(server);
      const want: Uint8Array[] = [];
      const send = async (v: Uint8Array, coalesce: boolean): Promise<void> => {
        want.push(Uint8Array.from(v));
        await client.send(v, { mode: 'copy', coalesce });
      };
      for (const coalesce of [true, false]) {
        const ab = patterned(8192, coalesce ? 0 : 8192);
        const early = new Uint8Array(ab, 100, 1000);
        const whole = new Uint8Array(ab); // views made before the transfer, never sent
        const buf = Buffer.from(ab, 4000, 10);
        await send(early, coalesce); // the memo holds ab now
        await send(new Uint8Array(ab, 3000, 500), coalesce);
        const moved = await transfer(ab);
        expect(ab.byteLength).toBe(0);
        for (const v of [early, whole, buf]) {
          for (const cb of [false, true]) {
            const err = thrown(() =>
              cb ? client.send(v, { mode: 'copy', coalesce }, () => {}) : void client.send(v, { mode: 'copy', coalesce }),
            );
            expect(err, `${how}`).toBeInstanceOf(ZcOwnershipError);
            expect((err as Error).message).toMatch(/detached/);
            expect((err as Error).message).toMatch(/transfer/);
            expect((err as Error).message).toMatch(/send a view of the ArrayBuffer it was transferred to/);
          }
        }
        // its memory under its new owner: sent from the new owner's address
        if (moved) {
          const n = new Uint8Array(moved, 100, 1000);
          fillPattern(n, 77_777); // what the old address would not hold (if it still held anything)
          await send(n, coalesce);
          await send(new Uint8Array(moved, 5000, 300), coalesce);
        }
      }
      await expectReceived(rx, want, 20);
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });

  it('an empty view of a live ArrayBuffer still sends (0 bytes): only detached ones are refused', async () => {
    const ring = Ring.create();
    try {
      const { client, server, listener } = await tcpPair(ring);
      const ab = patterned(64, 0);
      await client.send(new Uint8Array(ab, 0, 10), { mode: 'copy' });
      await expect(client.send(new Uint8Array(ab, 10, 0), { mode: 'copy' })).resolves.toMatchObject({ bytes: 0 });
      await expect(client.send(new Uint8Array(0), { mode: 'copy' })).resolves.toMatchObject({ bytes: 0 });
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });
});

describe('a resizable ArrayBuffer', () => {
  it.each([true, false])('views sent across grow and shrink, byte for byte (coalesce=%s)', async (coalesce) => {
    const ring = Ring.create();
    try {
      const { client, server, listener } = await tcpPair(ring);
      const rx = collect(server);
      type Rab = ArrayBuffer & { resize(n: number): void };
      const rab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Rab)(4096, {
        maxByteLength: 1 << 20,
      });
      const tracking = new Uint8Array(rab); // follows the length
      const want: Uint8Array[] = [];
      const send = async (v: Uint8Array): Promise<void> => {
        want.push(Uint8Array.from(v));
        await client.send(v, { mode: 'copy', coalesce });
      };
      for (const size of [4096, 1 << 20, 1000, 300_000, 64]) {
        rab.resize(size);
        fillPattern(tracking, size);
        expect(tracking.length).toBe(size);
        await send(tracking);
        await send(new Uint8Array(rab, size >> 1));
        await send(new Uint8Array(patterned(100, size))); // another buffer between
        await send(new Uint8Array(rab, size >> 2, size >> 3));
      }
      await expectReceived(rx, want);
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });
});

describe('the memo keeps no memory alive', () => {
  it('the last ArrayBuffer sent is collectable once its socket closed (the socket still referenced)', async () => {
    const ring = Ring.create();
    try {
      const { client, server, listener } = await tcpPair(ring);
      const rx = collect(server);
      let ab: ArrayBuffer | null = patterned(1 << 20, 0);
      const ref = new WeakRef(ab);
      await client.send(new Uint8Array(ab, 10, 1000), { mode: 'copy' });
      await client.send(new Uint8Array(ab, 2000, 1000), { mode: 'copy', coalesce: false });
      ab = null;
      await until(() => rx.length() >= 2000);
      expect(rx.bytes().equals(Buffer.from(Uint8Array.from({ length: 2000 }, (_, i) => patternByte(i < 1000 ? 10 + i : 1000 + i))))).toBe(
        true,
      );
      client.destroy();
      await until(() => client.destroyed);
      await sleep(10);
      expect(await collected(ref), 'the ArrayBuffer outlived its socket').toBe(true);
      expect(client.destroyed).toBe(true); // the socket (and its lane) is still reachable here
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });
});
