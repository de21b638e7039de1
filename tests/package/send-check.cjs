// SPDX-License-Identifier: MIT
// The package test's workload (scripts/package-test.sh), shared by the ES
// module and the CommonJS program: 64 MiB of random bytes sent zero-copy from
// registered buffers over loopback TCP to a receiver in another process
// (receiver.cjs), whose sha256 and byte count must equal the sender's.  The
// sender's only event source is the ring: a completion that fails to wake it
// hangs the program (the test's timeout then fails it).
// Prints one JSON line; resolves false unless everything matched.
'use strict';
const { spawn } = require('node:child_process');
const { createHash, randomFillSync } = require('node:crypto');
const { once } = require('node:events');
const { join } = require('node:path');
const { createInterface } = require('node:readline');

const TOTAL = 64 * 1024 * 1024;
const BUF = 64 * 1024;
const COUNT = 16;

async function run(api, how) {
  const { Ring, connect, libraryPath } = api;
  const child = spawn(process.execPath, [join(__dirname, 'receiver.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const port = Number((await lines.next()).value);

  const ring = Ring.create();
  const pool = ring.createPool({ count: COUNT, size: BUF });
  const sock = connect({ ring, host: '127.0.0.1', port });
  await once(sock, 'connect');
  const sendHash = createHash('sha256');
  const usage = { used: 0, copied: 0, unknown: 0 };
  let queued = 0;
  // Each worker owns one buffer: fill it, hash it, send it (sends on a
  // stream reach the peer in call order), wait until the kernel let go.
  const worker = async () => {
    const b = pool.acquire();
    while (queued < TOTAL) {
      queued += BUF;
      randomFillSync(b.bytes);
      sendHash.update(b.bytes);
      const r = await sock.send(b, { mode: 'zc' });
      if (r.bytes !== BUF) throw new Error(`send settled with ${r.bytes} bytes, not ${BUF}`);
      usage[r.zeroCopy]++;
    }
    b.release();
  };
  await Promise.all(Array.from({ length: COUNT }, worker));
  await sock.close(); // graceful: FIN after every send, all settled, fd closed
  const got = JSON.parse((await lines.next()).value);
  pool.close();
  ring.close();
  if (child.exitCode === null) await once(child, 'exit');

  const sent = sendHash.digest('hex');
  const result = {
    how,
    node: process.version,
    bytes: got.bytes,
    sha256: got.sha256,
    match: sent === got.sha256 && got.bytes === TOTAL,
    usage,
    library: libraryPath(),
  };
  // Every send went out zero-copy: the kernel used the pages, or copied
  // them at loopback delivery; 'unknown' where it cannot report it.
  const ok = result.match && usage.used + usage.copied + usage.unknown === TOTAL / BUF;
  console.log(JSON.stringify({ ok, ...result }));
  return ok;
}

module.exports = { run, TOTAL };
