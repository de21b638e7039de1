// SPDX-License-Identifier: MIT
/**
 * The two ends of `bench --rr` written in TypeScript, each run as its own
 * process (child.ts):
 *
 *   rr-server MODE            echo server on 127.0.0.1:0; prints "port N";
 *                             exits when its stdin closes
 *   rr-client MODE --port P --size S --conns C --seconds T --warmup W
 *                             C connections, each a closed loop: send S
 *                             bytes, wait for the S echoed bytes, repeat.
 *                             Prints "mark" when the measured span starts
 *                             and when it ends (the harness samples both
 *                             processes' CPU time then), then one JSON line.
 *
 * MODE node-net: Node's net module.  MODE uring: the uring-zc public API
 * the way an application that moves millions of messages would use it
 * (Ring, createServer/connect, the callback forms of receive() and send():
 * no Promise per message).  MODE uring-iter: the same with the receive's
 * Promise form (`for await` over socket.receive() chunks, `stream.next()`),
 * to show what that form costs.  MODE duplex: the node-net code line for line on uring-zc's
 * net-compatible layer (its createServer/connect, 'data' events and
 * write()), on the thread's shared ring: what porting a node:net program
 * costs or gains.  The uring ends honour `bench --defer-taskrun`.
 */
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { Ring, ZcError, connect as zcConnect, createServer as zcServer, type ZcSocket, type ReceiveOptions as ReceiveOptionsInput } from '../index.ts';
import { fillPattern } from './types.ts';
import { TRACING, traceMessage, traceRoundTrip, traceSpanStart, traceStart, traceWrite } from './rr-trace.ts';

export const RR_TS_MODES = ['node-net', 'uring', 'uring-iter', 'duplex'] as const;
export type RrTsMode = (typeof RR_TS_MODES)[number];

/** What the client prints at the end. */
export interface RrClientResult {
  /** round trips completed in the measured span */
  msgs: number;
  seconds: number;
  p50us: number;
  p99us: number;
  p999us: number;
}

/** Ring size for C connections: one multishot receive and one send each, at least. */
function ringEntries(conns: number): number {
  let n = 256;
  while (n < conns) n *= 2;
  return Math.min(n, 32768);
}

/**
 * Receive area for C connections: 16 KiB chunks, at least 4096 of them
 * (64 MiB) and four per connection: the buffer ring of the C reference
 * (c_rr.c).  A stream may hold its share of the area (buffers /
 * (streams + 1)) before it is paused; an echo holds a chunk until its send
 * completed while the next request may already be in.
 */
function rxOptions(conns: number): ReceiveOptionsInput {
  const bufferSize = 16 * 1024;
  let areaSize = 64 << 20;
  while (areaSize < conns * 4 * bufferSize) areaSize *= 2;
  return { mode: 'bufring', bufferSize, areaSize };
}

/** `bench --defer-taskrun on|off`: the parent passes it in the environment. */
function deferTaskrun(): boolean {
  return process.env['URING_ZC_BENCH_DEFER_TASKRUN'] === '1';
}

/** `bench --rr --loop-wait auto|epoll|ring`: the parent passes it in the environment; unset, the library default. */
function loopWait(): { loopWait?: 'auto' | 'epoll' | 'ring' } {
  const v = process.env['URING_ZC_BENCH_LOOP_WAIT'];
  return v === 'auto' || v === 'epoll' || v === 'ring' ? { loopWait: v } : {};
}

/**
 * `URING_ZC_BENCH_STATS=1`: a uring peer prints its ring's counters
 * (`ring.stats`) and the process's CPU time to stderr when it ends, over
 * its whole life (set-up and warm-up included), for reading the batching
 * per wakeup and per flush (docs/PERFORMANCE.md).
 */
function printStats(role: string, ring: Ring): void {
  if (process.env['URING_ZC_BENCH_STATS'] !== '1') return;
  const s = ring.stats;
  const cpu = process.cpuUsage();
  const per = (a: number, b: number): string => (b ? (a / b).toFixed(1) : '-');
  process.stderr.write(
    `${role} stats: ${JSON.stringify(s)} records/wakeup ${per(s.records, s.wakeups)} records/reap ${per(s.records, s.reaps)} ` +
      `issued/submit ${per(s.issued, s.submits)} loopWait ${ring.loopWait} (${ring.loopSleep}, ${ring.loopSwitches} switches) bells ${JSON.stringify(ring.bells)} user ${(cpu.user / 1e6).toFixed(2)} s sys ${(cpu.system / 1e6).toFixed(2)} s\n`,
  );
}

