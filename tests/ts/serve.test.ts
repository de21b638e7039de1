// SPDX-License-Identifier: MIT
/**
 * `serve()` and `uring-zc serve` against curl (a client nobody here wrote)
 * and raw sockets (for what curl normalises or refuses to send): bodies
 * byte-exact by sha256 (whole files, ranges, a sparse file over 4 GiB),
 * HEAD, keep-alive and pipelining, 304s, Content-Type, 404/405/416, and
 * every refusal of the security list with its status.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type FileServer } from '../../ts/serve/server.ts';
import { IN_VM, ROOT, fillPattern, run } from './helpers.ts';

const sha = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

const dir = mkdtempSync(join(tmpdir(), 'zc-serve-'));
const root = join(dir, 'www');
const outside = join(dir, 'outside');
mkdirSync(root);
mkdirSync(join(root, 'sub'));
mkdirSync(outside);
const DATA = 3 * 1024 * 1024 + 77;
const data = new Uint8Array(DATA);
fillPattern(data, 0);
writeFileSync(join(root, 'data.bin'), data);
writeFileSync(join(root, 'hello.txt'), 'hello\n');
writeFileSync(join(root, 'sub', 'page.html'), '<p>hi</p>\n');
writeFileSync(join(root, 'sub', 'index.html'), '<p>index</p>\n');
writeFileSync(join(root, 'empty.txt'), '');
writeFileSync(join(root, '.secret'), 'secret\n');
writeFileSync(join(root, 'sp ace%.txt'), 'odd name\n');
writeFileSync(join(outside, 'passwd'), 'root:x:0:0\n');
symlinkSync(join(outside, 'passwd'), join(root, 'link-out'));
symlinkSync(outside, join(root, 'dir-out'));
symlinkSync('hello.txt', join(root, 'link-in'));
symlinkSync('../www/sub', join(root, 'sub-again'));

// A sparse file over 4 GiB: zeros except a pattern block straddling 4 GiB and one at the end.
const BLOCK = 1 << 16;
const BIG = 4 * 1024 ** 3 + 3 * BLOCK + 12345;
const at4g = new Uint8Array(2 * BLOCK);
fillPattern(at4g, 7);
const tail = new Uint8Array(BLOCK);
fillPattern(tail, 9);
{
  const fd = openSync(join(root, 'big.bin'), 'w');
  writeSync(fd, at4g, 0, at4g.length, 4 * 1024 ** 3 - BLOCK);
  writeSync(fd, tail, 0, tail.length, BIG - BLOCK);
  closeSync(fd);
}
/** bytes [a, b) of the sparse file */
function bigSlice(a: number, b: number): Uint8Array {
  const out = new Uint8Array(b - a);
  const put = (src: Uint8Array, at: number): void => {
    const s = Math.max(a, at);
    const e = Math.min(b, at + src.length);
    if (s < e) out.set(src.subarray(s - at, e - at), s - a);
  };
  put(at4g, 4 * 1024 ** 3 - BLOCK);
  put(tail, BIG - BLOCK);
  return out;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** curl with the given args; stdout as a Buffer, plus -w fields. */
async function curl(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: Buffer; err: string }> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sS', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out: Buffer.concat(out), err });
    });
  });
}

/** status code and body of a GET by curl */
async function get(url: string, extra: string[] = []): Promise<{ status: number; body: Buffer; headers: string }> {
  const hfile = join(dir, `h-${Math.random().toString(36).slice(2)}`);
  const r = await curl(['-D', hfile, '-o', '-', ...extra, url]);
  expect(r.code, r.err).toBe(0);
  const { readFileSync } = await import('node:fs');
  const headers = readFileSync(hfile, 'latin1');
  rmSync(hfile);
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(headers)?.[1]);
  return { status, body: r.out, headers };
}

