// SPDX-License-Identifier: MIT
// Automatic fallback to node:net: a child whose io_uring_setup is refused by
// a seccomp filter (as Docker's, containerd's and Kubernetes' default
// profiles do) serves http over a ZcServer with backend 'auto', reports
// backend 'net' and says why, once; 'uring' asked for explicitly throws.
// Likewise where the ring cannot be locked in memory (RLIMIT_MEMLOCK).
// kernel.io_uring_disabled fails io_uring_setup with the same EPERM as the
// filter (it is a machine-wide sysctl: not toggled by tests).
// The same child without the filter runs on io_uring.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_VM, childJson, ROOT, run, runTs } from './helpers.ts';

interface ChildOut {
  serverBackend: string;
  clientBackend: string;
  bodies: string[];
  warnings: { code?: string; message: string }[];
  uringUnavailable: { code: string; hint?: string } | null;
  uringError: string | null;
}

let dir = '';
let tool = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), `uzc-native-fallback-${process.pid}-`));
  tool = join(dir, 'no-uring');
  const r = await run(process.env['CC'] ?? 'cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', tool, join(ROOT, 'tests/ts/fixtures/no-uring.c')]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const served = ['POST /a 100000 bytes', 'POST /b 100000 bytes'];
/** A child under TCG on a loaded machine took over 60 s. */
const CHILD_MS = IN_VM ? 170_000 : 60_000;
const TEST_MS = CHILD_MS + 10_000;
/** Host only unless URING_ZC_FULL=1 (VM time budget). */
const hostOnly = IN_VM && process.env['URING_ZC_FULL'] !== '1';

describe("backend 'auto' where io_uring is blocked", () => {
  // ENOSYS takes the same path as EPERM: the VMs run EPERM only.
  it.each(hostOnly ? ['EPERM'] : ['EPERM', 'ENOSYS'])('io_uring_setup fails with %s: http is served over node:net, the reason reported once', async (errno) => {
    const r = await runTs('tests/ts/fixtures/fallback-child.ts', [], { wrap: [tool, errno], timeoutMs: CHILD_MS });
    const out = childJson<ChildOut>(r);
    expect(out.serverBackend).toBe('net');
    expect(out.clientBackend).toBe('net');
    expect(out.bodies).toEqual(served);
    expect(out.warnings).toHaveLength(1);
    expect(out.warnings[0]?.code).toBe('URING_ZC_FALLBACK');
    expect(out.warnings[0]?.message).toMatch(new RegExp(`io_uring is not available, using node:net instead: ring\\.create: ${errno}`));
    expect(out.uringUnavailable?.code).toBe(errno);
    expect(out.uringUnavailable?.hint).toMatch(/seccomp/);
    expect(out.uringError).toBe(errno);
  }, TEST_MS);

  it('the ring cannot be locked in memory (RLIMIT_MEMLOCK 0, no CAP_IPC_LOCK): ENOMEM, served over node:net', async (ctx) => {
    // (the VM kernels exempt root despite setpriv, see errors.test.ts: a child for nothing)
    if (hostOnly) ctx.skip('RLIMIT_MEMLOCK is not charged to root in the VMs (runs on the host; URING_ZC_FULL=1 runs it here)');
    const which = await run('sh', ['-c', 'command -v prlimit && command -v setpriv']);
    expect(which.code, 'prlimit and setpriv (util-linux) are needed for this test').toBe(0);
    // root has CAP_IPC_LOCK, which exempts it from RLIMIT_MEMLOCK: drop it
    const dropCap = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'] : [];
    const r = await runTs('tests/ts/fixtures/fallback-child.ts', [], { wrap: ['prlimit', '--memlock=0:0', ...dropCap], timeoutMs: CHILD_MS });
    const out = childJson<ChildOut>(r);
    if (out.serverBackend === 'uring' && out.warnings.length === 0) {
      // (7.2 as root in the VMs keeps CAP_IPC_LOCK's exemption despite setpriv)
      ctx.skip('this kernel does not charge the ring to RLIMIT_MEMLOCK for this process: ENOMEM cannot be provoked');
    }
    expect(out.serverBackend).toBe('net');
    expect(out.clientBackend).toBe('net');
    expect(out.bodies).toEqual(served);
    expect(out.warnings).toHaveLength(1);
    expect(out.warnings[0]?.message).toMatch(/io_uring is not available, using node:net instead: ring\.create: ENOMEM/);
    expect(out.uringUnavailable?.code).toBe('ENOMEM');
    expect(out.uringUnavailable?.hint).toMatch(/ulimit -l/);
    expect(out.uringError).toBe('ENOMEM');
  }, TEST_MS);

  it('URING_ZC_BACKEND=net is the process default: node:net without a warning; uring asked for still works', async (ctx) => {
    if (IN_VM) ctx.skip('reads an environment variable: no kernel dependence (runs on the host)');
    const r = await runTs('tests/ts/fixtures/fallback-child.ts', [], { env: { ...process.env, URING_ZC_BACKEND: 'net' }, timeoutMs: 60_000 });
    const out = childJson<ChildOut>(r);
    expect(out).toMatchObject({ serverBackend: 'net', clientBackend: 'net', bodies: served, warnings: [], uringUnavailable: null, uringError: null });
  });

  it('the same child without the filter serves over io_uring and warns nothing', async () => {
    const r = await runTs('tests/ts/fixtures/fallback-child.ts', [], { timeoutMs: CHILD_MS });
    const out = childJson<ChildOut>(r);
    expect(out).toMatchObject({ serverBackend: 'uring', clientBackend: 'uring', bodies: served, warnings: [], uringUnavailable: null, uringError: null });
  }, TEST_MS);
});
