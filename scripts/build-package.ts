// SPDX-License-Identifier: MIT
/**
 * Build the publishable package into dist/ (or the directory given as the
 * first argument): ESM bundles of the API and the CLI made by esbuild, type
 * declarations from tsc, libzc.so beside the bundles, and a package.json.
 *
 *   npx tsx scripts/build-package.ts [outdir]
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'dist'));
const lib = join(root, 'libzc', 'build', 'libzc.so');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  description: string;
  license: string;
  dependencies: Record<string, string>;
};

if (!existsSync(lib)) {
  console.error(`build-package: ${lib} is missing: run \`make build\` first`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Runtime dependencies stay external: koffi ships its native part per platform.
const external = Object.keys(pkg.dependencies);
await build({
  entryPoints: { index: join(root, 'ts', 'index.ts'), cli: join(root, 'ts', 'cli', 'main.ts') },
  outdir: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  sourcemap: true,
  logLevel: 'warning',
});
copyFileSync(lib, join(out, 'libzc.so'));
// The repository's CLI runs under tsx; the bundle is plain JavaScript.
const cli = join(out, 'cli.js');
writeFileSync(cli, readFileSync(cli, 'utf8').replace(/^#!.*\n/, '#!/usr/bin/env node\n'), { mode: 0o755 });

// Declarations from tsc (tsconfig.build.json); their import specifiers
// name .ts files, which a consumer resolves as .js.
const types = join(out, 'types');
execFileSync(
  join(root, 'node_modules', '.bin', 'tsc'),
  ['--project', join(root, 'tsconfig.build.json'), '--outDir', types],
  { stdio: 'inherit' },
);
for (const file of readdirSync(types, { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.d.ts')) continue;
  const path = join(types, file);
  writeFileSync(path, readFileSync(path, 'utf8').replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2'));
}

const { tsx: _tsx, ...runtimeDeps } = pkg.dependencies;
writeFileSync(
  join(out, 'package.json'),
  JSON.stringify(
    {
      name: pkg.name,
      version: pkg.version,
      description: pkg.description,
      license: pkg.license,
      type: 'module',
      os: ['linux'],
      engines: { node: '>=20' },
      exports: { '.': { types: './types/index.d.ts', default: './index.js' } },
      types: './types/index.d.ts',
      bin: { 'uring-zc': './cli.js' },
      dependencies: runtimeDeps,
    },
    null,
    2,
  ) + '\n',
);
console.log(`build-package: ${out} (index.js, cli.js, libzc.so, types/)`);
