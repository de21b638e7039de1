// SPDX-License-Identifier: MIT
/**
 * The node:net echo server, on uring-zc: only the import differs.
 * Run: npx tsx examples/echo-server.ts [port]   then: echo hi | nc -q1 127.0.0.1 7000
 */
import * as net from '../ts/index.ts'; // in an application: from 'uring-zc'

const server = net.createServer((socket) => socket.pipe(socket));
server.listen(Number(process.argv[2] ?? 7000), () => {
  console.log(`echo on port ${server.address()?.port} over ${server.backend}`);
});
