// SPDX-License-Identifier: MIT
// Node's own stack over ZcServer / ZcSocket, on both backends: http
// (keep-alive, pipelining, chunked and 64 MiB bodies, uploads echoed) hit by
// Node's http client, fetch and curl; https/TLS with a certificate made by
// openssl at test time, hit by curl -k, openssl s_client, Node's https client
// and tls.connect() over a ZcSocket; Node's http client over ZcSocket
// (createConnection); stream.pipeline file <-> socket.
// Bodies are checked by sha256.  URING_ZC_SCALE scales the big bodies.
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, connect, createServer, type Backend, type ZcServer, type ZcSocket } from '../../ts/index.ts';
import { run, scaled } from './helpers.ts';
import { portOf } from './net-helpers.ts';

const MiB = 1 << 20;
const BIG = scaled(64, 4) * MiB;

/** Deterministic bytes: block i of 64 KiB is sha256(i) repeated, so any shift or loss changes the digest. */
function pattern(total: number): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(65536, total - off);
      const seed = createHash('sha256').update(String(off)).digest();
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i += seed.length) seed.copy(b, i, 0, Math.min(seed.length, n - i));
      off += n;
      this.push(b);
    },
  });
}

async function digestOf(r: AsyncIterable<Uint8Array>): Promise<{ sha: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of r) {
    h.update(c);
    bytes += c.length;
  }
  return { sha: h.digest('hex'), bytes };
}

let patternSha = '';
let tmp = '';
let certs: { key: string; cert: string } | null = null;

