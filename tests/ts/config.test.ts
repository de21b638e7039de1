// SPDX-License-Identifier: MIT
// Option validation: defaults, and bad input named by field, value and allowed range.
import { describe, expect, it } from 'vitest';
import {
  AUTO_ZC_THRESHOLD,
  AUTO_ZC_THRESHOLD_UNREGISTERED,
  Ring,
  ZcConfigError,
  ZcDatagram,
  ZcSocket,
} from '../../ts/index.ts';
import { parseBufferPoolOptions, parseRingOptions, parseSendOptions } from '../../ts/config.ts';
import { connected } from './net-helpers.ts';

function configError(fn: () => unknown): ZcConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ZcConfigError);
    return e as ZcConfigError;
  }
  throw new Error('expected a ZcConfigError, nothing was thrown');
}

describe('defaults', () => {
  it('ring options', () => {
    expect(parseRingOptions()).toEqual({
      entries: 256,
      singleIssuer: true,
      deferTaskrun: false,
      coopTaskrun: true,
      registeredFd: true,
      cqe32: false,
      unified: 'auto',
      maxFixedBuffers: 1024,
      loopWait: 'auto',
    });
    expect(parseRingOptions({ entries: 8, cqEntries: 64, maxRequests: 10 })).toMatchObject({
      entries: 8,
      cqEntries: 64,
      maxRequests: 10,
    });
  });
  it('pool options', () => {
    expect(parseBufferPoolOptions()).toEqual({ count: 64, size: 65536, hugePages: false });
  });
  it('send options', () => {
    expect(parseSendOptions()).toEqual({
      mode: 'auto',
      autoThreshold: AUTO_ZC_THRESHOLD,
      autoThresholdUnregistered: AUTO_ZC_THRESHOLD_UNREGISTERED,
      more: false,
      reportUsage: true,
      coalesce: true,
    });
    expect(AUTO_ZC_THRESHOLD).toBe(16384);
    expect(AUTO_ZC_THRESHOLD_UNREGISTERED).toBe(262144);
  });
});

// [options, field, fragment of the allowed text]
const badRing: [unknown, string, string][] = [
  [{ entries: 0 }, 'entries', 'power of two in 1..32768'],
  [{ entries: 3 }, 'entries', 'power of two'],
  [{ entries: 65536 }, 'entries', '1..32768'],
  [{ entries: -4 }, 'entries', 'power of two'],
  [{ entries: 2.5 }, 'entries', 'power of two'],
  [{ entries: '256' }, 'entries', 'power of two'],
  [{ entries: Number.NaN }, 'entries', 'power of two'],
  [{ entries: null }, 'entries', 'power of two'],
  [{ cqEntries: 100 }, 'cqEntries', 'power of two in entries..'],
  [{ entries: 64, cqEntries: 32 }, 'cqEntries', 'entries..'],
  [{ cqEntries: 1 << 20 }, 'cqEntries', 'power of two'],
  [{ singleIssuer: 'yes' }, 'singleIssuer', 'boolean'],
  [{ deferTaskrun: 1 }, 'deferTaskrun', 'boolean'],
  [{ deferTaskrun: true, singleIssuer: false }, 'deferTaskrun', 'singleIssuer: true'],
  [{ coopTaskrun: 'no' }, 'coopTaskrun', 'boolean'],
  [{ registeredFd: 0 }, 'registeredFd', 'boolean'],
  [{ unified: 'kernel' }, 'unified', '"auto", "native" or "userspace"'],
  [{ unified: 1 }, 'unified', '"auto"'],
  [{ maxRequests: 0 }, 'maxRequests', 'integer in 1..'],
  [{ maxRequests: 1e9 }, 'maxRequests', 'integer in 1..'],
  [{ maxFixedBuffers: 0 }, 'maxFixedBuffers', '1..16384'],
  [{ entires: 64 }, 'entires', 'no such option'],
];

describe('RingOptions rejects bad input', () => {
  it.each(badRing)('%j -> %s', (input, field, allowed) => {
    const e = configError(() => parseRingOptions(input as never));
    expect(e.schema).toBe('RingOptions');
    expect(e.field).toBe(field);
    expect(e.allowed).toContain(allowed);
    expect(Object.is(e.value, (input as Record<string, unknown>)[field])).toBe(true);
    // the message carries all three: field, value, allowed
    expect(e.message).toContain(`RingOptions.${field}`);
    expect(e.message).toContain('expected');
  });

  it('reports every bad field', () => {
    const e = configError(() => parseRingOptions({ entries: 3, unified: 'x', coopTaskrun: 5 } as never));
    expect(e.issues.map((i) => i.field).sort()).toEqual(['coopTaskrun', 'entries', 'unified']);
  });

  it('rejects a non-object', () => {
    const e = configError(() => parseRingOptions(42 as never));
    expect(e.field).toBe('(root)');
    expect(e.value).toBe(42);
  });

  it('Ring.create validates before touching the kernel', () => {
    const e = configError(() => Ring.create({ entries: 1000 }));
    expect(e.field).toBe('entries');
    expect(e.value).toBe(1000);
    expect(e.message).toMatch(/RingOptions\.entries = 1000: expected a power of two in 1\.\.32768/);
  });
});

