// SPDX-License-Identifier: MIT
/** Builds the C helpers of the benchmark (libzc/bench) on demand. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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