beforeAll(async () => {
  patternSha = (await digestOf(pattern(BIG))).sha;
  tmp = mkdtempSync(join(tmpdir(), `uzc-native-http-${process.pid}-`));
  const key = join(tmp, 'key.pem');
  const cert = join(tmp, 'cert.pem');
  const r = await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  expect(r.code, r.stderr).toBe(0);
  certs = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The http handler every test serves. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/echo') {
    // uploads come back as they are (chunked response)
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  if (url.pathname === '/big') {
    const n = Number(url.searchParams.get('n') ?? BIG);
    res.writeHead(200, { 'content-length': String(n) });
    pattern(n).pipe(res);
    return;
  }
  if (url.pathname === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let i = 0;
    const t = setInterval(() => {
      res.write(`chunk ${i}\n`);
      if (++i === 5) {
        clearInterval(t);
        res.end('done\n');
      }
    }, 2);
    return;
  }
  req.resume();
  res.end(`hello ${req.method} ${url.pathname} from ${req.socket.remoteAddress}:${req.socket.remotePort}`);
}

describe.each<Backend>(['uring', 'net'])('http over ZcServer, backend %s', (backend) => {
  let ring: Ring | undefined;
  let zs: ZcServer;
  let app: http.Server;
  let port = 0;
  let base = '';

  beforeAll(async () => {
    if (backend === 'uring') ring = Ring.create();
    app = http.createServer(handler);
    // The drop-in: Node's http server fed by a ZcServer.
    zs = createServer({ ...(ring ? { ring } : {}), backend }, (s) => app.emit('connection', s));
    zs.listen(0, '127.0.0.1');
    await once(zs, 'listening');
    expect(zs.backend).toBe(backend);
    port = portOf(zs);
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    app.closeAllConnections();
    await zs?.close();
    ring?.close();
  });

  it('Node http client with keep-alive: many requests on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get(`${base}/hello${i}`, { agent }, (res) => {
            let t = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (t += d));
            res.on('end', () => resolve(t));
            seen.add(res.socket.localPort ?? 0);
          })
          .on('error', reject);
      });
      expect(body).toMatch(new RegExp(`^hello GET /hello${i} from 127\\.0\\.0\\.1:\\d+$`));
    }
    expect(seen.size).toBe(1); // one connection, kept alive
    agent.destroy();
  });

  it('pipelining: requests written at once, responses in order', async () => {
    const s = net.connect(port, '127.0.0.1');
    await once(s, 'connect');
    const n = 10;
    s.write(Array.from({ length: n }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    let text = '';
    s.setEncoding('utf8');
    await new Promise<void>((resolve) => {
      s.on('data', (d: string) => {
        text += d;
        if ((text.match(/hello GET \/p\d+/g) ?? []).length === n) resolve();
      });
    });
    const order = [...text.matchAll(/hello GET \/p(\d+)/g)].map((m) => Number(m[1]));
    expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
    s.destroy();
  });

  it(`a ${BIG / MiB} MiB body byte-exact: Node http, fetch, curl`, async () => {
    const viaHttp = await new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
      http.get(`${base}/big`, (res) => digestOf(res).then(resolve, reject)).on('error', reject);
    });
    expect(viaHttp).toEqual({ sha: patternSha, bytes: BIG });
    const res = await fetch(`${base}/big`);
    expect(res.status).toBe(200);
    expect(await digestOf(res.body as unknown as AsyncIterable<Uint8Array>)).toEqual({ sha: patternSha, bytes: BIG });
    const out = join(tmp, `curl-${backend}.bin`);
    const c = await run('curl', ['-sS', '--fail', '-o', out, `${base}/big`], { timeoutMs: 120_000 });
    expect(c.code, c.stderr).toBe(0);
    expect(await digestOf(createReadStream(out))).toEqual({ sha: patternSha, bytes: BIG });
  }, 240_000);

  it('chunked responses (curl and fetch)', async () => {
    const c = await run('curl', ['-sS', '--fail', '-D', '-', `${base}/chunked`]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/transfer-encoding: chunked/i);
    expect(c.stdout).toMatch(/chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\ndone\n$/);
    expect(await (await fetch(`${base}/chunked`)).text()).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\ndone\n');
  });

  it(`uploads echoed: ${BIG / MiB} MiB from Node http and from curl, fetch with a small body`, async () => {
    const echoed = await new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
      const req = http.request(`${base}/echo`, { method: 'POST' }, (res) => digestOf(res).then(resolve, reject));
      req.on('error', reject);
      pattern(BIG).pipe(req);
    });
    expect(echoed).toEqual({ sha: patternSha, bytes: BIG });
    const file = join(tmp, `upload-${backend}.bin`);
    await pipeline(pattern(BIG), createWriteStream(file));
    const out = join(tmp, `echo-${backend}.bin`);
    const c = await run('curl', ['-sS', '--fail', '-H', 'Expect:', '--data-binary', `@${file}`, '-o', out, `${base}/echo`], { timeoutMs: 120_000 });
    expect(c.code, c.stderr).toBe(0);
    expect(statSync(out).size).toBe(BIG);
    expect(await digestOf(createReadStream(out))).toEqual({ sha: patternSha, bytes: BIG });
    const r = await fetch(`${base}/echo`, { method: 'POST', body: 'small upload' });
    expect(await r.text()).toBe('small upload');
  }, 240_000);

  it('Node http client over a ZcSocket (agent createConnection)', async () => {
    const sockets: ZcSocket[] = [];
    const agent = new http.Agent({ keepAlive: true });
    (agent as unknown as { createConnection: (o: net.NetConnectOpts, cb: () => void) => ZcSocket }).createConnection = (o) => {
      const s = connect({ ...(ring ? { ring } : {}), backend, port: Number((o as net.TcpNetConnectOpts).port), host: '127.0.0.1' });
      sockets.push(s);
      return s;
    };
    const got = await new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
      http.get(`${base}/big?n=${8 * MiB}`, { agent }, (res) => digestOf(res).then(resolve, reject)).on('error', reject);
    });
    expect(got.bytes).toBe(8 * MiB);
    expect(got.sha).toBe((await digestOf(pattern(8 * MiB))).sha);
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${base}/echo`, { method: 'POST', agent }, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (t += d));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end('over a ZcSocket');
    });
    expect(echoed).toBe('over a ZcSocket');
    expect(sockets.length).toBe(1);
    expect(sockets[0]?.backend).toBe(backend);
    agent.destroy();
  });

  it('https: TLS over ZcSockets, curl -k, openssl s_client, Node https, tls.connect over a ZcSocket', async () => {
    const tlsApp = https.createServer({ key: certs?.key, cert: certs?.cert }, handler);
    const ts = createServer({ ...(ring ? { ring } : {}), backend }, (s) => tlsApp.emit('connection', s));
    ts.listen(0, '127.0.0.1');
    await once(ts, 'listening');
    const url = `https://127.0.0.1:${portOf(ts)}`;
    try {
      const c = await run('curl', ['-sS', '-k', '--fail', `${url}/hello`]);
      expect(c.code, c.stderr).toBe(0);
      // Node's TLS over a stream that is not a net.Socket (a JSStreamSocket
      // underneath) has no peer name: remoteAddress is undefined there.
      expect(c.stdout).toMatch(/^hello GET \/hello from /);
      const out = join(tmp, `tls-${backend}.bin`);
      const big = await run('curl', ['-sS', '-k', '--fail', '-o', out, `${url}/big?n=${8 * MiB}`], { timeoutMs: 120_000 });
      expect(big.code, big.stderr).toBe(0);
      expect((await digestOf(createReadStream(out))).sha).toBe((await digestOf(pattern(8 * MiB))).sha);
      const viaNode = await new Promise<string>((resolve, reject) => {
        https
          .get(`${url}/node`, { rejectUnauthorized: false }, (res) => {
            let t = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (t += d));
            res.on('end', () => resolve(t));
          })
          .on('error', reject);
      });
      expect(viaNode).toMatch(/^hello GET \/node from /);
      const echoed = await new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
        const req = https.request(`${url}/echo`, { method: 'POST', rejectUnauthorized: false }, (res) => digestOf(res).then(resolve, reject));
        req.on('error', reject);
        pattern(8 * MiB).pipe(req);
      });
      expect(echoed.bytes).toBe(8 * MiB);
      // a TLS client nobody here wrote
      const req = 'GET /ossl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';
      const os = await run('sh', ['-c', `printf '${req.replace(/\r\n/g, '\\r\\n')}' | openssl s_client -connect 127.0.0.1:${portOf(ts)} -quiet`]);
      expect(os.code, os.stderr).toBe(0);
      expect(os.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello GET \/ossl from /);
      // tls.TLSSocket as the client, over a ZcSocket
      const zc = connect({ ...(ring ? { ring } : {}), backend, port: portOf(ts), host: '127.0.0.1' });
      const t = tls.connect({ socket: zc, servername: 'localhost', ca: certs?.cert });
      await once(t, 'secureConnect');
      expect(t.authorized).toBe(true);
      const parts: Buffer[] = [];
      t.on('data', (d: Buffer) => parts.push(d));
      t.end('GET /tls-client HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await once(t, 'end');
      expect(Buffer.concat(parts).toString()).toMatch(/\r\n\r\nhello GET \/tls-client from /);
      await once(zc, 'close');
    } finally {
      tlsApp.closeAllConnections();
      await ts.close();
    }
  }, 120_000);

  it('stream.pipeline: a file into a socket and a socket into a file, byte-exact', async () => {
    const src = join(tmp, `src-${backend}.bin`);
    await pipeline(pattern(BIG), createWriteStream(src));
    const dst = join(tmp, `dst-${backend}.bin`);
    // file -> ZcSocket (client) -> ZcServer connection -> file
    const sink = createServer({ ...(ring ? { ring } : {}), backend });
    sink.listen(0, '127.0.0.1');
    await once(sink, 'listening');
    const received = sink.accept().then((s) => pipeline(s, createWriteStream(dst)));
    const c = connect({ ...(ring ? { ring } : {}), backend, port: portOf(sink), host: '127.0.0.1' });
    await pipeline(createReadStream(src), c);
    await received;
    expect(await digestOf(createReadStream(dst))).toEqual({ sha: patternSha, bytes: BIG });
    await sink.close();
    writeFileSync(dst, '');
  }, 120_000);
});
