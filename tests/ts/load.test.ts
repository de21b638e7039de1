// SPDX-License-Identifier: MIT
// The loader (ts/ffi/load.ts) as it behaves in this checkout, and the
// version's one source.  The installed package (prebuilt libraries, no
// compiler, Node 20-26) is scripts/package-test.sh, part of `make test`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { probe } from '../../ts/index.ts';
import { kernelTooOld } from '../../ts/probe.ts';
import {
  PACKAGE_ROOT,
  PREBUILT_PLATFORMS,
  SOURCE_LIB_PATH,
  platformTag,
  prebuiltPath,
  resolveLibrary,
} from '../../ts/ffi/load.ts';

const saved = { lib: process.env['URING_ZC_LIB'], build: process.env['URING_ZC_BUILD_FROM_SOURCE'] };
afterEach(() => {
  for (const [k, v] of [['URING_ZC_LIB', saved.lib], ['URING_ZC_BUILD_FROM_SOURCE', saved.build]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('libzc loader', () => {
  it('finds the package root and names this platform as the prebuilds do', () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string };
    expect(pkg.name).toBe('uring-zc');
    // Node's own process report names the glibc this machine runs.
    expect(platformTag()).toBe(`linux-${process.arch}-gnu`);
    expect(prebuiltPath('linux-x64-gnu')).toBe(join(PACKAGE_ROOT, 'dist', 'prebuilds', 'linux-x64-gnu', 'libzc.so'));
  });

  it('prefers URING_ZC_LIB, then the source build (make build)', () => {
    process.env['URING_ZC_LIB'] = '/somewhere/libzc.so';
    expect(resolveLibrary()).toEqual({ path: '/somewhere/libzc.so', source: 'env' });
    delete process.env['URING_ZC_LIB'];
    expect(resolveLibrary()).toEqual({ path: SOURCE_LIB_PATH, source: 'source' });
    // Without `build`, resolving never runs make.
    process.env['URING_ZC_BUILD_FROM_SOURCE'] = '1';
    expect(resolveLibrary()).toEqual({ path: SOURCE_LIB_PATH, source: 'source' });
  });

  it('lists the platforms libzc/Makefile prebuilds', () => {
    const mk = readFileSync(join(PACKAGE_ROOT, 'libzc', 'Makefile'), 'utf8');
    const line = /^PREBUILT := (.+)$/m.exec(mk);
    expect(line?.[1]?.trim().split(/\s+/).sort()).toEqual([...PREBUILT_PLATFORMS].sort());
  });

  it("reports package.json's version as libzc's (one source: libzc/Makefile passes it in)", () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(probe().libzcVersion).toBe(pkg.version);
  });

  it('a kernel without IORING_OP_SEND_ZC: one error naming Linux 6.0 and the running kernel', () => {
    const info = probe();
    expect(info.caps.SEND_ZC).toBe(true); // this host (6.18) and the VM kernels (7.2)
    expect(kernelTooOld(info)).toBeUndefined();
    const old = { ...info, caps: { ...info.caps, SEND_ZC: false } };
    expect(kernelTooOld(old)).toBe(
      `uring-zc needs Linux >= 6.0 (IORING_OP_SEND_ZC); this kernel (${info.kernelRelease}) lacks it: ` +
        'run on a newer kernel, or use node:net',
    );
    // io_uring refused altogether is Ring.create's setup error (sysctl, seccomp), not this one.
    expect(kernelTooOld({ ...old, caps: { ...old.caps, IO_URING: false } })).toBeUndefined();
  });
});
