// SPDX-License-Identifier: MIT
// uring-zc loaded with require() by plain node; the workload is send-check.cjs.
'use strict';
const api = require('uring-zc');
const check = require('./send-check.cjs');

check.run(api, 'cjs').then(
  (ok) => (process.exitCode = ok ? 0 : 1),
  (e) => {
    console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
    process.exitCode = 1;
  },
);
