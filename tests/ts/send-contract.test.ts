// SPDX-License-Identifier: MIT
// What a send resolves and rejects with (issue 8, items 1, 2, 3, 7, 11):
// resolved means the whole length left; a send cut short (peer reset,
// resetAndDestroy, ring.close) rejects with its errno and bytesSent; pool
// memory is refused on another ring; 'auto' works wherever 'copy' does;
// an ArrayBuffer detached under a send is reported, not silently sent.
import net from 'node:net';
import { freemem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Ring, ZcError, ZcOwnershipError, ZcSocket } from '../../ts/index.ts';
import { fillPattern, IN_VM, PatternReceiver, sleep } from './helpers.ts';
import { connected } from './net-helpers.ts';

type Settled = PromiseSettledResult<{ bytes: number }>;

/** Every send either resolved with its whole length or rejected with bytesSent in [0, len). */
function checkOutcomes(rs: Settled[], lens: number[]): { resolved: number; rejected: ZcError[] } {
  let resolved = 0;
  const rejected: ZcError[] = [];
  rs.forEach((r, i) => {
    const len = lens[i] as number;
    if (r.status === 'fulfilled') {
      expect(r.value.bytes).toBe(len);
      resolved++;
    } else {
      const e = r.reason as ZcError;
      expect(e).toBeInstanceOf(ZcError);
      expect(e.bytesSent, `${e.message}`).toBeTypeOf('number');
      expect(e.bytesSent).toBeGreaterThanOrEqual(0);
      // all of it may have left from memory detached meanwhile (EFAULT), never more
      if (e.code === 'EFAULT') expect(e.bytesSent).toBeLessThanOrEqual(len);
      else expect(e.bytesSent).toBeLessThan(len);
      rejected.push(e);
    }
  });
  return { resolved, rejected };
}

