// SPDX-License-Identifier: MIT
/**
 * The package's declarations: tsc (tsconfig.build.json: from ts/index.ts,
 * @internal stripped) into a directory, import specifiers rewritten from .ts
 * to .js, and names of stripped interfaces dropped where classes implement
 * them.  Throws when a declaration still names a stripped type (the
 * consumer's type-check would fail): used by build-package.ts and, so that
 * `npx vitest run` catches it, by tests/ts/load.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function buildTypes(types: string): void {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['--project', join(root, 'tsconfig.build.json'), '--outDir', types], {
    stdio: 'inherit',
  });
  const dts = new Map<string, string>();
  for (const file of readdirSync(types, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.d.ts')) continue;
    const text = readFileSync(join(types, file), 'utf8')
      .replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2')
      .replace(/(import\(\s*['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2');
    dts.set(join(types, file), text);
  }
  // An @internal interface is stripped from its module, but classes that
  // implement it still name it: drop those names from the imports and the
  // implements clauses (the classes keep matching it structurally).
  function exported(path: string): Set<string> {
    const text = dts.get(path) ?? '';
    const names = [...text.matchAll(/export (?:declare )?(?:abstract )?(?:interface|type|class|function|const|let|enum) (\w+)/g)].map((m) => m[1]!);
    for (const m of text.matchAll(/export (?:type )?\{([^}]*)\}/g)) {
      for (const n of m[1]!.split(',')) names.push(n.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!);
    }
    return new Set(names);
  }
  for (const [path, text] of dts) {
    const gone = new Set<string>();
    let fixed = text.replace(/^import type \{([^}]*)\} from '(\.{1,2}\/[^']+)\.js';\n/gm, (_line, names: string, spec: string) => {
      const target = exported(join(dirname(path), `${spec}.d.ts`));
      const list = names.split(',').map((n) => n.trim()).filter(Boolean);
      const kept = list.filter((n) => target.has(n.replace(/^type\s+/, '')));
      for (const n of list) if (!kept.includes(n)) gone.add(n);
      return kept.length ? `import type { ${kept.join(', ')} } from '${spec}.js';\n` : '';
    });
    if (gone.size > 0) {
      fixed = fixed.replace(/ implements ([\w<>, ]+?) \{/g, (_m, list: string) => {
        const kept = list.split(',').map((n) => n.trim()).filter((n) => !gone.has(n));
        return kept.length ? ` implements ${kept.join(', ')} {` : ' {';
      });
      for (const n of gone) {
        if (new RegExp(`\\b${n}\\b`).test(fixed)) {
          throw new Error(
            `build-package: ${path} still names ${n}, whose declaration @internal stripped: ` +
              `remove that @internal tag, or tag what uses ${n} @internal too`,
          );
        }
      }
    }
    writeFileSync(path, fixed);
  }
}
