// SPDX-License-Identifier: MIT
// io_uring_setup refused (seccomp in a container, or kernel.io_uring_disabled):
// a child runs under a seccomp filter that fails io_uring_setup with EPERM or
// ENOSYS; Ring.create() must say what to check.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childJson, ROOT, run, runTs } from './helpers.ts';

let dir = '';
let tool = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'uring-zc-'));
  tool = join(dir, 'no-uring');
  const r = await run(process.env['CC'] ?? 'cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', tool, join(ROOT, 'tests/ts/fixtures/no-uring.c')]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ring setup refused by the kernel', () => {
  it.each(['EPERM', 'ENOSYS'])('%s from io_uring_setup: ZcError with the sysctl and seccomp hint', async (errno) => {
    const r = await runTs('tests/ts/fixtures/setup-child.ts', [], { wrap: [tool, errno] });
    expect(r.stderr).toBe('');
    const out = childJson(r);
    expect(out).toMatchObject({ ok: false, isZcError: true, code: errno, op: 'ring.create', probeSetupError: errno });
    expect(out['hint']).toMatch(/sysctl kernel\.io_uring_disabled/);
    expect(out['hint']).toMatch(/seccomp/);
    expect(out['details']).toMatchObject({ setupErrno: errno === 'EPERM' ? 1 : 38 });
  });

  it('the same child without the filter creates a ring (the test can tell)', async () => {
    const r = await runTs('tests/ts/fixtures/setup-child.ts');
    expect(childJson(r)).toEqual({ ok: true });
  });
});
