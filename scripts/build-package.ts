// SPDX-License-Identifier: MIT
/**
 * Build dist/, the JavaScript half of the npm package (`make package`; the
 * root package.json's `exports`, `bin` and `files` point into it):
 *
 *   dist/index.cjs        the API, one CommonJS bundle (esbuild; koffi and zod external)
 *   dist/index.mjs        ES module entry: re-exports index.cjs by name, so a
 *                         process that both imports and requires the package
 *                         has one copy of it (one set of koffi types, one libzc)
 *   dist/types/, dist/index.d.mts   declarations (tsc, @internal stripped)
 *   dist/cli.mjs          the `uring-zc` command, plain node (ES module bundle)
 *   dist/prebuilds/<platform>/libzc.so   from `make -C libzc prebuilt`
 *   dist/prebuilds/<platform>/zc_poll.node   the rings' eventfd watcher (a Node-API addon), too
 *   dist/package.json     {"type": "commonjs"}: the .js/.d.ts inside are CommonJS
 *
 *   npx tsx scripts/build-package.ts
 */
import { build } from 'esbuild';
import { buildTypes } from './build-types.ts';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const prebuilt = join(root, 'libzc', 'build', 'prebuilt');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};

const platforms = existsSync(prebuilt) ? readdirSync(prebuilt).filter((p) => existsSync(join(prebuilt, p, 'libzc.so'))) : [];
if (platforms.length === 0) {
  console.error(`build-package: no libraries in ${prebuilt}: run \`make -C libzc prebuilt\` (or \`make package\`)`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Runtime dependencies stay external: koffi ships its native part per platform.
const external = Object.keys(pkg.dependencies);
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  external,
  logLevel: 'warning',
  legalComments: 'none',
} as const;

// The API as CommonJS.  import.meta.url (the loader finds the package root
// from it) becomes the bundle's own file URL.
await build({
  ...common,
  entryPoints: [join(root, 'ts', 'index.ts')],
  outfile: join(out, 'index.cjs'),
  format: 'cjs',
  define: { 'import.meta.url': '__uring_zc_import_meta_url' },
  banner: { js: "const __uring_zc_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
});

// The ES module entry: the names the API exports, taken from an ESM build
// that is not written (its metafile lists them).
const esm = await build({
  ...common,
  entryPoints: [join(root, 'ts', 'index.ts')],
  outfile: join(out, 'index.mjs'),
  format: 'esm',
  write: false,
  metafile: true,
});
const names = Object.values(esm.metafile.outputs).flatMap((o) => o.exports).sort();
if (names.length === 0 || names.includes('default')) throw new Error(`build-package: unexpected exports ${names.join(',')}`);
writeFileSync(
  join(out, 'index.mjs'),
  '// uring-zc as an ES module: the CommonJS build, re-exported by name.\n' +
    "import api from './index.cjs';\n\n" +
    `export const {\n${names.map((n) => `  ${n},\n`).join('')}} = api;\n`,
);
writeFileSync(join(out, 'index.d.mts'), "export * from './types/index.js';\n");
writeFileSync(join(out, 'package.json'), '{\n  "type": "commonjs"\n}\n');

// The CLI: a separate process, so its own bundle; plain node runs it.
await build({
  ...common,
  entryPoints: [join(root, 'ts', 'cli', 'main.ts')],
  outfile: join(out, 'cli.mjs'),
  format: 'esm',
});
const cli = join(out, 'cli.mjs');
writeFileSync(cli, readFileSync(cli, 'utf8').replace(/^#!.*\n/, '#!/usr/bin/env node\n'), { mode: 0o755 });

for (const p of platforms) {
  mkdirSync(join(out, 'prebuilds', p), { recursive: true });
  copyFileSync(join(prebuilt, p, 'libzc.so'), join(out, 'prebuilds', p, 'libzc.so'));
  copyFileSync(join(prebuilt, p, 'zc_poll.node'), join(out, 'prebuilds', p, 'zc_poll.node'));
}

buildTypes(join(out, 'types'));
console.log(`build-package: ${out}: index.cjs, index.mjs (${names.length} exports), cli.mjs, types/, prebuilds/{${platforms.join(',')}}`);