/**
 * `URING_ZC_BENCH_SIDE_NET=1`: a uring peer also writes one small message on
 * a node:net connection to an echo in its own thread per message it
 * handles (not awaited, the echo discarded): each of the ring's wakeups
 * then comes with two of node:net's (the echo's socket, then the
 * client's), which moves loopWait 'auto' to epoll and keeps it there (an
 * application that makes a node:net call per request; Session 20 bell20).
 */
let sideNet: (() => void) | null = null;

async function startSideNet(): Promise<void> {
  if (process.env['URING_ZC_BENCH_SIDE_NET'] !== '1') return;
  const srv = createServer({ noDelay: true }, (c) => {
    c.pipe(c);
    c.on('error', () => c.destroy());
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const c = connect({ host: '127.0.0.1', port: typeof addr === 'object' && addr ? addr.port : 0, noDelay: true });
  await once(c, 'connect');
  c.on('data', () => undefined);
  srv.unref();
  c.unref();
  const msg = Buffer.from('s');
  sideNet = () => void c.write(msg);
}

/** Round-trip times in microseconds, growing. */
class Samples {
  #a = new Float64Array(1 << 16);
  n = 0;
  add(us: number): void {
    if (this.n === this.#a.length) {
      const b = new Float64Array(this.#a.length * 2);
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.n++] = us;
  }
  percentiles(): { p50us: number; p99us: number; p999us: number } {
    const s = this.#a.subarray(0, this.n).sort();
    const at = (q: number): number => (this.n ? s[Math.min(this.n - 1, Math.floor(q * this.n))]! : 0);
    return { p50us: at(0.5), p99us: at(0.99), p999us: at(0.999) };
  }
}

/** Warm-up / measure / stop by the clock; prints the marks. */
class Span {
  #t0 = performance.now();
  #start = 0;
  measuring = false;
  over = false;
  msgs = 0;
  samples = new Samples();
  #seconds = 0;
  #end: () => void = () => undefined;
  readonly done: Promise<void>;

  constructor(
    private readonly warmupMs: number,
    private readonly spanMs: number,
  ) {
    this.done = new Promise((r) => (this.#end = r));
  }

  /** A round trip of `us` finished now; false once the span is over. */
  record(now: number, us: number): boolean {
    if (this.over) return false;
    if (!this.measuring) {
      if (now - this.#t0 >= this.warmupMs) {
        this.measuring = true;
        this.#start = now;
        process.stdout.write('mark\n');
        if (TRACING) traceSpanStart();
      }
      return true;
    }
    this.msgs++;
    this.samples.add(us);
    if (TRACING) traceRoundTrip(now, us);
    if (now - this.#start >= this.spanMs) {
      this.over = true;
      this.#seconds = (now - this.#start) / 1000;
      process.stdout.write('mark\n');
      this.#end();
      return false;
    }
    return true;
  }

  result(): RrClientResult {
    return { msgs: this.msgs, seconds: this.#seconds, ...this.samples.percentiles() };
  }
}

interface ClientArgs {
  port: number;
  size: number;
  conns: number;
  seconds: number;
  warmup: number;
}

function parseClient(args: string[]): ClientArgs {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      port: { type: 'string' },
      size: { type: 'string' },
      conns: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
    },
  });
  const num = (k: keyof typeof values, def?: number): number => {
    const v = values[k] === undefined ? def : Number(values[k]);
    if (v === undefined || !Number.isFinite(v)) throw new Error(`rr-client: --${k} missing or not a number`);
    return v;
  };
  return { port: num('port'), size: num('size'), conns: num('conns', 1), seconds: num('seconds', 2), warmup: num('warmup', 0.5) };
}

/** Run tasks with at most `width` at once (connection set-up: the listen backlog is finite). */
async function limited<T>(n: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
  return out;
}

// ------------------------------------------------------------- node-net

async function nodeServer(): Promise<void> {
  const server = createServer({ noDelay: true }, (s) => {
    s.on('data', TRACING ? (d) => (traceMessage(performance.now()), s.write(d)) : (d) => s.write(d));
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
  const addr = server.address();
  process.stdout.write(`port ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  process.stdin.resume();
  await new Promise<void>((r) => process.stdin.once('end', r));
  traceWrite('server', 'node-net');
  process.exit(0);
}

/** What the node-net and duplex clients use of a socket (net.Socket and ZcSocket both have it). */
interface StreamSocket {
  on(event: 'data', fn: (d: Buffer) => void): unknown;
  once(event: 'connect', fn: () => void): unknown;
  once(event: 'error', fn: (e: Error) => void): unknown;
  write(b: Buffer): unknown;
  destroy(): unknown;
}

/** The 'data'/write() client loop, on sockets that `open` connects. */
async function streamClient(a: ClientArgs, open: () => StreamSocket): Promise<RrClientResult> {
  const req = Buffer.allocUnsafe(a.size);
  fillPattern(req);
  const socks = await limited(a.conns, 64, async () => {
    const s = open();
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return s;
  });
  const span = new Span(a.warmup * 1000, a.seconds * 1000);
  const start = (s: StreamSocket): void => {
    let got = 0;
    let t0 = performance.now();
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got < a.size) return;
      got -= a.size;
      const now = performance.now();
      if (span.record(now, (now - t0) * 1000)) {
        t0 = now;
        s.write(req);
      }
    });
    s.write(req);
  };
  for (const s of socks) start(s);
  await span.done;
  for (const s of socks) s.destroy();
  return span.result();
}

const nodeClient = (a: ClientArgs): Promise<RrClientResult> =>
  streamClient(a, () => connect({ host: '127.0.0.1', port: a.port, noDelay: true }));

// ---------------------------------------------------------------- uring

/** A client resets its connections when its run is over; anything else is worth a line. */
function serverError(e: unknown): void {
  if (!(e instanceof ZcError && (e.code === 'ECONNRESET' || e.code === 'EPIPE'))) {
    process.stderr.write(`rr-server: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

/** Accept connections on a new ring until stdin closes; `serve` each one. */
async function uringListen(serve: (s: ZcSocket, rx: ReceiveOptionsInput) => void): Promise<void> {
  const ring = Ring.create({ entries: 4096, deferTaskrun: deferTaskrun(), ...loopWait() });
  const listener = zcServer({ ring, backlog: 4096 }).listen(0, '127.0.0.1');
  await once(listener, 'listening');
  process.stdout.write(`port ${listener.address()?.port ?? 0}\n`);
  const rx = rxOptions(1000);
  let stopping = false;
  void (async () => {
    while (!stopping) {
      let s: ZcSocket;
      try {
        s = await listener.accept();
      } catch {
        return;
      }
      s.setNoDelay(true);
      serve(s, rx);
    }
  })();
  process.stdin.resume();
  await new Promise<void>((r) => process.stdin.once('end', r));
  stopping = true;
  printStats('rr-server', ring);
  traceWrite('server', 'uring', { stats: ring.stats, loopWait: ring.loopWait, loopSleep: ring.loopSleep, loopSwitches: ring.loopSwitches });
  process.exit(0);
}

/** A send of the echo settled: the chunk's memory is back with the kernel already (send(chunk) took it). */
function echoed(err: Error | null): void {
  if (err) serverError(err);
}

/**
 * The callback forms: each chunk echoed from the received memory by
 * send(chunk), which takes it and gives it back once sent (no view, no
 * closure per message).
 */
const uringServer = (): Promise<void> =>
  uringListen((s, rx) => {
    s.receive(rx, {
      chunk: (c) => {
        if (TRACING) traceMessage(performance.now());
        s.send(c, undefined, echoed);
        sideNet?.();
      },
      end: (err) => {
        if (err) serverError(err);
        s.destroy();
      },
    });
  });

/** The Promise form of the receive: `for await` over the chunks. */
const iterServer = (): Promise<void> =>
  uringListen((s, rx) => {
    void (async () => {
      try {
        for await (const chunk of s.receive(rx)) {
          // Echo straight from the received memory: send(chunk) takes the
          // chunk and gives it back once sent (the callback form of send:
          // no Promise per message).
          s.send(chunk, undefined, echoed);
        }
      } catch (e) {
        serverError(e);
      }
      s.destroy();
    })();
  });

/** Connect `a.conns` sockets on a new ring, run `loop` on each until the span is over. */
async function uringConnect(
  a: ClientArgs,
  loop: (s: ZcSocket, span: Span, req: Uint8Array, rx: ReceiveOptionsInput) => Promise<void>,
): Promise<RrClientResult> {
  const ring = Ring.create({ entries: ringEntries(a.conns), deferTaskrun: deferTaskrun(), ...loopWait() });
  const req = new Uint8Array(a.size);
  fillPattern(req);
  const rx = rxOptions(a.conns);
  const socks = await limited(a.conns, 64, async () => {
    const s = zcConnect({ ring, host: '127.0.0.1', port: a.port, noDelay: true });
    await once(s, 'connect');
    return s;
  });
  const span = new Span(a.warmup * 1000, a.seconds * 1000);
  const loops = socks.map((s) => loop(s, span, req, rx));
  await span.done;
  await Promise.allSettled(loops);
  printStats('rr-client', ring);
  if (TRACING) traceWrite('client', 'uring', { stats: ring.stats, loopWait: ring.loopWait, loopSleep: ring.loopSleep, loopSwitches: ring.loopSwitches });
  for (const s of socks) void s.close();
  ring.close();
  return span.result();
}

/**
 * The callback forms: the next request goes out from the chunk handler
 * that completed the echo.  The echo can only come back once the request
 * left, and `req` is never changed, so the send callback only keeps the
 * first error.
 */
const uringClient = (a: ClientArgs): Promise<RrClientResult> =>
  uringConnect(a, (s, span, req, rx) => {
    return new Promise<void>((resolve, reject) => {
      let sendError: Error | null = null;
      const sent = (err: Error | null): void => {
        sendError ??= err;
      };
      let got = 0;
      let t0 = performance.now();
      const stream = s.receive(rx, {
        chunk: (c) => {
          got += c.length;
          c.release();
          if (got < a.size) return;
          got -= a.size;
          const now = performance.now();
          if (sendError || !span.record(now, (now - t0) * 1000)) {
            stream.cancel();
            return;
          }
          t0 = now;
          s.send(req, undefined, sent);
          sideNet?.();
        },
        end: (err) => {
          const e = sendError ?? err;
          if (e !== null) reject(e);
          else if (!span.over) reject(new Error('rr-client: the server closed the connection'));
          else resolve();
        },
      });
      s.send(req, undefined, sent);
    });
  });

/** The Promise form of the receive: `await stream.next()` per chunk. */
const iterClient = (a: ClientArgs): Promise<RrClientResult> =>
  uringConnect(a, async (s, span, req, rx) => {
    const stream = s.receive(rx);
    let sendError: Error | null = null;
    const sent = (err: Error | null): void => {
      sendError ??= err;
    };
    for (;;) {
      const t0 = performance.now();
      s.send(req, undefined, sent);
      let got = 0;
      while (got < a.size) {
        const r = await stream.next();
        if (r.done) throw sendError ?? new Error('rr-client: the server closed the connection');
        got += r.value.length;
        r.value.release();
      }
      if (sendError) throw sendError;
      const now = performance.now();
      if (!span.record(now, (now - t0) * 1000)) break;
    }
    stream.cancel();
  });

// ---- duplex: the node-net ends on uring-zc's net-compatible layer ----

async function duplexServer(): Promise<void> {
  const server = zcServer({ noDelay: true, backlog: 4096 }, (s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('error', () => s.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.stdout.write(`port ${server.address()?.port ?? 0}\n`);
  process.stdin.resume();
  await new Promise<void>((r) => process.stdin.once('end', r));
  process.exit(0);
}

const duplexClient = (a: ClientArgs): Promise<RrClientResult> =>
  streamClient(a, () => zcConnect({ host: '127.0.0.1', port: a.port, noDelay: true }));

const PEERS: Record<RrTsMode, { server: () => Promise<void>; client: (a: ClientArgs) => Promise<RrClientResult> }> = {
  'node-net': { server: nodeServer, client: nodeClient },
  uring: { server: uringServer, client: uringClient },
  'uring-iter': { server: iterServer, client: iterClient },
  duplex: { server: duplexServer, client: duplexClient },
};

let idleRing: Ring | null = null;

export async function rrPeerMain(role: 'rr-server' | 'rr-client', args: string[]): Promise<void> {
  const [mode, ...rest] = args;
  if (!(RR_TS_MODES as readonly (string | undefined)[]).includes(mode)) throw new Error(`${role}: unknown mode ${JSON.stringify(mode)}`);
  const peer = PEERS[mode as RrTsMode];
  traceStart();
  // URING_ZC_BENCH_IDLE_RING=1: a node-net peer holds one idle Ring (what a
  // ring's loopWait costs the other fds of its thread: Sessions 18, 19).
  if (mode === 'node-net' && process.env['URING_ZC_BENCH_IDLE_RING'] === '1') idleRing = Ring.create({ entries: 64, ...loopWait() });
  if (mode === 'uring') await startSideNet();
  if (role === 'rr-server') {
    await peer.server();
    return;
  }
  const r = await peer.client(parseClient(rest));
  if (TRACING && mode !== 'uring' && mode !== 'uring-iter') traceWrite('client', mode as string);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}
