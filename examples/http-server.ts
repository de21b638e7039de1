// SPDX-License-Identifier: MIT
/**
 * Node's http server fed by a uring-zc server: two lines differ from
 * `app.listen(port)`.  Run: npx tsx examples/http-server.ts [port]
 * then: curl http://127.0.0.1:8080/
 */
import http from 'node:http';
import { createServer } from '../ts/index.ts'; // in an application: from 'uring-zc'

const app = http.createServer((req, res) => res.end(`hello from ${req.socket.remoteAddress}\n`));
const server = createServer((socket) => app.emit('connection', socket)).listen(Number(process.argv[2] ?? 8080));
server.on('listening', () => console.log(`http on port ${server.address()?.port} over ${server.backend}`));
