// SPDX-License-Identifier: MIT
// UDP: sendTo (SENDMSG_ZC with a destination) and connected send, verified
// datagram by datagram by a Node dgram receiver.
import { describe, expect, it } from 'vitest';
import { Ring, ZcDatagram, type SendResult } from '../../ts/index.ts';
import { encodeSockaddr, isLoopbackSockaddr } from '../../ts/addr.ts';
import { fillPattern, patternByte, UdpReceiver } from './helpers.ts';

function check(d: Buffer, start: number, len: number): boolean {
  if (d.length !== len) return false;
  for (let k = 0; k < len; k++) if (d[k] !== patternByte(start + k)) return false;
  return true;
}

describe.each([true, false])('UDP (deferTaskrun=%s)', (deferTaskrun) => {
  it('sendTo from Uint8Array and pool buffers, every mode, byte for byte', async () => {
    const ring = Ring.create({ deferTaskrun });
    const rx = await UdpReceiver.start();
    try {
      const u = await ZcDatagram.open({ ring });
      const pool = ring.createPool({ count: 4, size: 65536 });
      const sizes = [1, 512, 1472, 8192, 60000];
      const expected: [number, number][] = [];
      let start = 0;
      const results: SendResult[] = [];
      for (const mode of ['copy', 'zc', 'auto'] as const) {
        for (const len of sizes) {
          const b = new Uint8Array(len);
          fillPattern(b, start);
          expected.push([start, len]);
          start += len;
          results.push(await u.sendTo(b, { address: '127.0.0.1', port: rx.port }, { mode }));
          await rx.waitFor(expected.length); // pace: the receive buffer is small
          const pb = pool.acquire();
          fillPattern(pb.bytes, start, len);
          expected.push([start, len]);
          start += len;
          results.push(await u.sendTo(pb, { address: '127.0.0.1', port: rx.port }, { mode, length: len }));
          await rx.waitFor(expected.length);
          pb.release();
        }
      }
      await rx.waitFor(expected.length);
      expect(rx.datagrams.length).toBe(expected.length);
      rx.datagrams.forEach((d, i) => {
        const [s, len] = expected[i] as [number, number];
        expect({ i, ok: check(d, s, len) }).toEqual({ i, ok: true });
      });
      results.forEach((r, i) => expect(r.bytes).toBe((expected[i] as [number, number])[1]));
      pool.close();
      await u.close();
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('connected UDP socket: send() without an address; many in flight', async () => {
    const ring = Ring.create({ deferTaskrun });
    const rx = await UdpReceiver.start();
    try {
      const u = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port: rx.port } });
      const n = 200;
      const batch = 25; // in flight at once; small enough for the default receive buffer
      for (let j = 0; j < n; j += batch) {
        const ps: Promise<SendResult>[] = [];
        for (let i = j; i < j + batch; i++) {
          const b = new Uint8Array(1000);
          fillPattern(b, i * 1000);
          ps.push(u.send(b, { mode: i % 2 ? 'zc' : 'copy' }));
        }
        const rs = await Promise.all(ps);
        expect(rs.every((r) => r.bytes === 1000)).toBe(true);
        await rx.waitFor(j + batch);
      }
      // UDP on loopback keeps order from one socket; check every datagram's content
      const seen = new Set<number>();
      for (const d of rx.datagrams) {
        const first = d[0] as number;
        let match = -1;
        for (let i = 0; i < n; i++) if (patternByte(i * 1000) === first && check(d, i * 1000, 1000)) match = i;
        expect(match).toBeGreaterThanOrEqual(0);
        seen.add(match);
      }
      expect(seen.size).toBe(n);
      await u.close();
    } finally {
      ring.close();
      await rx.close();
    }
  });

  it('IPv6 sendTo', async () => {
    const ring = Ring.create({ deferTaskrun });
    let rx: UdpReceiver;
    try {
      rx = await UdpReceiver.start('udp6');
    } catch {
      ring.close();
      console.warn('skipped: no IPv6 loopback on this machine');
      return;
    }
    try {
      const u = await ZcDatagram.open({ ring, family: 6 });
      const b = new Uint8Array(3000);
      fillPattern(b, 0);
      const r = await u.sendTo(b, { address: '::1', port: rx.port }, { mode: 'zc' });
      expect(r.bytes).toBe(3000);
      await rx.waitFor(1);
      expect(check(rx.datagrams[0] as Buffer, 0, 3000)).toBe(true);
      await u.close();
    } finally {
      ring.close();
      await rx.close();
    }
  });
});

describe("mode 'auto' towards this host", () => {
  it.each([
    ['127.0.0.1', 'udp4'],
    ['::1', 'udp6'],
  ] as const)('%s: sendTo and a connected send of a pool buffer above autoThreshold go as copies', async (address, type) => {
    // libzc merging: a zero-copy send costs 2 kernel CQEs, a copy 1.
    const ring = Ring.create({ unified: 'userspace' });
    const rx = await UdpReceiver.start(type);
    try {
      const pool = ring.createPool({ count: 1, size: 65536 });
      const pb = pool.acquire();
      fillPattern(pb.bytes, 0, 32768);
      const family = address === '::1' ? 6 : 4;
      const u = await ZcDatagram.open({ ring, family });
      let before = ring.stats.kernelCqes;
      expect((await u.sendTo(pb, { address, port: rx.port }, { mode: 'auto', length: 32768 })).bytes).toBe(32768);
      expect(ring.stats.kernelCqes - before).toBe(1);
      before = ring.stats.kernelCqes;
      expect((await u.sendTo(pb, { address, port: rx.port }, { mode: 'zc', length: 32768 })).bytes).toBe(32768);
      expect(ring.stats.kernelCqes - before).toBe(2); // asked for, still zero-copy
      const c = await ZcDatagram.open({ ring, family, connect: { host: address, port: rx.port } });
      before = ring.stats.kernelCqes;
      expect((await c.send(pb, { mode: 'auto', length: 32768 })).bytes).toBe(32768);
      expect(ring.stats.kernelCqes - before).toBe(1);
      await rx.waitFor(3);
      for (const d of rx.datagrams) expect(check(d, 0, 32768)).toBe(true);
      pb.release();
      await u.close();
      await c.close();
      pool.close();
    } finally {
      ring.close();
      await rx.close();
    }
  });
});

describe('isLoopbackSockaddr', () => {
  it.each([
    ['127.0.0.1', true], ['127.9.8.7', true], ['10.0.0.1', false], ['198.19.0.2', false], ['0.0.0.0', false],
    ['::1', true], ['::2', false], ['::', false], ['::ffff:127.0.0.1', true], ['::ffff:10.0.0.1', false],
    ['fe80::1', false], ['1::1', false],
  ] as const)('%s: %s', (address, loopback) => {
    expect(isLoopbackSockaddr(encodeSockaddr(address, 9, 'test'))).toBe(loopback);
  });
});
