// SPDX-License-Identifier: MIT
// The package's declarations (scripts/build-types.ts): built with @internal
// stripped, they must name no stripped type.  tsc's output depends on neither
// the kernel nor Node's version: make test runs this file on the host's Node
// only (the package test builds the declarations again and type-checks a
// consumer on Node 20-26).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTypes } from '../../scripts/build-types.ts';
import { IN_VM } from './helpers.ts';

// tsc under TCG is slow and the declarations do not depend on the kernel.
describe.skipIf(IN_VM)('package declarations (host only)', () => {
  it('build with @internal stripped and name no stripped type', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uring-zc-types-'));
    try {
      buildTypes(dir); // throws naming the file and the type
      expect(existsSync(join(dir, 'index.d.ts'))).toBe(true);
      expect(readFileSync(join(dir, 'index.d.ts'), 'utf8')).not.toMatch(/from '\.[^']*\.ts'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
