// SPDX-License-Identifier: MIT
// Sockets of one ring share a receive area (issue 8, item 8): a consumer
// that holds its chunks stalls its own socket only.  A's chunks are kept
// while its peer sends 8x the area; B, on the same area, gets its whole
// stream meanwhile; A resumes, in order, once its chunks come back.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Ring, type ReceivedChunk } from '../../ts/index.ts';
import { sharedReceiver } from '../../ts/recv.ts';
import { fillPattern, patternByte, scaled, sleep } from './helpers.ts';
import { connected } from './net-helpers.ts';

/** A server whose every connection gets `total` bytes of the pattern, then FIN. */
async function patternSource(total: number): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    void (async () => {
      const block = Buffer.alloc(65536);
      for (let off = 0; off < total; off += block.length) {
        const n = Math.min(block.length, total - off);
        fillPattern(block, off, n);
        if (!s.write(block.subarray(0, n))) await new Promise((r) => s.once('drain', r));
      }
      s.end();
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.each([true, false])('a slow reader on a shared receive area (deferTaskrun=%s)', (deferTaskrun) => {
  it('stalls its own socket only', async () => {
    const area = 32 * 4096;
    const aTotal = 8 * area;
    const bTotal = scaled(64, 8) * 65536;
    const src = await patternSource(Math.max(aTotal, bTotal));
    const ring = Ring.create({ deferTaskrun });
    const opts = { mode: 'bufring' as const, bufferSize: 4096, areaSize: area };
    try {
      const a = await connected({ ring, host: '127.0.0.1', port: src.port });
      const b = await connected({ ring, host: '127.0.0.1', port: src.port });
      const ra = a.receive(opts);
      const rb = b.receive(opts);
      const rx = sharedReceiver(ring, opts);

      // A: take chunks, keep them
      const held: ReceivedChunk[] = [];
      let aGot = 0;
      let aBad = -1;
      const check = (c: ReceivedChunk): void => {
        const d = c.data;
        for (let i = 0; i < d.length && aBad < 0; i++) if (d[i] !== patternByte(aGot + i)) aBad = aGot + i;
        aGot += d.length;
      };
      let aDone = false;
      const aIt = ra[Symbol.asyncIterator]();
      const aReader = (async () => {
        for (;;) {
          const r = await aIt.next();
          if (r.done) break;
          check(r.value);
          held.push(r.value);
        }
        aDone = true;
      })();

      // B: read everything, releasing as it goes
      let bGot = 0;
      let bBad = -1;
      for await (const c of rb) {
        const d = c.data;
        for (let i = 0; i < d.length && bBad < 0; i++) if (d[i] !== patternByte(bGot + i)) bBad = bGot + i;
        bGot += d.length;
        c.release();
        if (bGot >= bTotal) break;
      }
      expect(bBad).toBe(-1);
      expect(bGot).toBeGreaterThanOrEqual(bTotal);
      // A was paused at its share, well short of its stream
      const info = rx.info();
      expect(held.length).toBeGreaterThan(0);
      expect(held.length).toBeLessThanOrEqual(32 / 2);
      expect(aDone).toBe(false);
      expect(aGot).toBeLessThan(aTotal);
      expect(info.pauses).toBeGreaterThan(0);

      // A's consumer catches up: the rest of its stream, in order
      for (const c of held.splice(0)) c.release();
      const drain = (async () => {
        while (!aDone) {
          for (const c of held.splice(0)) c.release();
          await sleep(1);
        }
      })();
      await aReader;
      await drain;
      expect(aBad).toBe(-1);
      expect(aGot).toBe(Math.max(aTotal, bTotal));
      a.destroy();
      b.destroy();
    } finally {
      ring.close();
      await src.close();
    }
  });
});
