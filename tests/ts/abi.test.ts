// SPDX-License-Identifier: MIT
// One source of truth: ts/ffi/abi.gen.ts is generated from libzc.h and must be
// current; koffi's struct layouts must match the C compiler's.
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { LAYOUT, OP, ERRNO } from '../../ts/ffi/abi.gen.ts';
import { types } from '../../ts/ffi/libzc.ts';
import { decodeStruct, encodeStruct } from '../../ts/ffi/structs.ts';
import { errnoName, errnoNumber } from '../../ts/errors.ts';
import { ROOT, run } from './helpers.ts';

describe('abi.gen.ts', () => {
  it('is what gen-abi prints for the current libzc.h', async () => {
    const out = join(tmpdir(), `abi.gen.${process.pid}.ts`);
    try {
      const r = await run(join(ROOT, 'scripts/gen-abi.sh'), [out]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const fresh = readFileSync(out, 'utf8');
      const committed = readFileSync(join(ROOT, 'ts/ffi/abi.gen.ts'), 'utf8');
      // on a difference: run `npm run gen-abi` and commit ts/ffi/abi.gen.ts
      expect(committed).toBe(fresh);
    } finally {
      rmSync(out, { force: true });
    }
  });

  const structs = [
    'zc_ring_config', 'zc_completion', 'zc_pool_config', 'zc_probe', 'zc_sendfile_config', 'zc_sendfile_stats', 'iovec',
  ] as const;
  it.each(structs)('koffi layout of %s matches C', (name) => {
    const c = LAYOUT[name];
    const t = types[name];
    expect(koffi.sizeof(t)).toBe(c.size);
    expect(koffi.alignof(t)).toBe(c.align);
    const cFields = Object.keys(c.fields);
    const kFields = Object.keys((koffi.introspect(t) as { members: Record<string, unknown> }).members);
    expect(kFields).toEqual(cFields);
    for (const [field, f] of Object.entries(c.fields) as [string, { offset: number; size: number }][]) {
      expect({ field, offset: koffi.offsetof(t, field) }).toEqual({ field, offset: f.offset });
    }
  });

  it('zc_completion is the 32-byte record the reaper decodes', () => {
    expect(LAYOUT.zc_completion.size).toBe(32);
    expect(LAYOUT.zc_completion.fields.user_data).toEqual({ offset: 0, size: 8 });
  });

  it('structs as bytes (structs.ts): fields where the generated layout puts them, signed and 64-bit ones exact', () => {
    const b = encodeStruct('zc_rx_info', { mode: 3, zcrx_errno: -95, bgid: -1, bytes: 2n ** 60n + 1n, chunks: 7, quota: 0xffffffff });
    expect(b.length).toBe(LAYOUT.zc_rx_info.size);
    const dv = new DataView(b.buffer);
    expect(dv.getInt32(LAYOUT.zc_rx_info.fields.zcrx_errno.offset, true)).toBe(-95);
    expect(dv.getBigUint64(LAYOUT.zc_rx_info.fields.bytes.offset, true)).toBe(2n ** 60n + 1n);
    const d = decodeStruct('zc_rx_info', b);
    expect(d).toMatchObject({ mode: 3, zcrx_errno: -95, bgid: -1, bytes: 2n ** 60n + 1n, chunks: 7, quota: 0xffffffff, held: 0 });
    const c = encodeStruct('zc_rx_config', { ifname: 'eth0', area_size: 1 << 20 });
    expect(decodeStruct('zc_rx_config', c)).toMatchObject({ ifname: 'eth0', area_size: 1 << 20, mode: 0 });
    expect(() => encodeStruct('zc_rx_config', { ifname: 'x'.repeat(16) })).toThrow(RangeError);
    expect(() => encodeStruct('zc_ring_config', { nope: 1 } as never)).toThrow(TypeError);
  });

  it('errno table round-trips', () => {
    expect(errnoName(ERRNO.EOPNOTSUPP)).toBe('EOPNOTSUPP');
    expect(errnoName(-ERRNO.ECANCELED)).toBe('ECANCELED');
    expect(errnoNumber('ENOMEM')).toBe(12);
    expect(errnoName(9999)).toBe('E9999');
    expect(OP.SEND_ZC).toBeGreaterThan(OP.SEND);
  });
});
