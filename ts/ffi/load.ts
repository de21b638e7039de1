// SPDX-License-Identifier: MIT
/**
 * Which libzc.so a process uses, and opening it once.  The declarations of
 * its functions live in libzc.ts and recv.ts; both bind to the one handle
 * returned by {@link openLibrary}.
 *
 * The library is, in this order:
 *  1. the file named by the environment variable `URING_ZC_LIB`;
 *  2. `libzc/build/libzc.so` under the package root: a build from source
 *     (`make build` in a checkout, `npx uring-zc build` in an installed
 *     package; with `URING_ZC_BUILD_FROM_SOURCE=1` the first load builds it);
 *  3. `dist/prebuilds/<platform>/libzc.so`: the prebuilt library of the npm
 *     package (`make prebuilt` in libzc/, liburing linked statically).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

/** Platforms the npm package ships a prebuilt libzc for (libzc/Makefile PREBUILT). */
export const PREBUILT_PLATFORMS = ['linux-x64-gnu', 'linux-arm64-gnu'] as const;

/** What a source build needs, for the error messages. */
const SOURCE_BUILD_NEEDS = 'a C compiler, make, pkg-config and liburing >= 2.12 with its headers';

/** Raised when libzc.so cannot be found or loaded; the message says what is needed. */
export class LibraryLoadError extends Error {
  override readonly name = 'LibraryLoadError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * The directory holding uring-zc's package.json: two levels above this file
 * in a checkout (ts/ffi/), one above the bundles of the package (dist/).
 */
function findPackageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here, i = 0; i < 4; dir = dirname(dir), i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'uring-zc') return dir;
    } catch {
      // no package.json here, or not ours (dist/package.json only sets the module type)
    }
  }
  return resolve(here, '..', '..');
}

/** @internal Root of the uring-zc package (a checkout or node_modules/uring-zc). */
export const PACKAGE_ROOT = findPackageRoot();

/** @internal libzc built from source in this package (`make build`, `uring-zc build`). */
export const SOURCE_LIB_PATH = join(PACKAGE_ROOT, 'libzc', 'build', 'libzc.so');

/**
 * The prebuilt's platform name for this process: `linux-x64-gnu`,
 * `linux-arm64-musl`, ... (`<os>-<arch>` elsewhere).  The C library is the
 * one Node itself runs on: glibc when its process report names a glibc
 * version, musl otherwise.
 */
export function platformTag(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  return `linux-${process.arch}-${glibcRuntime() === undefined ? 'musl' : 'gnu'}`;
}

function glibcRuntime(): string | undefined {
  // excludeNetwork: Node >= 20.13 (older ones ignore it); the types lag.
  const report = process.report as typeof process.report & { excludeNetwork?: boolean };
  const saved = report.excludeNetwork;
  report.excludeNetwork = true; // the report need not resolve interfaces
  try {
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    return header?.glibcVersionRuntime;
  } finally {
    if (saved !== undefined) report.excludeNetwork = saved;
  }
}

/** @internal The prebuilt library of a platform inside this package. */
export function prebuiltPath(tag: string): string {
  return join(PACKAGE_ROOT, 'dist', 'prebuilds', tag, 'libzc.so');
}

/** How the library in use was chosen. */
export type LibrarySource = 'env' | 'source' | 'prebuilt';

/**
 * Where libzc is (or would be) loaded from, and why; throws LibraryLoadError
 * when nowhere.  With URING_ZC_BUILD_FROM_SOURCE=1 and no source build yet,
 * `build` says whether to run it now.
 */
export function resolveLibrary(build = false): { path: string; source: LibrarySource } {
  const env = process.env['URING_ZC_LIB'];
  if (env !== undefined && env !== '') return { path: resolve(env), source: 'env' };
  if (existsSync(SOURCE_LIB_PATH)) return { path: SOURCE_LIB_PATH, source: 'source' };
  if (process.env['URING_ZC_BUILD_FROM_SOURCE'] === '1') {
    if (build) buildFromSource();
    return { path: SOURCE_LIB_PATH, source: 'source' };
  }
  const tag = platformTag();
  const prebuilt = prebuiltPath(tag);
  if (existsSync(prebuilt)) return { path: prebuilt, source: 'prebuilt' };
  throw new LibraryLoadError(missingMessage(tag), prebuilt);
}

