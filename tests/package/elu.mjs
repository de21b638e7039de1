// SPDX-License-Identifier: MIT
// loopWait 'ring' from the installed package (its prebuilt zc_poll.node
// against this Node's libuv): the loop sleeps in the ring, a receive in
// flight, for 1 s of a 100 ms interval timer, and
// performance.eventLoopUtilization() must read it idle (the addon counts the
// sleep as libuv's idle time; 1.0 when it does not).  Prints one JSON line.
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Ring, connect, createServer } from 'uring-zc';

const ring = Ring.create({ entries: 64, loopWait: 'ring' });
const server = createServer({ ring });
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const accepted = server.accept();
const client = connect({ ring, host: '127.0.0.1', port: server.address().port });
await once(client, 'connect');
const conn = await accepted;
conn.on('data', () => {}); // a receive in flight on the ring
const e0 = performance.eventLoopUtilization();
await new Promise((resolve) => {
  let ticks = 0;
  const iv = setInterval(() => {
    if (++ticks === 10) {
      clearInterval(iv);
      resolve();
    }
  }, 100);
});
const elu = performance.eventLoopUtilization(e0).utilization;
console.log(JSON.stringify({ node: process.version, uv: process.versions.uv, loopWait: ring.loopWait, sleepCountsIdle: ring.sleepCountsIdle, elu }));
client.destroy();
conn.destroy();
await server.close();
await ring.close();