/** A TCP server whose connections read `n` bytes, then reset. */
async function resettingServer(n: number): Promise<{ port: number; got: () => number; close: () => Promise<void> }> {
  let got = 0;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= n) s.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    got: () => got,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.each([true, false])('sends cut short reject with bytesSent (deferTaskrun=%s)', (deferTaskrun) => {
  it.each(['copy', 'zc'] as const)('peer reset in the middle of a large %s send, and coalesced sends behind it', async (mode) => {
    const srv = await resettingServer(1 << 20);
    const ring = Ring.create({ deferTaskrun });
    try {
      const sock = await connected({ ring, host: '127.0.0.1', port: srv.port });
      sock.on('error', () => {});
      const big = new Uint8Array(16 << 20);
      fillPattern(big.subarray(0, 4096), 0);
      const lens = [big.length, 1000, 2000, 3000];
      const rs = await Promise.allSettled([
        sock.send(big, { mode }),
        // same tick, small: one coalesced sendmsg behind the big one
        sock.send(new Uint8Array(1000), { mode: 'copy' }),
        sock.send(new Uint8Array(2000), { mode: 'copy' }),
        sock.send(new Uint8Array(3000), { mode: 'copy' }),
      ]);
      const { rejected } = checkOutcomes(rs, lens);
      // the big one cannot have gone whole: the peer reset after 1 MiB
      expect(rs[0]?.status).toBe('rejected');
      expect(['ECONNRESET', 'EPIPE']).toContain(rejected[0]?.code);
      expect(rejected[0]?.bytesSent).toBeGreaterThanOrEqual(1 << 20); // at least what the peer read
      expect(rejected[0]?.message).toMatch(/after \d+ bytes/);
      sock.destroy();
    } finally {
      ring.close();
      await srv.close();
    }
  });

  it('resetAndDestroy() with sends in flight and queued: none resolves short', async () => {
    const rx = await PatternReceiver.start({ paused: true });
    const ring = Ring.create({ deferTaskrun });
    try {
      const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
      const pool = ring.createPool({ count: 8, size: 1 << 20 });
      const ps: Promise<{ bytes: number }>[] = [];
      const lens: number[] = [];
      for (let i = 0; i < 8; i++) {
        ps.push(sock.send(pool.acquire(), { mode: i % 2 ? 'zc' : 'copy' }));
        lens.push(1 << 20);
        ps.push(sock.send(new Uint8Array(3 << 20), { mode: i % 2 ? 'copy' : 'zc' }));
        lens.push(3 << 20);
      }
      // observed from now on: a send may reject while close() is awaited
      const settled = Promise.allSettled(ps);
      await sleep(50); // the kernel took part of it: the peer does not read
      await sock.resetAndDestroy().close().catch(() => undefined);
      const { rejected } = checkOutcomes(await settled, lens);
      expect(rejected.length).toBeGreaterThan(0);
      for (const e of rejected) expect(['EPIPE', 'ECONNRESET', 'ECANCELED']).toContain(e.code);
      expect(pool.inFlight).toBe(0);
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('ring.close() with sends in flight: each rejects with bytesSent or resolved whole', async () => {
    const rx = await PatternReceiver.start({ paused: true });
    const ring = Ring.create({ deferTaskrun });
    try {
      const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
      sock.on('error', () => {});
      const lens = [4 << 20, 100, 4 << 20, 200];
      const ps = [
        sock.send(new Uint8Array(4 << 20), { mode: 'copy' }),
        sock.send(new Uint8Array(100), { mode: 'copy' }),
        sock.send(new Uint8Array(4 << 20), { mode: 'zc' }),
        sock.send(new Uint8Array(200), { mode: 'copy' }),
      ];
      const settled = Promise.allSettled(ps);
      await sleep(50);
      ring.close();
      const { rejected } = checkOutcomes(await settled, lens);
      expect(rejected.length).toBeGreaterThan(0);
    } finally {
      ring.close();
      await rx.close();
    }
  });
});

describe('pool memory on another ring', () => {
  it('is refused at once with a ZcOwnershipError naming both rings; on its own ring it is held', async () => {
    const a = Ring.create();
    const b = Ring.create();
    try {
      const pool = a.createPool({ count: 4, size: 65536 });
      const [x, y] = ZcSocket.pair({ ring: b });
      const pb = pool.acquire();
      for (const mode of ['zc', 'copy', 'auto'] as const) {
        for (const coalesce of [true, false]) {
          const err = (() => {
            try {
              void x.send(pb, { mode, coalesce });
            } catch (e) {
              return e;
            }
            return null;
          })();
          expect(err).toBeInstanceOf(ZcOwnershipError);
          expect((err as Error).message).toMatch(new RegExp(`ring #${a.id}.*ring #${b.id}`));
          expect(pb.inFlight).toBe(false);
        }
      }
      // a view of the pool's memory is the pool's memory
      expect(() => x.send(pb.bytes.subarray(0, 100), { mode: 'copy' })).toThrow(ZcOwnershipError);
      expect(() => x.send(new Uint8Array(pb.bytes.buffer, 0, 10))).toThrow(ZcOwnershipError);
      expect(pool.inFlight).toBe(0);
      x.destroy();
      y.destroy();

      // on its own ring: a Uint8Array view of pool memory holds the pool
      const srv = await PatternReceiver.start({ paused: true });
      const s = await connected({ ring: a, host: '127.0.0.1', port: srv.port });
      const big = pool.acquire();
      const p = s.send(new Uint8Array(8 << 20), { mode: 'copy' }); // fills the pipe
      const q = s.send(big.bytes.subarray(0, 60000), { mode: 'copy' });
      await sleep(20);
      expect(pool.inFlight).toBeGreaterThan(0);
      // close() waits for the send that reads pool memory
      let poolClosed = false;
      const closing = pool.close().then(() => (poolClosed = true));
      await sleep(20);
      expect(poolClosed).toBe(false);
      srv.resume();
      await Promise.all([p, q]);
      await closing;
      expect(pool.closed).toBe(true);
      s.destroy();
      await srv.close();
    } finally {
      a.close();
      b.close();
    }
  });
});

describe("'auto' works wherever 'copy' does", () => {
  it.each([true, false])('AF_UNIX: pool buffers from 16 KiB and arrays from 256 KiB go as copies (deferTaskrun=%s)', async (deferTaskrun) => {
    const ring = Ring.create({ deferTaskrun });
    try {
      const [a, b] = ZcSocket.pair({ ring });
      const pool = ring.createPool({ count: 2, size: 1 << 20 });
      const pb = pool.acquire();
      fillPattern(pb.bytes, 0);
      const arr = new Uint8Array(1 << 20);
      fillPattern(arr, 1 << 20);
      const got: Buffer[] = [];
      b.on('data', (d: Buffer) => got.push(d));
      const r1 = await a.send(pb, { mode: 'auto' });
      const r2 = await a.send(arr, { mode: 'auto' });
      expect(r1).toEqual({ bytes: 1 << 20, zeroCopy: 'copied' });
      expect(r2).toEqual({ bytes: 1 << 20, zeroCopy: 'copied' });
      // explicit 'zc' still says the family has none
      await expect(a.send(arr, { mode: 'zc' })).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
      for (let i = 0; i < 200 && Buffer.concat(got).length < 2 << 20; i++) await sleep(5);
      const all = Buffer.concat(got);
      const want = new Uint8Array(2 << 20);
      fillPattern(want, 0);
      expect(all.length).toBe(2 << 20);
      expect(all.equals(Buffer.from(want))).toBe(true);
      a.destroy();
      b.destroy();
    } finally {
      ring.close();
    }
  });
});

// (This test hung about 1 run in 3 under load: the receiver's connections
// were resumed before the server had accepted the connection, so it never
// read and the sends waited forever.  rx.resume() covers later accepts.)
describe('ArrayBuffers detached under a send', () => {
  it.each([true, false])('in flight: rejects EFAULT with bytesSent; before issue: nothing sent (deferTaskrun=%s)', async (deferTaskrun) => {
    const rx = await PatternReceiver.start({ paused: true });
    const ring = Ring.create({ deferTaskrun, maxRequests: 2 });
    try {
      const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
      const lens = [8 << 20, 4 << 20, 4 << 20, 1000];
      const first = new Uint8Array(8 << 20); // in the kernel, blocked: the peer does not read
      const second = new Uint8Array(4 << 20);
      const third = new Uint8Array(4 << 20); // waits in JS: maxRequests 2
      const ps = [
        sock.send(first, { mode: 'copy', coalesce: false }),
        sock.send(second, { mode: 'zc', coalesce: false }),
        sock.send(third, { mode: 'copy', coalesce: false }),
        sock.send(new Uint8Array(1000), { mode: 'copy', coalesce: false }),
      ];
      const settled = Promise.allSettled(ps); // observed from the start
      await sleep(30);
      // transfer (detach) the memory of sends the kernel has or will have
      structuredClone(first.buffer, { transfer: [first.buffer] });
      structuredClone(third.buffer, { transfer: [third.buffer] });
      expect(first.byteLength).toBe(0);
      rx.resume();
      const rs = await settled;
      const { rejected } = checkOutcomes(rs, lens);
      expect(rs[0]?.status).toBe('rejected');
      expect(rejected[0]?.code).toBe('EFAULT');
      expect(rejected[0]?.hint).toMatch(/detached .* in flight/);
      expect(rs[1]?.status).toBe('fulfilled');
      expect(rs[2]?.status).toBe('rejected');
      const third2 = (rs[2] as PromiseRejectedResult).reason as ZcError;
      expect(third2.code).toBe('EFAULT');
      expect(third2.bytesSent).toBe(0);
      expect(third2.hint).toMatch(/before the send was issued/);
      expect(rs[3]?.status).toBe('fulfilled');
      sock.destroy();
    } finally {
      ring.close();
      await rx.close();
    }
  });
});

// Sends over 2 GiB: a 2 GiB + 1 MiB + 7 buffer ('auto': zero-copy), then a
// small one; the receiver compares every byte (memcmp per chunk).  The copy
// path over 2 GiB is libzc's own test (libzc/tests/send_large.c).
const BIG = 2 ** 31 + 2 ** 20 + 7;
const bigSkip = IN_VM
  ? 'the VMs have 4 GiB of memory: a 2 GiB send buffer plus the receiver does not fit'
  : freemem() < 6 * 2 ** 30
    ? `needs 6 GiB of free memory (free: ${Math.round(freemem() / 2 ** 20)} MiB)`
    : null;

describe('sends over 2 GiB', () => {
  it.skipIf(bigSkip !== null)(`resolve with their exact 64-bit length, every byte in order${bigSkip ? ` (skipped: ${bigSkip})` : ''}`, async () => {
    const buf = new Uint8Array(BIG);
    // 64 KiB blocks, each stamped with its index: any loss, repeat or reorder shows
    const block = new Uint8Array(65536);
    fillPattern(block, 0);
    for (let off = 0, i = 0; off < BIG; off += 65536, i++) {
      buf.set(block.subarray(0, Math.min(65536, BIG - off)), off);
      if (off + 4 <= BIG) new DataView(buf.buffer, off, 4).setUint32(0, i);
    }
    const tail = new Uint8Array(777).fill(3);
    let got = 0;
    let bad = -1;
    const want = BIG + tail.length;
    const done = new Promise<void>((resolve) => {
      const server = net.createServer((s) => {
        s.on('data', (d: Buffer) => {
          if (bad < 0) {
            for (let k = 0; k < d.length; ) {
              const at = got + k;
              const expSrc = at < BIG ? buf : tail;
              const expOff = at < BIG ? at : at - BIG;
              const n = Math.min(d.length - k, expSrc.length - expOff);
              if (Buffer.compare(d.subarray(k, k + n), expSrc.subarray(expOff, expOff + n)) !== 0) {
                bad = at;
                break;
              }
              k += n;
            }
          }
          got += d.length;
          if (got >= want) {
            server.close();
            resolve();
          }
        });
      });
      server.listen(0, '127.0.0.1', async () => {
        const ring = Ring.create();
        try {
          const sock = await connected({ ring, host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
          const rs = await Promise.all([sock.send(buf), sock.send(tail)]);
          expect(rs.map((r) => r.bytes)).toEqual([BIG, tail.length]);
          await sock.close();
        } finally {
          ring.close();
        }
      });
    });
    await done;
    expect(bad).toBe(-1);
    expect(got).toBe(want);
  }, 300_000);
});