/** Does `text` hold n complete responses (heads with Content-Length bodies)? */
function responses(text: string, n: number): boolean {
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const e = text.indexOf('\r\n\r\n', pos);
    if (e < 0) return false;
    const len = Number(/\r\nContent-Length: (\d+)\r\n/i.exec(text.slice(pos, e + 2))?.[1] ?? 0);
    pos = e + 4 + len;
    if (pos > text.length) return false;
  }
  return true;
}

/**
 * Raw bytes to the server; what it sends back until it closes, `count`
 * complete responses arrived (default 1), or timeoutMs.
 */
function raw(port: number, request: Buffer | string, timeoutMs = 5000, count = 1): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (responses(Buffer.concat(chunks).toString('latin1'), count)) {
        clearTimeout(t);
        s.destroy();
        resolve(Buffer.concat(chunks).toString('latin1'));
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(request);
  });
}

const statusOf = (resp: string): number => Number(/^HTTP\/1\.1 (\d+)/.exec(resp)?.[1]);

// The node:net backend does not depend on the kernel: the VM suites (TCG, ~15x slower) skip it.
describe.each(IN_VM ? (['uring'] as const) : (['uring', 'net'] as const))('serve on the %s backend', (backend) => {
  let srv: FileServer;
  let base: string;

  beforeAll(async () => {
    srv = await serve({ root, port: 0, backend });
    base = srv.url;
    expect(srv.backend).toBe(backend);
  });

  afterAll(() => srv.close());

  it('GET: whole files byte-exact, with validators and Content-Type', async () => {
    const r = await get(`${base}data.bin`);
    expect(r.status).toBe(200);
    expect(sha(r.body)).toBe(sha(data));
    expect(r.headers).toMatch(/^Content-Type: application\/octet-stream\r$/m);
    expect(r.headers).toMatch(new RegExp(`^Content-Length: ${DATA}\\r$`, 'm'));
    expect(r.headers).toMatch(/^ETag: "[0-9a-f]+-[0-9a-f]+"\r$/m);
    expect(r.headers).toMatch(/^Last-Modified: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r$/m);
    expect(r.headers).toMatch(/^Accept-Ranges: bytes\r$/m);
    const h = await get(`${base}sub/page.html`);
    expect(h.body.toString()).toBe('<p>hi</p>\n');
    expect(h.headers).toMatch(/^Content-Type: text\/html; charset=utf-8\r$/m);
    const t = await get(`${base}hello.txt`);
    expect(t.headers).toMatch(/^Content-Type: text\/plain; charset=utf-8\r$/m);
    const e = await get(`${base}empty.txt`);
    expect(e.status).toBe(200);
    expect(e.body.length).toBe(0);
    const odd = await get(`${base}sp%20ace%25.txt`);
    expect(odd.body.toString()).toBe('odd name\n');
    const inside = await get(`${base}link-in`);
    expect(inside.status).toBe(200); // a symlink inside the root is fine
    expect(inside.body.toString()).toBe('hello\n');
  });

  it('HEAD: the headers of GET, no body', async () => {
    const r = await get(`${base}data.bin`, ['-I']);
    expect(r.status).toBe(200);
    expect(r.headers).toMatch(new RegExp(`^Content-Length: ${DATA}\\r$`, 'm'));
    expect(r.body.toString('latin1')).toBe(r.headers); // -I prints the headers only
  });

  it('Range: 206 byte-exact for a, a-b, -n; 416 past the end; several ranges get 200', async () => {
    const a = await get(`${base}data.bin`, ['-r', '100-199']);
    expect(a.status).toBe(206);
    expect(sha(a.body)).toBe(sha(data.subarray(100, 200)));
    expect(a.headers).toMatch(new RegExp(`^Content-Range: bytes 100-199/${DATA}\\r$`, 'm'));
    const b = await get(`${base}data.bin`, ['-r', '-5000']);
    expect(sha(b.body)).toBe(sha(data.subarray(DATA - 5000)));
    const c = await get(`${base}data.bin`, ['-r', '1048575-']);
    expect(sha(c.body)).toBe(sha(data.subarray(1048575)));
    const d = await get(`${base}data.bin`, ['-r', `${DATA - 1}-${DATA + 100}`]);
    expect(d.status).toBe(206);
    expect(d.body.length).toBe(1);
    const e = await get(`${base}data.bin`, ['-r', `${DATA}-`]);
    expect(e.status).toBe(416);
    expect(e.headers).toMatch(new RegExp(`^Content-Range: bytes \\*/${DATA}\\r$`, 'm'));
    const f = await get(`${base}data.bin`, ['-r', '0-1,5-6']);
    expect(f.status).toBe(200);
    expect(f.body.length).toBe(DATA);
  });

  it('304 on If-None-Match and If-Modified-Since; If-Range guards ranges', async () => {
    const first = await get(`${base}hello.txt`);
    const etag = /^ETag: (.*)\r$/m.exec(first.headers)![1]!;
    const lm = /^Last-Modified: (.*)\r$/m.exec(first.headers)![1]!;
    const a = await get(`${base}hello.txt`, ['-H', `If-None-Match: "x", ${etag}`]);
    expect(a.status).toBe(304);
    expect(a.body.length).toBe(0);
    expect(a.headers).toContain(`ETag: ${etag}`);
    expect((await get(`${base}hello.txt`, ['-H', 'If-None-Match: "other"'])).status).toBe(200);
    expect((await get(`${base}hello.txt`, ['-H', `If-Modified-Since: ${lm}`])).status).toBe(304);
    expect((await get(`${base}hello.txt`, ['-H', 'If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT'])).status).toBe(200);
    const ok = await get(`${base}data.bin`, ['-r', '0-9', '-H', `If-Range: ${(/^ETag: (.*)\r$/m.exec((await get(`${base}data.bin`, ['-I'])).headers))![1]}`]);
    expect(ok.status).toBe(206);
    const stale = await get(`${base}data.bin`, ['-r', '0-9', '-H', 'If-Range: "stale"']);
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(DATA);
  });

  it('404 for missing files, directories (no index) and dotfiles; 405 for other methods', async () => {
    expect((await get(`${base}missing`)).status).toBe(404);
    expect((await get(`${base}sub/`)).status).toBe(404);
    expect((await get(`${base}sub`)).status).toBe(404);
    expect((await get(base)).status).toBe(404);
    expect((await get(`${base}.secret`)).status).toBe(404);
    expect((await get(`${base}hello.txt/`)).status).toBe(404);
    const del = await get(`${base}hello.txt`, ['-X', 'DELETE']);
    expect(del.status).toBe(405);
    expect(del.headers).toMatch(/^Allow: GET, HEAD\r$/m);
  });

  it('keep-alive: many requests on one connection, pipelined ones answered in order', async () => {
    const v = await curl(['-v', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', `${base}hello.txt`, `${base}data.bin`, `${base}sub/page.html`]);
    expect(v.code, v.err).toBe(0);
    expect(v.err).toMatch(/Re-using existing connection|Reusing existing/);
    const reqs = ['hello.txt', 'missing', 'sub/page.html', 'hello.txt']
      .map((p) => `GET /${p} HTTP/1.1\r\nHost: x\r\n\r\n`)
      .join('');
    const resp = await raw(srv.port, `${reqs}GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 5000, 99);
    const statuses = [...resp.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 404, 200, 200, 200]);
    expect(resp.indexOf('<p>hi</p>')).toBeGreaterThan(resp.indexOf('404 Not Found'));
    expect(resp).toMatch(/Connection: close\r\n\r\nhello\n$/);
  });

  it('refuses traversal, encoded slashes, NUL and symlinks out of the root (curl --path-as-is)', async () => {
    const code = async (path: string): Promise<number> => (await get(`${base}${path}`, ['--path-as-is'])).status;
    expect(await code('../outside/passwd')).toBe(400);
    expect(await code('sub/../../outside/passwd')).toBe(400);
    expect(await code('sub/../hello.txt')).toBe(400);
    expect(await code('%2e%2e/outside/passwd')).toBe(400);
    expect(await code('.%2E/outside/passwd')).toBe(400);
    expect(await code('sub%2f..%2f..%2foutside%2fpasswd')).toBe(400);
    expect(await code('sub%5c..%5chello.txt')).toBe(400);
    expect(await code('hello.txt%00.html')).toBe(400);
    expect(await code('%zz')).toBe(400);
    expect(await code('%c3%28')).toBe(400); // not UTF-8
    expect(await code('link-out')).toBe(403);
    expect(await code('dir-out/passwd')).toBe(403);
    expect(await code('sub-again/page.html')).toBe(200); // a symlink that stays inside
    expect(await code('.git/config')).toBe(404);
  });

  it('refuses raw-socket abuse with the right status', async () => {
    const p = srv.port;
    expect(statusOf(await raw(p, 'GET /hello\0.txt HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(p, 'GET /../outside/passwd HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(p, 'GET \\..\\outside HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(p, `GET /${'a'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`))).toBe(414);
    expect(statusOf(await raw(p, `GET /${'a/'.repeat(4500)} HTTP/1.1\r\nHost: x\r\n\r\n`))).toBe(414);
    expect(statusOf(await raw(p, `GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: x\r\n\r\n`))).toBe(414); // segment > 255
    const flood = Array.from({ length: 200 }, (_, i) => `X-${i}: y\r\n`).join('');
    expect(statusOf(await raw(p, `GET /hello.txt HTTP/1.1\r\nHost: x\r\n${flood}\r\n`))).toBe(431);
    expect(statusOf(await raw(p, `GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Big: ${'z'.repeat(20000)}\r\n\r\n`))).toBe(431);
    expect(statusOf(await raw(p, 'GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n'))).toBe(505);
    expect(statusOf(await raw(p, 'GET /hello.txt HTTP/1.1\r\n\r\n'))).toBe(400); // no Host
    expect(statusOf(await raw(p, 'G(T /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(p, 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(p, 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(p, 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'))).toBe(413);
    expect(statusOf(await raw(p, 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'))).toBe(501);
    expect(statusOf(await raw(p, 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'))).toBe(400);
    // HTTP/1.0 without keep-alive: the server closes after the answer
    const r10 = await raw(p, 'GET /hello.txt HTTP/1.0\r\n\r\n', 5000, 99); // until it closes
    expect(statusOf(r10)).toBe(200);
    expect(r10).toMatch(/Connection: close\r\n\r\nhello\n$/);
  });

  it('the > 4 GiB sparse file: ranges across 4 GiB and at the end byte-exact', async () => {
    const a = 4 * 1024 ** 3 - 5000;
    const r = await get(`${base}big.bin`, ['-r', `${a}-${a + 2 * BLOCK}`]);
    expect(r.status).toBe(206);
    expect(r.headers).toMatch(new RegExp(`^Content-Range: bytes ${a}-${a + 2 * BLOCK}/${BIG}\\r$`, 'm'));
    expect(sha(r.body)).toBe(sha(bigSlice(a, a + 2 * BLOCK + 1)));
    const t = await get(`${base}big.bin`, ['-r', '-70000']);
    expect(sha(t.body)).toBe(sha(bigSlice(BIG - 70000, BIG)));
    const h = await get(`${base}big.bin`, ['-I']);
    expect(h.headers).toMatch(new RegExp(`^Content-Length: ${BIG}\\r$`, 'm'));
  });
});

/*
 * The whole sparse file (over 4 GiB) through curl into sha256sum: 25 s on a
 * quiet host, over a minute on a loaded one, far more under TCG: with
 * URING_ZC_FULL=1 (make test-full) on the host.  The ranges across 4 GiB and
 * at its end above run everywhere.
 */
const FULL = process.env['URING_ZC_FULL'] === '1';
describe.skipIf(IN_VM || !FULL)(`serve: a file over 4 GiB whole${FULL && !IN_VM ? '' : ' (skipped: only with URING_ZC_FULL=1 on the host)'}`, () => {
  it('GET big.bin: sha256 of every byte', async () => {
    const srv = await serve({ root, port: 0, backend: 'uring' });
    try {
      const expected = createHash('sha256');
      const zeros = new Uint8Array(1 << 22);
      let pos = 0;
      const feed = (upTo: number): void => {
        while (pos < upTo) {
          const n = Math.min(zeros.length, upTo - pos);
          expected.update(zeros.subarray(0, n));
          pos += n;
        }
      };
      feed(4 * 1024 ** 3 - BLOCK);
      expected.update(at4g);
      pos += at4g.length;
      feed(BIG - BLOCK);
      expected.update(tail);
      const r = await run('sh', ['-c', `curl -sS ${srv.url}big.bin | sha256sum`], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split(' ')[0]).toBe(expected.digest('hex'));
    } finally {
      await srv.close();
    }
  }, 300_000);
});

describe('serve: a file that shrinks while being sent', () => {
  it('closes that connection (short body, never a hang) and keeps serving', async () => {
    const name = 'shrinks.bin';
    const big = new Uint8Array(64 << 20);
    fillPattern(big, 3);
    writeFileSync(join(root, name), big);
    const srv = await serve({ root, port: 0 });
    try {
      const s = net.connect(srv.port, '127.0.0.1');
      s.pause(); // the body stalls in the socket buffers
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(`GET /${name} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 200));
      const { truncateSync } = await import('node:fs');
      truncateSync(join(root, name), 1 << 20);
      let got = 0;
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.on('data', (d: Buffer) => (got += d.length));
      s.on('error', () => {});
      s.resume();
      await closed;
      expect(got).toBeLessThan((64 << 20) + 400); // head + a short body, then the server closed
      expect(got).toBeGreaterThan(1 << 20);
      expect((await get(`${srv.url}hello.txt`)).status).toBe(200);
    } finally {
      await srv.close();
      rmSync(join(root, name), { force: true });
    }
  });
});

describe('serve options', () => {
  it('index names a file for directories; listings are never made', async () => {
    const srv = await serve({ root, port: 0, index: 'index.html' });
    try {
      const r = await get(`${srv.url}sub/`);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('<p>index</p>\n');
      expect(r.headers).toMatch(/^Content-Type: text\/html; charset=utf-8\r$/m);
      expect((await get(srv.url)).status).toBe(404); // the root has no index.html
    } finally {
      await srv.close();
    }
  });

  it('a request head that does not complete in headersTimeout gets 408', async () => {
    const srv = await serve({ root, port: 0, headersTimeout: 200 });
    try {
      expect(statusOf(await raw(srv.port, 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n', 5000))).toBe(408);
    } finally {
      await srv.close();
    }
  });

  it('bad options name the field', async () => {
    await expect(serve({ root, port: 70000 })).rejects.toThrow(/ServeOptions.port/);
    await expect(serve({ root, index: '../x' })).rejects.toThrow(/ServeOptions.index/);
    await expect(serve({ root: join(dir, 'nope') })).rejects.toThrow(/ENOENT/);
  });
});

describe('uring-zc serve (CLI)', () => {
  it('serves a directory until SIGTERM', async () => {
    const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'ts', 'cli', 'main.ts'), 'serve', root, '--port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      c.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /at (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      c.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const r = await get(`${url}data.bin`);
    expect(sha(r.body)).toBe(sha(data));
    const code = await new Promise<number | null>((resolve) => {
      c.once('exit', (x) => resolve(x));
      c.kill('SIGTERM');
    });
    expect(code).toBe(0);
  });
});
