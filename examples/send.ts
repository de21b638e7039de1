// SPDX-License-Identifier: MIT
/**
 * Zero-copy TCP send from a registered buffer, with a Node `net` receiver in
 * the same process.  Run: npx tsx examples/send.ts [MiB]
 */
import net from 'node:net';
import { once } from 'node:events';
import { AUTO_ZC_THRESHOLD, connect, Ring } from '../ts/index.ts';

const mib = Number(process.argv[2] ?? 64);

// Receiver: counts bytes.
let received = 0;
const server = net.createServer((s) => s.on('data', (d) => (received += d.length)));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const { port } = server.address() as net.AddressInfo;

const ring = Ring.create(); // io_uring; completions arrive on Node's own event loop
const pool = ring.createPool({ count: 16, size: 64 * 1024 }); // registered (pinned) once
const sock = connect({ ring, host: '127.0.0.1', port });
await once(sock, 'connect');

const buffers = Array.from({ length: pool.count }, () => pool.acquire());
for (const b of buffers) b.bytes.fill(0x61); // fill while they are ours

const total = mib * 1024 * 1024;
let sent = 0;
const usage = { used: 0, copied: 0, unknown: 0 };
const t0 = process.hrtime.bigint();
// Keep every buffer in flight; each completion means the kernel let go of it.
await Promise.all(
  buffers.map(async (b) => {
    while (sent < total) {
      sent += b.size;
      const r = await sock.send(b, { mode: 'zc' }); // b.bytes would throw until this settles
      usage[r.zeroCopy]++;
    }
  }),
);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
await sock.close(); // graceful: FIN after everything, every send settled, fd closed
while (received < sent) await new Promise((r) => setTimeout(r, 5));

console.log(
  `sent ${sent} bytes in ${secs.toFixed(3)} s (${(sent / secs / 1e6).toFixed(0)} MB/s),` +
    ` received ${received}; zero-copy used=${usage.used} copied=${usage.copied} unknown=${usage.unknown};` +
    ` kernel single-CQE mode: ${ring.unifiedNative}; auto threshold ${AUTO_ZC_THRESHOLD} bytes`,
);
for (const b of buffers) b.release();
pool.close();
ring.close();
server.close();