const badPool: [unknown, string, string][] = [
  [{ count: 0 }, 'count', '1..65536'],
  [{ count: 70000 }, 'count', '1..65536'],
  [{ count: 1.5 }, 'count', 'integer'],
  [{ size: 1000 }, 'size', 'multiple of 4096'],
  [{ size: 4097 }, 'size', 'multiple of 4096'],
  [{ size: 0 }, 'size', 'multiple of 4096'],
  [{ size: 2 ** 31 }, 'size', '4096..1073741824'],
  [{ size: '64K' }, 'size', 'multiple of 4096'],
  [{ hugePages: 'true' }, 'hugePages', 'boolean'],
  [{ hugePages: true, count: 1, size: 4096 }, 'size', '2097152'],
  [{ buffers: 3 }, 'buffers', 'no such option'],
];

describe('BufferPoolOptions rejects bad input', () => {
  it.each(badPool)('%j -> %s', (input, field, allowed) => {
    const e = configError(() => parseBufferPoolOptions(input as never));
    expect(e.schema).toBe('BufferPoolOptions');
    expect(e.field).toBe(field);
    expect(e.allowed).toContain(allowed);
    expect(e.message).toContain(`BufferPoolOptions.${field}`);
  });
  it('accepts huge pages when the total is a multiple of 2 MiB', () => {
    expect(parseBufferPoolOptions({ hugePages: true, count: 32, size: 65536 }).hugePages).toBe(true);
  });
});

const badSend: [unknown, string, string][] = [
  [{ mode: 'zerocopy' }, 'mode', '"copy", "zc" or "auto"'],
  [{ mode: null }, 'mode', '"copy"'],
  [{ autoThreshold: -1 }, 'autoThreshold', '0..4294967295'],
  [{ autoThreshold: 2 ** 32 }, 'autoThreshold', '0..4294967295'],
  [{ autoThreshold: 1.5 }, 'autoThreshold', 'integer'],
  [{ autoThresholdUnregistered: -1 }, 'autoThresholdUnregistered', '0..4294967295'],
  [{ more: 'yes' }, 'more', 'boolean'],
  [{ reportUsage: 1 }, 'reportUsage', 'boolean'],
  [{ coalesce: 'yes' }, 'coalesce', 'boolean'],
  [{ offset: -1 }, 'offset', 'integer'],
  [{ length: 1.25 }, 'length', 'integer'],
  [{ zc: true }, 'zc', 'no such option'],
];

describe('SendOptions rejects bad input', () => {
  it.each(badSend)('%j -> %s', (input, field, allowed) => {
    const e = configError(() => parseSendOptions(input as never));
    expect(e.schema).toBe('SendOptions');
    expect(e.field).toBe(field);
    expect(e.allowed).toContain(allowed);
  });
});

describe('send() validates its options on the hot path too', () => {
  it('throws ZcConfigError synchronously and sends nothing', () => {
    const ring = Ring.create();
    try {
      const [a, b] = ZcSocket.pair({ ring });
      const issued = ring.stats.issued;
      for (const [input, field] of badSend) {
        const e = configError(() => a.send(new Uint8Array(8), input as never));
        expect(e.field).toBe(field);
      }
      const pool = ring.createPool({ count: 1, size: 4096 });
      const buf = pool.acquire();
      let e = configError(() => a.send(buf, { offset: 5000 }));
      expect(e.field).toBe('offset');
      expect(e.allowed).toContain('0..4096');
      e = configError(() => a.send(buf, { offset: 4000, length: 200 }));
      expect(e.field).toBe('length');
      expect(e.allowed).toContain('0..96');
      e = configError(() => a.send(new Uint8Array(10), { length: 11 }));
      expect(e.field).toBe('length');
      // nothing was issued and the buffer is still ours
      expect(ring.stats.issued).toBe(issued);
      expect(buf.inFlight).toBe(false);
      expect(() => buf.bytes).not.toThrow();
      void b;
    } finally {
      ring.close();
    }
  });

  it('rejects bad sockaddr input with field names', async () => {
    const ring = Ring.create();
    try {
      await expect(connected({ ring, host: '127.0.0.1', port: 70000 })).rejects.toMatchObject({
        name: 'ZcConfigError',
        field: 'port',
        value: 70000,
      });
      const u = await ZcDatagram.open({ ring });
      expect(() => u.sendTo(new Uint8Array(1), { address: 'not-an-ip', port: 1 })).toThrow(/address/);
      await u.close();
    } finally {
      ring.close();
    }
  });
});
