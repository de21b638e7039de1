// SPDX-License-Identifier: MIT
/** Builds the C helpers of the benchmark (libzc/bench) on demand. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libraryPath } from '../ffi/libzc.ts';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The repository checkout: ts/bench/../.. when run from the sources, or
 * above a bundle (dist/cli.js) built inside it.  null when neither holds
 * libzc/bench (e.g. an installed package: the bench needs the sources).
 */
function findRoot(): string | null {
  for (const c of [resolve(here, '..', '..'), resolve(here, '..'), here]) {
    if (existsSync(join(c, 'libzc', 'bench', 'c_zc_fixed.c'))) return c;
  }
  return null;
}

const found = findRoot();
export const REPO_ROOT = found ?? resolve(here, '..', '..');
export const BENCH_SRC = join(REPO_ROOT, 'libzc', 'bench');
export const BENCH_BIN = join(REPO_ROOT, 'libzc', 'build', 'bench');

/** Runs `make -C libzc/bench` (a no-op when up to date); returns the bin dir. */
export function buildHelpers(): string {
  if (!found) {
    throw new Error(
      'bench: the C sender and receiver (libzc/bench) are not here: `uring-zc bench` runs from a ' +
        'checkout of the uring-zc repository (`make bench` there), not from the installed package.',
    );
  }
  const r = spawnSync('make', ['-s', '-C', BENCH_SRC], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(join(BENCH_BIN, 'zc_sink'))) {
    const why = r.error ? r.error.message : (r.stderr || r.stdout || '').trim();
    throw new Error(
      `bench: could not build the C helpers (make -C libzc/bench): ${why}\n` +
        'bench: they need a C compiler and liburing headers; run `make setup` (as root) first.',
    );
  }
  return BENCH_BIN;
}

/**
 * The bench's child processes (UDP sender, request/response peers) as one
 * esbuild bundle, `node child.mjs ROLE ...`: no tsx loader in the
 * children, which start in a fraction of the time.  Rebuilt once per run.
 */
let childBundle: string | null = null;
export async function benchChild(): Promise<string> {
  if (childBundle) return childBundle;
  buildHelpers();
  const out = join(BENCH_BIN, 'child.mjs');
  // Not a static import: the published CLI bundle must not pull esbuild in.
  const name = 'esbuild';
  const esbuild = (await import(name)) as typeof import('esbuild');
  esbuild.buildSync({
    entryPoints: [join(REPO_ROOT, 'ts', 'bench', 'child.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
  childBundle = out;
  return out;
}

/** argv and env to start a bench child with `role` (see ts/bench/child.ts). */
export async function childCommand(role: string, args: string[] = []): Promise<{ argv: string[]; env: NodeJS.ProcessEnv }> {
  const bundle = await benchChild();
  return {
    argv: [process.execPath, bundle, role, ...args],
    env: { ...process.env, URING_ZC_LIB: process.env['URING_ZC_LIB'] || libraryPath() },
  };
}
