// SPDX-License-Identifier: MIT
/**
 * `serve({ root })`: a static HTTP/1.1 file server on {@link ZcServer}
 * whose bodies go out with `socket.sendFile()`: no file byte passes through
 * JavaScript on the io_uring backend (splice from the page cache).
 *
 * GET and HEAD; keep-alive and pipelining (responses in request order, at
 * most {@link MAX_PIPELINE} in flight per connection); single byte ranges
 * (206, 416; several ranges get the whole file); 304 on If-None-Match /
 * If-Modified-Since; If-Range; Content-Type by extension; 404 for what is
 * not a regular file under the root (directories too, unless `index`
 * names a file to serve for them; no listings), 405 for other methods.
 * Refusals and their statuses: request.ts (the request head) and paths.ts
 * (the path).  Idle keep-alive connections close after
 * `keepAliveTimeout`; a request head not complete within
 * `headersTimeout` gets 408 (slow-header floods).
 */
import { closeSync } from 'node:fs';
import { z } from 'zod';
import { SYS } from '../ffi/abi.gen.ts';
import { ZcConfigError } from '../errors.ts';
import type { Ring } from '../ring.ts';
import type { SendFileMethod } from '../config.ts';
import type { BackendPreference } from '../socket/backend.ts';
import { createServer, type ZcServer } from '../socket/server.ts';
import type { ZcSocket } from '../socket/socket.ts';
import { Root, resolveTarget } from './paths.ts';
import { parseRequest, type RequestHead } from './request.ts';
import { contentType, errorResponse, etagOf, evalRange, head, ifRangeHolds, noneMatchHits, parseHttpDate } from './response.ts';

/** Responses in flight per connection before its reading pauses. */
export const MAX_PIPELINE = 16;

const OptionsSchema = z
  .object({
    root: z.string().min(1),
    port: z.number().int().min(0).max(65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    index: z
      .string()
      .min(1)
      .refine((s) => !s.includes('/') && s !== '.' && s !== '..')
      .nullable()
      .default(null),
    dotfiles: z.boolean().default(false),
    method: z.enum(['auto', 'splice', 'read', 'read-copy', 'direct']).default('auto'),
    keepAliveTimeout: z.number().int().min(0).max(2 ** 31 - 1).default(5000),
    headersTimeout: z.number().int().min(1).max(2 ** 31 - 1).default(30000),
    ring: z.custom<Ring>((v) => typeof v === 'object' && v !== null).optional(),
    backend: z.enum(['auto', 'uring', 'net']).optional(),
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal).optional(),
  })
  .strict();

const ALLOWED: Record<string, string> = {
  root: 'the directory to serve',
  port: 'an integer in 0..65535 (0: any free port)',
  host: 'an address or host name to listen on',
  index: 'a file name served for a directory, or null (directories are 404)',
  dotfiles: 'a boolean (serve names starting with ".")',
  method: '"auto", "splice", "read", "read-copy" or "direct" (see SendFileOptions)',
  keepAliveTimeout: 'ms an idle keep-alive connection stays open (0: no limit)',
  headersTimeout: 'ms a request head may take to arrive',
  ring: 'a Ring',
  backend: '"auto", "uring" or "net"',
  signal: 'an AbortSignal (closes the server)',
};

export interface ServeOptions {
  /** the directory to serve */
  root: string;
  /** default 8080; 0: any free port */
  port?: number;
  /** default 127.0.0.1 (say '0.0.0.0' or '::' to serve other machines) */
  host?: string;
  /** file name served for a directory request (e.g. 'index.html'); default null: directories are 404 */
  index?: string | null;
  /** serve names starting with '.' (default false: 404) */
  dotfiles?: boolean;
  /** how sendFile moves the bytes (default 'auto') */
  method?: SendFileMethod;
  /** ms an idle keep-alive connection stays open (default 5000; 0: no limit) */
  keepAliveTimeout?: number;
  /** ms a request head may take (default 30000) */
  headersTimeout?: number;
  ring?: Ring;
  backend?: BackendPreference;
  /** aborting closes the server */
  signal?: AbortSignal;
}

/** Counters of a {@link FileServer}. */
export interface ServeStats {
  connections: number;
  requests: number;
  /** response body bytes handed to sockets */
  bodyBytes: number;
  /** responses by status */
  statuses: Record<number, number>;
}

type Options = z.output<typeof OptionsSchema>;

function parseOptions(input: ServeOptions): Options {
  const r = OptionsSchema.safeParse(input);
  if (r.success) return r.data;
  throw new ZcConfigError(
    'ServeOptions',
    r.error.issues.map((i) => {
      const field = i.path.map(String).join('.') || '(root)';
      const value = field === '(root)' ? input : (input as unknown as Record<string, unknown>)[field];
      return { field, value, allowed: ALLOWED[field] ?? i.message };
    }),
  );
}

