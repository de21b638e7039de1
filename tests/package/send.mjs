// SPDX-License-Identifier: MIT
// uring-zc loaded as an ES module (named imports) by plain node; the
// workload is send-check.cjs.  Also checks that import and require give the
// same module (one copy of the library per process).
import { createRequire } from 'node:module';
import { Ring, connect, libraryPath, probe } from 'uring-zc';
import check from './send-check.cjs';

const required = createRequire(import.meta.url)('uring-zc');
if (required.Ring !== Ring) {
  console.log(JSON.stringify({ ok: false, why: 'import and require gave two copies of uring-zc' }));
  process.exit(1);
}
if (typeof probe().libzcVersion !== 'string') process.exit(1);
process.exitCode = (await check.run({ Ring, connect, libraryPath }, 'esm')) ? 0 : 1;
