// SPDX-License-Identifier: MIT
// ZcDatagram.send(poolBuffer, options, callback): the buffer's own request
// (ts/socket/pool-send.ts, PoolBuffer.sendReq) reused by each send, against
// the generic path of the same send (a Uint8Array, the Promise form): the
// same bytes on the wire, the same results and the same errors; an options
// object changed between sends is honoured (its offset, length and mode),
// new defaults too; a buffer moved between sockets and rings; never a
// synchronous callback; sends past the ring's request limit (the backlog,
// issued alone) all settle with their bytes.
import { describe, expect, it } from 'vitest';
import { Ring, ZcConfigError, ZcDatagram, ZcError, ZcOwnershipError, type PoolBuffer, type SendResult } from '../../ts/index.ts';
import { fillPattern, patternByte, UdpReceiver } from './helpers.ts';

type Got = { err: Error | null; bytes: number; zeroCopy: SendResult['zeroCopy']; sync: boolean };

/** One callback send; its outcome, and whether the callback ran inside the call. */
function cbSend(u: ZcDatagram, data: PoolBuffer | Uint8Array, options: Parameters<ZcDatagram['send']>[1]): Promise<Got> {
  let inCall = true;
  const p = new Promise<Got>((resolve) => {
    u.send(data, options, (err, bytes, zeroCopy) => resolve({ err, bytes, zeroCopy, sync: inCall }));
  });
  inCall = false;
  return p;
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

function expectPattern(d: Buffer, start: number, len: number): void {
  expect(d.length).toBe(len);
  for (let k = 0; k < len; k++) if (d[k] !== patternByte(start + k)) throw new Error(`byte ${k} of ${len} differs`);
}

describe('ZcDatagram.send(PoolBuffer, options, callback)', () => {
  it('gives the same bytes, results and errors as the generic path', async () => {
    const rx = await UdpReceiver.start();
    const ring = Ring.create();
    const pool = ring.createPool({ count: 2, size: 8192 });
    try {
      const u = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port: rx.port } });
      const pb = pool.acquire();
      fillPattern(pb.bytes, 0);
      const copy = new Uint8Array(pb.bytes);
      const got: Got[] = [];
      for (const mode of ['zc', 'copy', 'auto'] as const) {
        const o = { mode, offset: 100, length: 3000 };
        got.push(await cbSend(u, pb, o)); // this path
        got.push(await cbSend(u, copy, o)); // the generic path: a Uint8Array
        const r = await u.send(pb, o); // the Promise form (generic path, same buffer)
        got.push({ err: null, bytes: r.bytes, zeroCopy: r.zeroCopy, sync: false });
      }
      for (let m = 0; m < 3; m++) {
        const [a, b, c] = got.slice(m * 3, m * 3 + 3);
        expect(a).toEqual({ err: null, bytes: 3000, zeroCopy: a!.zeroCopy, sync: false });
        expect(b).toEqual(a);
        expect(c!.bytes).toBe(3000);
        expect(c!.zeroCopy).toBe(a!.zeroCopy);
      }
      await rx.waitFor(9);
      for (const d of rx.datagrams) expectPattern(d, 100, 3000);

      // Errors: thrown at once, the same as the generic path's, nothing lent.
      const errs = (data: PoolBuffer | Uint8Array, o: object | undefined): Error[] => [
        thrown(() => u.send(data, o as never, () => {})),
        thrown(() => void u.send(data, o as never)),
      ];
      for (const o of [{ offset: 9000 }, { length: 9000 }, { offset: 8000, length: 500 }, { mode: 'fast' }, { lenght: 1 }]) {
        const [a, b] = errs(pb, o);
        expect(a).toBeInstanceOf(ZcConfigError);
        expect(a!.message).toBe(b!.message);
        expect(pb.inFlight).toBe(false);
      }
      // in flight: the second send of the buffer is refused, the first settles
      const first = cbSend(u, pb, { length: 10 });
      const [a, b] = errs(pb, { length: 10 });
      expect(a).toBeInstanceOf(ZcOwnershipError);
      expect(a!.message).toBe(b!.message);
      expect((await first).err).toBe(null);
      expect(() => u.send(pb, undefined, 1 as never)).toThrow(TypeError);
      // another ring's buffer
      const other = Ring.create();
      try {
        const ob = other.createPool({ count: 1, size: 4096 }).acquire();
        const [c, d] = errs(ob, undefined);
        expect(c).toBeInstanceOf(ZcOwnershipError);
        expect(c!.message).toBe(d!.message);
        expect(ob.inFlight).toBe(false);
      } finally {
        other.close();
      }
      // released
      const gone = pool.acquire();
      gone.release();
      expect(() => u.send(gone, undefined, () => {})).toThrow(ZcOwnershipError);
      // closed socket: EBADF, at once
      await u.close();
      const e = thrown(() => u.send(pb, undefined, () => {}));
      expect(e).toBeInstanceOf(ZcError);
      expect((e as ZcError).code).toBe('EBADF');
      expect(pb.inFlight).toBe(false);
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('honours an options object changed between sends, and new defaults', async () => {
    const rx = await UdpReceiver.start();
    const ring = Ring.create();
    const pool = ring.createPool({ count: 1, size: 4096 });
    try {
      const u = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port: rx.port } });
      const pb = pool.acquire();
      fillPattern(pb.bytes, 0);
      const o: { mode: 'zc' | 'copy'; length?: number; offset?: number } = { mode: 'zc', length: 100 };
      const lens: [number, number][] = [];
      const step = async (start: number, len: number): Promise<void> => {
        const r = await cbSend(u, pb, o);
        expect(r.err).toBe(null);
        expect(r.bytes).toBe(len);
        lens.push([start, len]);
      };
      await step(0, 100);
      await step(0, 100);
      o.length = 200;
      await step(0, 200);
      o.offset = 1000;
      await step(1000, 200);
      o.mode = 'copy';
      const r = await cbSend(u, pb, o);
      expect(r.zeroCopy).toBe('copied');
      lens.push([1000, 200]);
      o.length = 5000; // past the buffer: refused at once, the buffer not lent
      expect(() => u.send(pb, o, () => {})).toThrow(ZcConfigError);
      expect(pb.inFlight).toBe(false);
      delete o.length;
      await step(1000, 3096);
      // the defaults (no options), then new defaults of the socket
      const d = await cbSend(u, pb, undefined);
      expect(d.bytes).toBe(4096);
      lens.push([0, 4096]);
      await rx.waitFor(lens.length);
      rx.datagrams.forEach((dg, i) => expectPattern(dg, lens[i]![0], lens[i]![1]));
      await u.close();
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('moves between sockets and rings, never calls back synchronously, and settles past the request limit', async () => {
    const rx = await UdpReceiver.start();
    const ring = Ring.create({ entries: 8, maxRequests: 8 });
    const pool = ring.createPool({ count: 32, size: 4096 });
    try {
      const u = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port: rx.port } });
      const v = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port: rx.port } });
      const bufs = Array.from({ length: 32 }, (_, i) => {
        const b = pool.acquire();
        fillPattern(b.bytes, i * 4096);
        return b;
      });
      // 32 sends at once on a ring that tracks 8: the rest wait in the backlog, issued alone
      rx.socket.setRecvBufferSize(1 << 20); // (capped by net.core.rmem_max)
      const opts = { mode: 'zc' as const, length: 200 };
      const before = ring.stats.backpressured;
      const all = await Promise.all(bufs.map((b, i) => cbSend(i % 2 ? u : v, b, opts)));
      expect(ring.stats.backpressured).toBeGreaterThan(before);
      for (const g of all) expect(g).toEqual({ err: null, bytes: 200, zeroCopy: g.zeroCopy, sync: false });
      await rx.waitFor(32); // (one phase at a time: the receiver's buffer is small)
      // each buffer again on the other socket, with a callback that resends it once
      let resent = 0;
      await Promise.all(
        bufs.map(
          (b, i) =>
            new Promise<void>((resolve, reject) => {
              const s = i % 2 ? v : u;
              s.send(b, opts, (err) => {
                if (err) return reject(err);
                s.send(b, opts, (err2, n) => {
                  if (err2) return reject(err2);
                  resent += n;
                  resolve();
                });
              });
            }),
        ),
      );
      expect(resent).toBe(32 * 200);
      await rx.waitFor(96);
      const starts = new Set(bufs.map((_, i) => i * 4096));
      for (const d of rx.datagrams) {
        const start = [...starts].find((s) => d[0] === patternByte(s) && d[199] === patternByte(s + 199));
        expect(start).toBeDefined();
        expectPattern(d, start!, 200);
      }
      expect(u.inFlight + v.inFlight).toBe(0);
      await u.close();
      await v.close();
      // The same buffer on a socket of another ring's: refused; on a new socket of its own: sent.
      const w = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port: rx.port } });
      expect((await cbSend(w, bufs[0]!, opts)).bytes).toBe(200);
      // The ring closes under a send: ECANCELED, from a microtask, the buffer given back.
      const p = cbSend(w, bufs[1]!, opts);
      ring.close();
      const g = await p;
      expect(g.sync).toBe(false);
      expect(bufs[1]!.inFlight).toBe(false);
      if (g.err) expect(g.err).toBeInstanceOf(ZcError);
      const closedSend = thrown(() => w.send(bufs[2]!, opts, () => {}));
      expect(closedSend).toBeInstanceOf(ZcError);
    } finally {
      ring.close();
      await rx.close();
    }
  });
});
