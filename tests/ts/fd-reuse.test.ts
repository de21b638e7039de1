// SPDX-License-Identifier: MIT
// Nothing is sent to an fd number after its socket closed (issue 8, item
// 12): sends still queued (in libzc, or in JS waiting for a free request
// slot) when a socket is destroyed end with ECANCELED, even when new
// sockets get the same fd number at once.  Every new socket's peer gets
// exactly its own bytes.
import { describe, expect, it } from 'vitest';
import { Ring, ZcError, ZcSocket } from '../../ts/index.ts';
import net from 'node:net';
import { fillPattern, patternByte, scaled } from './helpers.ts';
import { connected } from './net-helpers.ts';

/** Bytes of a stream tagged `tag` at offset i (distinct per stream). */
const tagged = (tag: number, i: number): number => patternByte(i + tag * 0x1000_0000);

/** A socketpair whose far end checks it gets exactly the `tag` stream. */
function checkedPair(ring: Ring, tag: number): { near: ZcSocket; far: ZcSocket; got: () => number; bad: () => number } {
  const [near, far] = ZcSocket.pair({ ring });
  let got = 0;
  let bad = -1;
  far.on('data', (d: Buffer) => {
    for (let k = 0; k < d.length && bad < 0; k++) if (d[k] !== tagged(tag, got + k)) bad = got + k;
    got += d.length;
  });
  return { near, far, got: () => got, bad: () => bad };
}

/** A one-connection TCP server checking that what arrives is a prefix of the pattern stream. */
async function prefixServer(): Promise<{ port: number; got: () => number; bad: () => number; close: () => Promise<void> }> {
  let got = 0;
  let bad = -1;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      for (let k = 0; k < d.length && bad < 0; k++) if (d[k] !== patternByte(got + k)) bad = got + k;
      got += d.length;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    got: () => got,
    bad: () => bad,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.each([true, false])('closing with sends queued, fd numbers reused at once (deferTaskrun=%s)', (deferTaskrun) => {
  it('queued sends end with ECANCELED, never reach the kernel on a closed or reused number', async () => {
    const rounds = scaled(24, 4);
    const N = 48;
    const stream = new Uint8Array(N * 65536);
    fillPattern(stream, 0);
    // few request slots: part of each round's sends waits in JS, behind the close
    const ring = Ring.create({ deferTaskrun, maxRequests: 8 });
    let reused = 0;
    try {
      for (let round = 0; round < rounds; round++) {
        const rx = await prefixServer();
        const a = await connected({ ring, host: '127.0.0.1', port: rx.port });
        a.on('error', () => {});
        const fdA = a.fd;
        const sends = Array.from({ length: N }, (_, i) =>
          a.send(stream.subarray(i * 65536, (i + 1) * 65536), { mode: i % 3 === 0 ? 'zc' : 'copy', coalesce: i % 2 === 0 }),
        );
        let settledA = false;
        void Promise.allSettled(sends).then(() => {
          settledA = true;
        });
        // let a few go, then close while the rest is in the kernel's chain,
        // in libzc's queue and in JS
        for (let i = 0; i < round % 4; i++) await new Promise((r) => setImmediate(r));
        if (round % 2) a.resetAndDestroy();
        else a.destroy();
        // new sockets at once, and while A's sends settle: some get A's number
        const fresh: ReturnType<typeof checkedPair>[] = [];
        for (let i = 0; i < 6; i++) {
          const p = checkedPair(ring, round + 1);
          if ((p.near.fd === fdA || p.far.fd === fdA) && !settledA) reused++;
          fresh.push(p);
          await new Promise((r) => setImmediate(r));
        }
        const body = new Uint8Array(100_000);
        for (let k = 0; k < body.length; k++) body[k] = tagged(round + 1, k);
        const rs = await Promise.all(fresh.map((p) => p.near.send(body, { mode: 'copy' })));
        expect(rs.every((r) => r.bytes === body.length)).toBe(true);
        for (const p of fresh) {
          for (let i = 0; i < 500 && p.got() < body.length; i++) await new Promise((r) => setTimeout(r, 2));
          expect(p.bad()).toBe(-1); // nothing of A's stream
          expect(p.got()).toBe(body.length);
        }
        // A's sends: whole, or failed for the close, never EBADF (a send
        // the kernel ran against the number after the close)
        for (const r of await Promise.allSettled(sends)) {
          if (r.status === 'fulfilled') {
            expect(r.value.bytes).toBe(65536);
            continue;
          }
          const e = r.reason as ZcError;
          expect(e).toBeInstanceOf(ZcError);
          expect(['ECANCELED', 'EPIPE', 'ECONNRESET']).toContain(e.code);
          expect(e.bytesSent).toBeTypeOf('number');
        }
        expect(rx.bad()).toBe(-1); // A's peer got a prefix of A's stream
        for (const p of fresh) {
          p.near.destroy();
          p.far.destroy();
        }
        await rx.close();
      }
      // A busy ring takes the last records from the loop's check phase
      // (it yields after a few chained flushes): one turn, then nothing
      // may be left in flight.
      await new Promise((r) => setImmediate(r));
      expect(ring.inFlight).toBe(0);
      // how often the number came back while A still had sends (information)
      console.log(`fd-reuse (deferTaskrun=${deferTaskrun}): A's number reused while its sends were pending in ${reused} of ${rounds} rounds`);
    } finally {
      ring.close();
    }
  });
});

describe.each(['receive', 'data'] as const)('a closing socket\'s fd number, reused at once, receives (%s)', (reader) => {
  it('a new socket on a reused number receives while the old one\'s receive is still ending', async () => {
    // Two rings in turn: a socket is destroyed (not awaited) on one, and the
    // next socketpair, on the other, often gets its number back before the
    // old receive's last record.  The new socket must not be refused with
    // EBUSY ('already receiving') nor lose its bytes.
    const rings = [Ring.create(), Ring.create()];
    let reused = 0;
    try {
      const seen = new Set<number>();
      for (let i = 0; i < scaled(120, 30); i++) {
        const ring = rings[i % 2]!;
        const [a, b] = ZcSocket.pair({ ring });
        const fd = b.fd;
        if (seen.has(fd)) reused++;
        seen.add(fd);
        const msg = Buffer.from(`message ${i}`);
        const got = new Promise<string>((resolve, reject) => {
          if (reader === 'data') {
            b.once('data', (d: Buffer) => resolve(d.toString()));
            b.once('error', reject);
            return;
          }
          const it = b.receive()[Symbol.asyncIterator]();
          it.next().then((r) => {
            if (r.done) return reject(new Error('ended'));
            const s = r.value.data.toString();
            r.value.release();
            resolve(s);
          }, reject);
        });
        a.write(msg);
        expect(await got).toBe(msg.toString());
        a.destroy();
        b.destroy(); // not awaited: the next pair may take its number now
      }
    } finally {
      for (const r of rings) await r.close();
    }
    expect(reused).toBeGreaterThan(0);
  });
});
