// SPDX-License-Identifier: MIT
// The publishable package (scripts/build-package.ts, esbuild): it builds,
// loads libzc from beside the bundle, and its declarations are importable.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IN_VM } from './helpers.ts';

const root = resolve(import.meta.dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'uring-zc-pkg-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

// Kernel-independent and slow under TCG: the host run covers it.
describe.skipIf(IN_VM)('package build (host only: does not depend on the kernel)', () => {
  it('bundles the API and CLI with libzc.so and declarations', () => {
    execFileSync(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'scripts', 'build-package.ts'), out], {
      stdio: 'pipe',
    });
    for (const f of ['index.js', 'cli.js', 'libzc.so', 'package.json', 'types/index.d.ts']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(readFileSync(join(out, 'cli.js'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    const dts = readFileSync(join(out, 'types', 'index.d.ts'), 'utf8');
    expect(dts).toMatch(/from '\.\/ring\.js'/);
    expect(dts).not.toMatch(/from '\.[^']*\.ts'/);
    const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg['type']).toBe('module');
  }, 60_000);

  it('runs from the bundle alone: libzc found beside it, a ring opens and closes', () => {
    symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
    const script =
      "const m = await import(process.argv[1]);" +
      "const r = m.Ring.create({ entries: 8 });" +
      "console.log(JSON.stringify({ lib: m.libraryPath(), native: r.unifiedNative }));" +
      "r.close();";
    const env = { ...process.env };
    delete env['URING_ZC_LIB'];
    const res = execFileSync(process.execPath, ['--input-type=module', '-e', script, join(out, 'index.js')], {
      env,
      encoding: 'utf8',
    });
    const info = JSON.parse(res) as { lib: string; native: boolean };
    expect(info.lib).toBe(join(out, 'libzc.so'));
    expect(typeof info.native).toBe('boolean');
  }, 30_000);
});