/** One connection: buffered request bytes, responses in flight. */
class Conn {
  readonly sock: ZcSocket;
  readonly srv: FileServer;
  buf: Buffer | null = null;
  inflight = 0;
  /** no more requests: close once the responses in flight are out */
  closing = false;
  paused = false;
  lastActive = Date.now();
  /** when the pending partial head began arriving, 0 if none */
  headSince = 0;

  constructor(srv: FileServer, sock: ZcSocket) {
    this.srv = srv;
    this.sock = sock;
    sock.on('data', (d: Buffer) => this.#onData(d));
    sock.on('end', () => {
      this.closing = true;
      this.#maybeEnd();
    });
    sock.on('error', () => {});
    sock.on('close', () => srv.forget(this));
  }

  #onData(d: Buffer): void {
    this.lastActive = Date.now();
    if (this.closing) return; // answered with Connection: close already
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
    this.pump();
  }

  /** Answer every complete request buffered, up to MAX_PIPELINE in flight. */
  pump(): void {
    while (!this.closing && this.buf !== null && this.inflight < MAX_PIPELINE) {
      const r = parseRequest(this.buf);
      if (r.kind === 'more') {
        if (this.headSince === 0) this.headSince = Date.now();
        break;
      }
      this.headSince = 0;
      if (r.kind === 'error') {
        this.buf = null;
        this.refuse(r.status, r.status === 405 ? [['Allow', 'GET, HEAD']] : []);
        return;
      }
      this.buf = r.consumed >= this.buf.length ? null : this.buf.subarray(r.consumed);
      this.srv.respond(this, r);
    }
    const full = this.inflight >= MAX_PIPELINE;
    if (full !== this.paused) {
      this.paused = full;
      if (full) this.sock.pause();
      else this.sock.resume();
    }
    this.#maybeEnd();
  }

  /** A refusal that ends the connection (its request bytes cannot be trusted). */
  refuse(status: number, extra: [string, string][] = []): void {
    this.srv.count(status);
    this.closing = true;
    this.write(errorResponse(status, false, false, extra));
    this.#maybeEnd();
  }

  write(b: Buffer, more = false): void {
    if (this.sock.destroyed || this.sock.writableEnded) return;
    this.sock.send(b, { mode: 'copy', more }).catch(() => this.sock.destroy());
  }

  /** A response body in flight; pumps again when it settled. */
  track(p: Promise<unknown>): void {
    this.inflight++;
    p.then(
      () => {
        this.inflight--;
        this.lastActive = Date.now();
        this.pump();
      },
      () => {
        this.inflight--;
        this.sock.destroy(); // the peer got part of a body: the stream is unusable
      },
    );
  }

  #maybeEnd(): void {
    if (this.closing && this.inflight === 0 && !this.sock.writableEnded && !this.sock.destroyed) this.sock.end();
  }
}

export class FileServer {
  readonly server: ZcServer;
  readonly root: string;
  readonly stats: ServeStats = { connections: 0, requests: 0, bodyBytes: 0, statuses: {} };
  readonly #o: Options;
  readonly #root: Root;
  readonly #conns = new Set<Conn>();
  #timer: NodeJS.Timeout | null = null;

  /** Use {@link serve}. */
  constructor(o: Options) {
    this.#o = o;
    this.server = createServer({
      ...(o.ring ? { ring: o.ring } : {}),
      ...(o.backend ? { backend: o.backend } : {}),
      allowHalfOpen: true,
      noDelay: true,
    });
    const ring = this.server.ring;
    const blocking = ring
      ? (fd: number): void => {
          const c = ring.libc;
          const fl = c.fcntl(fd, SYS.F_GETFL, 0);
          if (fl >= 0) c.fcntl(fd, SYS.F_SETFL, fl & ~SYS.O_NONBLOCK);
        }
      : null; // node:net backend: the file is read by fs.read, O_NONBLOCK does not matter
    this.#root = new Root(o.root, blocking);
    this.root = this.#root.real;
    this.server.on('connection', (s: ZcSocket) => {
      this.stats.connections++;
      this.#conns.add(new Conn(this, s));
    });
  }

  /** 'uring' or 'net' */
  get backend(): string {
    return this.server.backend;
  }

  get port(): number {
    return this.server.address()?.port ?? 0;
  }

  get url(): string {
    const a = this.server.address();
    const host = a?.family === 'IPv6' ? `[${a.address}]` : (a?.address ?? this.#o.host);
    return `http://${host}:${this.port}/`;
  }

  /** @internal */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.#o.port, this.#o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.#timer = setInterval(() => this.#sweep(), 1000);
    this.#timer.unref();
  }