function missingMessage(tag: string): string {
  const shipped = shippedPlatforms();
  if (shipped.length === 0) {
    // A checkout (no dist/prebuilds): the library is built here.
    return (
      `libzc not found at ${SOURCE_LIB_PATH}: run \`make build\` in ${PACKAGE_ROOT}` +
      ' (or set URING_ZC_LIB to the path of libzc.so)'
    );
  }
  const why =
    process.platform !== 'linux'
      ? `uring-zc needs Linux (io_uring); this is ${process.platform}`
      : `uring-zc has no prebuilt libzc for ${tag} (prebuilt: ${shipped.join(', ')})`;
  return (
    `${why}. On Linux, build it from source: \`npx uring-zc build\` (or set URING_ZC_BUILD_FROM_SOURCE=1;` +
    ` needs ${SOURCE_BUILD_NEEDS}), or set URING_ZC_LIB to the path of a libzc.so`
  );
}

function shippedPlatforms(): string[] {
  try {
    return readdirSync(join(PACKAGE_ROOT, 'dist', 'prebuilds')).sort();
  } catch {
    return [];
  }
}

/**
 * Build libzc from the package's own sources (libzc/, shipped in the npm
 * package) into libzc/build/libzc.so, linked against the system's liburing;
 * the loader prefers it to the prebuilt from then on.  Runs make; returns
 * the library's path, throws LibraryLoadError with make's output and what a
 * build needs.
 */
export function buildFromSource(): string {
  const dir = join(PACKAGE_ROOT, 'libzc');
  // The poll addon too (a ring falls back to koffi's poll handle without it).
  const r = spawnSync('make', ['-C', dir, 'build/libzc.so', 'build/zc_poll.node'], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(SOURCE_LIB_PATH)) {
    const out = r.error ? r.error.message : `${r.stdout}${r.stderr}`.trim().split('\n').slice(-8).join('\n');
    throw new LibraryLoadError(
      `building libzc from source in ${dir} failed (needs ${SOURCE_BUILD_NEEDS}, and write access` +
        ` to ${dir}):\n${out}`,
      SOURCE_LIB_PATH,
    );
  }
  return SOURCE_LIB_PATH;
}

/** Path libzc is (or would be) loaded from. */
export function libraryPath(): string {
  try {
    return resolveLibrary().path;
  } catch (e) {
    if (e instanceof LibraryLoadError) return e.path;
    throw e;
  }
}

let opened: { lib: ReturnType<typeof koffi.load>; path: string; source: LibrarySource } | undefined;

/**
 * @internal Open libzc once per process (every declaration module binds to
 * this handle).  Throws LibraryLoadError naming what is missing and the fix.
 */
export function openLibrary(): { lib: ReturnType<typeof koffi.load>; path: string; source: LibrarySource } {
  if (opened) return opened;
  const { path, source } = resolveLibrary(true);
  if (!existsSync(path)) {
    throw new LibraryLoadError(
      `libzc not found at ${path} (URING_ZC_LIB): set it to an existing libzc.so, or unset it to use ` +
        `the package's own library`,
      path,
    );
  }
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(path);
  } catch (e) {
    const fix =
      source === 'prebuilt'
        ? `the prebuilt library needs glibc >= 2.17 on ${platformTag()}; build from source with ` +
          `\`npx uring-zc build\` (needs ${SOURCE_BUILD_NEEDS})`
        : source === 'source'
          ? `rebuild it (\`make build\` in ${PACKAGE_ROOT})`
          : 'point URING_ZC_LIB at a libzc.so built for this machine';
    throw new LibraryLoadError(`cannot load libzc from ${path}: ${(e as Error).message}; ${fix}`, path);
  }
  opened = { lib, path, source };
  return opened;
}
