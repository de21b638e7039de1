// SPDX-License-Identifier: MIT
// Receiver of the package test's workload (send-check.cjs), its own process:
// listens on 127.0.0.1, prints its port, then for the one connection prints
// { bytes, sha256 } of everything received once the sender ended the stream.
'use strict';
const { createHash } = require('node:crypto');
const net = require('node:net');

const server = net.createServer((s) => {
  const hash = createHash('sha256');
  let bytes = 0;
  s.on('data', (d) => {
    bytes += d.length;
    hash.update(d);
  });
  s.on('end', () => {
    process.stdout.write(JSON.stringify({ bytes, sha256: hash.digest('hex') }) + '\n');
    s.end();
    server.close();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
