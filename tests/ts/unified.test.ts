// SPDX-License-Identifier: MIT
// Unified completion: one record per zero-copy send either way; the kernel
// CQEs behind it are 2 when libzc merges them (stock kernel, or forced
// 'userspace') and 1 with the patched kernel's single-CQE mode.
// URING_ZC_EXPECT_UNIFIED=1|0 (set by the VM runner) pins what 'auto' must pick.
import { describe, expect, it } from 'vitest';
import { probe, Ring, ZcError } from '../../ts/index.ts';
import { connected } from './net-helpers.ts';
import { fillPattern, PatternReceiver } from './helpers.ts';

const kernelHasIt = probe().caps.SEND_ZC_SINGLE_CQE;
const expectEnv = process.env['URING_ZC_EXPECT_UNIFIED'];

// Eight zero-copy pool sends per tick; with coalesce (the default) they
// leave as one SENDMSG_ZC where the kernel can (ring.sendvFixed).
async function zcSends(ring: Ring, n: number, coalesce = false): Promise<{ records: number; cqes: number }> {
  const rx = await PatternReceiver.start();
  try {
    const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
    const pool = ring.createPool({ count: 8, size: 16384 });
    let off = 0;
    const s0 = { ...ring.stats };
    for (let j = 0; j < n; j += 8) {
      const ps = [];
      for (let i = 0; i < 8; i++) {
        const pb = pool.acquire();
        fillPattern(pb.bytes, off, 16384);
        off += 16384;
        ps.push(sock.send(pb, { mode: 'zc', coalesce }).finally(() => pb.release()));
      }
      const rs = await Promise.all(ps);
      expect(rs.every((r) => r.bytes === 16384)).toBe(true);
      // usage is reported where libzc merges two CQEs; the kernel's single
      // CQE cannot carry it (IORING_SEND_ZC_REPORT_USAGE is -EINVAL there)
      expect(rs.every((r) => (r.zeroCopy === 'unknown') === ring.unifiedNative)).toBe(true);
    }
    const delta = { records: ring.stats.records - s0.records, cqes: ring.stats.kernelCqes - s0.kernelCqes };
    await rx.waitFor(off);
    expect(rx.mismatchAt).toBe(-1);
    await sock.close();
    pool.close();
    return delta;
  } finally {
    await rx.close();
  }
}

describe.each([true, false])('unified completion (deferTaskrun=%s)', (deferTaskrun) => {
  it(`'auto' picks the kernel mode when present (kernel has it: ${kernelHasIt}, expected: ${expectEnv ?? 'any'})`, async () => {
    const ring = Ring.create({ deferTaskrun, unified: 'auto' });
    try {
      expect(ring.unifiedNative).toBe(kernelHasIt);
      if (expectEnv === '1' || expectEnv === '0') expect(ring.unifiedNative).toBe(expectEnv === '1');
      const d = await zcSends(ring, 64);
      expect(d.records).toBe(64);
      if (ring.unifiedNative) expect(d.cqes).toBe(64);
      else expect(d.cqes).toBeGreaterThanOrEqual(128);
    } finally {
      ring.close();
    }
  });

  it(`coalesced sends: one request (one record, ${kernelHasIt ? '1' : '2'} CQEs) per tick's 8 sends when the kernel sends registered vectors`, async () => {
    const ring = Ring.create({ deferTaskrun, unified: 'auto' });
    try {
      const d = await zcSends(ring, 64, true);
      if (!ring.sendvFixed) {
        expect(d.records).toBe(64); // Linux < 6.15: one SEND_ZC each
        return;
      }
      expect(d.records).toBe(8);
      expect(d.cqes).toBe(ring.unifiedNative ? 8 : 16);
    } finally {
      ring.close();
    }
  });

  it("'userspace' always merges two CQEs into one record", async () => {
    const ring = Ring.create({ deferTaskrun, unified: 'userspace' });
    try {
      expect(ring.unifiedNative).toBe(false);
      const d = await zcSends(ring, 32);
      expect(d.records).toBe(32);
      expect(d.cqes).toBeGreaterThanOrEqual(64);
    } finally {
      ring.close();
    }
  });

  it("'native' works only on a kernel that has it, otherwise EOPNOTSUPP with a hint", async () => {
    if (kernelHasIt) {
      const ring = Ring.create({ deferTaskrun, unified: 'native' });
      try {
        expect(ring.unifiedNative).toBe(true);
        const d = await zcSends(ring, 32);
        expect(d).toEqual({ records: 32, cqes: 32 });
      } finally {
        ring.close();
      }
    } else {
      let err: unknown;
      try {
        Ring.create({ deferTaskrun, unified: 'native' }).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ZcError);
      expect((err as ZcError).code).toBe('EOPNOTSUPP');
      expect((err as ZcError).op).toBe('ring.create');
      expect((err as ZcError).hint).toMatch(/uring-zc series/);
    }
  });
});
