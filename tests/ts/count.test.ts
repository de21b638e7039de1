// SPDX-License-Identifier: MIT
// Exactly one completion per send, over >= 100k sends (URING_ZC_SCALE scales
// it; a quarter of that in the VMs' CI form), and backpressure: with few
// request slots the rest wait in JS, none lost.
import { afterEach, describe, expect, it } from 'vitest';
import { Ring, type PoolBuffer, type SendResult } from '../../ts/index.ts';
import { connected } from './net-helpers.ts';
import { fillPattern, PatternReceiver, scaledVm } from './helpers.ts';

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

async function setup(opts: Parameters<typeof Ring.create>[0]) {
  const ring = Ring.create(opts);
  const rx = await PatternReceiver.start();
  const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
  cleanup.push(async () => {
    await sock.close();
    ring.close();
    await rx.close();
  });
  return { ring, rx, sock };
}

describe.each([true, false])('one completion per send (deferTaskrun=%s)', (deferTaskrun) => {
  it(`${scaledVm(100_000, 1000)} sends, windowed, mixed copy / zc / zc-fixed`, async () => {
    const { ring, rx, sock } = await setup({ deferTaskrun, entries: 256 });
    const total = scaledVm(100_000, 1000);
    const window = 128;
    const size = 64;
    const pool = ring.createPool({ count: window, size: 4096 });
    const free: PoolBuffer[] = [];
    for (let i = 0; i < window; i++) free.push(pool.acquire());
    const stats0 = { ...ring.stats };
    let offset = 0;
    let resolved = 0;
    let bytes = 0;
    let sent = 0;
    const zc = { used: 0, copied: 0, unknown: 0 };
    // A window of sends in flight; each completion starts the next one.
    // coalesce: false, so every send is its own kernel request and record
    // (tcp.test.ts covers sends sharing one request).
    await new Promise<void>((done, fail) => {
      const onResult = (r: SendResult, pb?: PoolBuffer) => {
        resolved++;
        bytes += r.bytes;
        zc[r.zeroCopy]++;
        if (pb) free.push(pb);
        if (sent < total) next();
        else if (resolved === total) done();
      };
      const next = () => {
        const i = sent++;
        const kind = i % 3;
        if (kind === 2) {
          const pb = free.pop() as PoolBuffer;
          fillPattern(pb.bytes, offset, size);
          offset += size;
          sock.send(pb, { mode: 'zc', length: size, coalesce: false }).then((r) => onResult(r, pb), fail);
        } else {
          const b = new Uint8Array(size);
          fillPattern(b, offset);
          offset += size;
          sock.send(b, { mode: kind === 0 ? 'copy' : 'zc', coalesce: false }).then((r) => onResult(r), fail);
        }
      };
      for (let i = 0; i < window && sent < total; i++) next();
    });
    await rx.waitFor(offset, 60_000);
    expect(resolved).toBe(total);
    expect(bytes).toBe(total * size);
    expect(rx.received).toBe(total * size);
    expect(rx.mismatchAt).toBe(-1);
    // exactly one record per request, none pending, none extra
    expect(ring.stats.issued - stats0.issued).toBe(total);
    expect(ring.stats.records - stats0.records).toBe(total);
    expect(ring.inFlight).toBe(0);
    expect(ring.nativePending).toBe(0);
    expect(zc.used + zc.copied + zc.unknown).toBe(total);
    // batching: sends made in one tick share one submit
    expect(ring.stats.submits - stats0.submits).toBeLessThan(total * 0.8);
    for (const pb of free) pb.release();
    pool.close();
  });
});

describe('backpressure', () => {
  it.each([true, false])('queues in JS when maxRequests are in flight, loses nothing (deferTaskrun=%s)', async (deferTaskrun) => {
    const { ring, rx, sock } = await setup({ deferTaskrun, entries: 16, maxRequests: 8 });
    const n = scaledVm(5000, 500);
    const size = 1500;
    let offset = 0;
    const ps: Promise<SendResult>[] = [];
    for (let i = 0; i < n; i++) {
      const b = new Uint8Array(size);
      fillPattern(b, offset);
      offset += size;
      ps.push(sock.send(b, { mode: i % 2 ? 'zc' : 'copy' }));
    }
    // all were accepted synchronously; most wait in JS
    expect(sock.inFlight).toBe(n);
    await Promise.resolve(); // the batching microtask issues what it can
    expect(ring.stats.backpressured).toBeGreaterThan(0);
    const rs = await Promise.all(ps);
    expect(rs.every((r) => r.bytes === size)).toBe(true);
    await rx.waitFor(offset);
    expect(rx.mismatchAt).toBe(-1);
    expect(rx.received).toBe(n * size);
    expect(ring.inFlight).toBe(0);
  });
});
