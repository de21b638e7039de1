// SPDX-License-Identifier: MIT
/**
 * The two Node servers of `bench --file`, run as bench children
 * (`node child.mjs file-server node|uring-zc ROOT`); each prints
 * `{"port":N}` once listening and runs until SIGTERM.
 *
 *  node      node:http + fs.createReadStream(path).pipe(res): what a Node
 *            program serves files with (every byte read into a JS Buffer,
 *            then written to the socket)
 *  uring-zc  serve() from ts/serve (sendFile: splice from the page cache)
 */
import fs from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { serve } from '../serve/server.ts';

function nodeServer(root: string): Promise<number> {
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    if (name.includes('..') || name.includes('/')) {
      res.writeHead(400).end();
      return;
    }
    const p = join(root, name);
    fs.stat(p, (err, st) => {
      if (err || !st.isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': st.size });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      fs.createReadStream(p).on('error', () => res.destroy()).pipe(res);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

export async function fileServerMain(kind: string, root: string): Promise<void> {
  let port: number;
  let close: () => Promise<void>;
  if (kind === 'node') {
    port = await nodeServer(root);
    close = async () => process.exit(0);
  } else if (kind === 'uring-zc') {
    const s = await serve({ root, port: 0, keepAliveTimeout: 60_000 });
    port = s.port;
    close = () => s.close();
  } else {
    throw new Error(`file-server: unknown kind ${kind}`);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await close();
  process.exit(0);
}