  /** Stop accepting, close idle connections, wait for the rest. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const closed = this.server.close();
    for (const c of this.#conns) {
      c.closing = true;
      if (c.inflight === 0) c.sock.end();
    }
    await closed;
  }

  /** @internal */
  forget(c: Conn): void {
    this.#conns.delete(c);
  }

  /** @internal */
  count(status: number): void {
    this.stats.requests++;
    this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
  }

  /** Idle keep-alive connections and slow request heads. */
  #sweep(): void {
    const now = Date.now();
    const ka = this.#o.keepAliveTimeout;
    for (const c of this.#conns) {
      if (c.headSince !== 0 && now - c.headSince > this.#o.headersTimeout) {
        c.headSince = 0;
        c.buf = null;
        c.refuse(408);
      } else if (ka > 0 && c.inflight === 0 && c.buf === null && now - c.lastActive > ka) {
        c.sock.destroy();
      }
    }
  }

  /** @internal Answer one request (in order: everything it writes is queued now). */
  respond(c: Conn, r: RequestHead): void {
    const h = r.headers;
    const conn = h.get('connection')?.toLowerCase() ?? '';
    const keepAlive = r.minor === 1 ? !/\bclose\b/.test(conn) : /\bkeep-alive\b/.test(conn);
    if (!keepAlive) c.closing = true;
    const isHead = r.method === 'HEAD';
    const reply = (status: number, extra: [string, string][] = []): void => {
      this.count(status);
      c.write(errorResponse(status, keepAlive, isHead, extra));
    };
    if (r.method !== 'GET' && !isHead) {
      reply(405, [['Allow', 'GET, HEAD']]);
      return;
    }
    const t = resolveTarget(r.target, this.#o.dotfiles);
    if (!t.ok) {
      reply(t.status);
      return;
    }
    // 'name/' must be a directory: the trailing slash makes open() say ENOTDIR
    const f = this.#root.open(t.dir && t.rel !== '' ? `${t.rel}/` : t.rel, this.#o.index);
    if (!f.ok) {
      reply(f.status);
      return;
    }
    const { fd, stat } = f;
    try {
      const size = stat.size;
      const mtimeSec = Number(stat.mtimeMs / 1000n);
      const etag = etagOf(size, stat.mtimeMs);
      const lastModified = new Date(mtimeSec * 1000).toUTCString();
      const name = f.viaIndex ? (this.#o.index ?? '') : t.rel;
      const validators: [string, string][] = [
        ['ETag', etag],
        ['Last-Modified', lastModified],
      ];
      const inm = h.get('if-none-match');
      const ims = h.get('if-modified-since');
      if (inm !== undefined ? noneMatchHits(inm, etag) : ims !== undefined && (parseHttpDate(ims) ?? -1) >= mtimeSec) {
        this.count(304);
        c.write(head(304, validators, keepAlive));
        return;
      }
      let status = 200;
      let start = 0n;
      let length = size;
      const range = h.get('range');
      const ifRange = h.get('if-range');
      const fields: [string, string | bigint][] = [['Content-Type', contentType(name)], ...validators, ['Accept-Ranges', 'bytes']];
      if (range !== undefined && (ifRange === undefined || ifRangeHolds(ifRange, etag, mtimeSec))) {
        const a = evalRange(range, size);
        if (a.kind === 'unsatisfiable') {
          reply(416, [['Content-Range', `bytes */${size}`]]);
          return;
        }
        if (a.kind === 'partial') {
          status = 206;
          start = a.start;
          length = a.end - a.start + 1n;
          fields.push(['Content-Range', `bytes ${a.start}-${a.end}/${size}`]);
        }
      }
      fields.push(['Content-Length', length]);
      this.count(status);
      if (isHead || length === 0n) {
        c.write(head(status, fields, keepAlive));
        return;
      }
      c.write(head(status, fields, keepAlive), true);
      this.stats.bodyBytes += Number(length);
      let body: Promise<unknown>;
      try {
        body = c.sock.sendFile(fd, { offset: start, length, method: this.#o.method });
      } catch (e) {
        // e.g. the file shrank since it was opened: the head promised
        // Content-Length bytes that will not come, so the connection goes.
        body = Promise.reject(e);
      }
      c.track(body);
    } finally {
      closeSync(fd); // sendFile holds its own duplicate
    }
  }
}

/** Start a file server; resolves once it listens. */
export async function serve(options: ServeOptions): Promise<FileServer> {
  const o = parseOptions(options);
  const s = new FileServer(o);
  await s.listen();
  if (o.signal) {
    if (o.signal.aborted) await s.close();
    else o.signal.addEventListener('abort', () => void s.close(), { once: true });
  }
  return s;
}
