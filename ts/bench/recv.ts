// SPDX-License-Identifier: MIT
/**
 * `uring-zc bench --recv`: receive throughput per receive mode against
 * Node's net module receiving the same stream (loopback TCP, same run).
 *
 * The sender is a separate process, the C reference sender
 * (libzc/bench/c_zc_fixed, SEND_ZC from registered buffers: the fastest
 * sender here), writing `size` bytes per send for warm-up + seconds + a
 * tail.  This process receives: bytes are counted over the measured span
 * [warm-up, warm-up + seconds] after the connection is accepted, CPU is
 * this process's (user + sys) over the same span.  No mode reads the
 * bytes (node-net's 'data' handler neither): the figures are the cost of
 * getting data into JavaScript's hands.
 *
 * Modes: node-net ('data' events), bufring (multishot recv into a
 * provided-buffer ring of `size`-byte buffers, chunk views, release()),
 * zcrx-nodev (kernel >= 7.1: page-sized chunks copied into a zcrx area),
 * zcrx (hardware queue: needs --ifname/--rxq and a sender on another host;
 * on loopback it reports why it cannot run).
 */
import { once } from 'node:events';
import net from 'node:net';
import { buildHelpers } from './build.ts';
import { runC } from './c-sender.ts';
import { machineLine, throughputCells, toMarkdown, type JsonEntry } from './report.ts';
import { processCpuSeconds } from './types.ts';
import { formatSize } from './units.ts';
import { windowFor } from './window.ts';
import { probe } from '../probe.ts';
import { Ring } from '../ring.ts';
import { createServer } from '../socket/server.ts';
import { Receiver, type RecvMode } from '../recv.ts';

export const RECV_BASELINE = 'node-net';
export const RECV_MODE_NAMES = ['node-net', 'bufring', 'zcrx-nodev', 'zcrx'] as const;
export type RecvBenchMode = (typeof RECV_MODE_NAMES)[number];

export interface RecvBenchOptions {
  modes: RecvBenchMode[];
  sizes: number[];
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  /** zcrx: interface and queue */
  ifname?: string;
  rxq?: number;
  log: (line: string) => void;
}

interface Measured {
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  chunks: number;
  senderCpuPct: number | null;
  rearms?: number;
}

/**
 * The send bench's JSON entry shape.  For receive modes zcUsed counts chunks
 * the kernel placed without a copy (zcrx on a NIC), zcCopied chunks it
 * copied into registered memory (bufring, zcrx-nodev).
 */
export type RecvJsonEntry = JsonEntry;

export interface RecvAggregate extends RecvJsonEntry {
  samples: number[];
  senderCpuPct: number | null;
  chunks: number | null;
  rearms: number | null;
}

/** Default receive modes: the baseline, bufring, and zcrx-nodev where the kernel has it. */
export function defaultRecvModes(): RecvBenchMode[] {
  const m: RecvBenchMode[] = ['node-net', 'bufring'];
  try {
    if (probe().caps.ZCRX_NODEV) m.push('zcrx-nodev');
  } catch {
    /* probe failed: bufring will report the real error */
  }
  return m;
}

/** Counts bytes over the measured span. */
class Span {
  #t0 = performance.now();
  #start = 0;
  #cpu0 = 0;
  #base = 0;
  #baseChunks = 0;
  measuring = false;
  result: Measured | null = null;

  constructor(private readonly warmup: number, private readonly seconds: number) {}

  /** call with cumulative bytes/chunks; false once the span is over */
  tick(bytes: number, chunks: number): boolean {
    if (this.result) return false;
    const now = performance.now();
    if (!this.measuring) {
      if (now - this.#t0 < this.warmup * 1000) return true;
      this.measuring = true;
      this.#start = now;
      this.#cpu0 = processCpuSeconds();
      this.#base = bytes;
      this.#baseChunks = chunks;
      return true;
    }
    if (now - this.#start < this.seconds * 1000) return true;
    this.result = {
      bytes: bytes - this.#base,
      seconds: (now - this.#start) / 1000,
      cpuSeconds: processCpuSeconds() - this.#cpu0,
      chunks: chunks - this.#baseChunks,
      senderCpuPct: null,
    };
    return false;
  }
}

function senderArgs(port: number, size: number, o: RecvBenchOptions): string[] {
  return [
    '--port', String(port),
    '--size', String(size),
    '--seconds', String(o.seconds + 0.5),
    '--warmup', String(o.warmupSeconds),
    '--window', String(windowFor(size)),
    '--mode', 'zc-fixed',
  ];
}

async function runNodeNet(size: number, o: RecvBenchOptions, binDir: string): Promise<Measured> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const sender = runC({ binDir }, senderArgs(port, size, o));
  sender.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
  try {
    const [sock] = (await once(server, 'connection')) as [net.Socket];
    const span = new Span(o.warmupSeconds, o.seconds);
    let bytes = 0;
    let chunks = 0;
    sock.on('data', (d: Buffer) => {
      bytes += d.length;
      chunks++;
      span.tick(bytes, chunks);
    });
    sock.on('error', () => {});
    await once(sock, 'close');
    const r = await sender;
    if (!span.result) throw new Error('the stream ended before the measured span did');
    span.result.senderCpuPct = (100 * (r.utime + r.stime)) / r.seconds;
    return span.result;
  } finally {
    server.close();
    await sender.catch(() => undefined);
  }
}

async function runRing(mode: RecvMode, size: number, o: RecvBenchOptions, binDir: string): Promise<Measured> {
  const zcrx = mode !== 'bufring';
  const ring = zcrx ? Ring.create({ deferTaskrun: true, cqe32: true }) : Ring.create();
  try {
    const rx = Receiver.create(ring, {
      mode,
      areaSize: 16 * 1024 * 1024,
      bufferSize: mode === 'bufring' ? Math.max(4096, Math.ceil(size / 4096) * 4096) : undefined,
      ifname: mode === 'zcrx' ? o.ifname : undefined,
      rxQueue: o.rxq ?? 0,
    });
    if (mode === 'zcrx') {
      throw new Error(
        `zcrx registered on ${o.ifname} queue ${o.rxq ?? 0}, but this benchmark's sender is on loopback,` +
          ' which never reaches a hardware queue: run a remote sender against this host',
      );
    }
    const listener = createServer({ ring }).listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const port = (listener.address() as { port: number }).port;
    const sender = runC({ binDir }, senderArgs(port, size, o));
    sender.catch(() => undefined);
    try {
      const sock = await listener.accept();
      const span = new Span(o.warmupSeconds, o.seconds);
      const s = rx.receive(sock.fd);
      let bytes = 0;
      let chunks = 0;
      for await (const c of s) {
        bytes += c.length;
        chunks++;
        c.release();
        span.tick(bytes, chunks);
      }
      const r = await sender;
      if (!span.result) throw new Error('the stream ended before the measured span did');
      span.result.senderCpuPct = (100 * (r.utime + r.stime)) / r.seconds;
      span.result.rearms = rx.info().rearms;
      await sock.close();
      return span.result;
    } finally {
      await listener.close();
      await sender.catch(() => undefined);
    }
  } finally {
    ring.close();
  }
}

export async function runRecvBench(o: RecvBenchOptions): Promise<RecvAggregate[]> {
  const binDir = buildHelpers();
  const runs = new Map<string, { m?: Measured; error?: string }[]>();
  for (let round = 0; round < o.rounds; round++) {
    for (const size of o.sizes) {
      for (const mode of o.modes) {
        const key = `${mode}/${size}`;
        const list = runs.get(key) ?? [];
        runs.set(key, list);
        const tag = `${o.rounds > 1 ? `[round ${round + 1}/${o.rounds}] ` : ''}recv ${mode} ${formatSize(size)}`;
        try {
          const m = mode === 'node-net' ? await runNodeNet(size, o, binDir) : await runRing(mode, size, o, binDir);
          list.push({ m });
          o.log(
            `bench: ${tag}: ${(m.bytes / m.seconds / 1e6).toFixed(0)} MB/s, cpu ${((100 * m.cpuSeconds) / m.seconds).toFixed(0)}%,` +
              ` sender cpu ${m.senderCpuPct?.toFixed(0) ?? '-'}%`,
          );
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          list.push({ error: msg });
          o.log(`bench: ${tag}: FAILED: ${msg}`);
        }
      }
    }
  }
  const out: RecvAggregate[] = [];
  for (const size of o.sizes) {
    for (const mode of o.modes) {
      const list = runs.get(`${mode}/${size}`) ?? [];
      const ok = list.filter((x) => x.m).map((x) => x.m!).sort((a, b) => a.bytes / a.seconds - b.bytes / b.seconds);
      if (ok.length === 0) {
        out.push({
          mode, size, mbps: null, cpuPct: null, zcUsed: null, zcCopied: null, samples: [], senderCpuPct: null,
          chunks: null, rearms: null, error: list.find((x) => x.error)?.error ?? 'not run',
        });
        continue;
      }
      const med = ok[Math.floor((ok.length - 1) / 2)]!;
      const zc = mode === 'zcrx';
      out.push({
        mode,
        size,
        mbps: med.bytes / med.seconds / 1e6,
        cpuPct: (100 * med.cpuSeconds) / med.seconds,
        zcUsed: mode === 'node-net' ? 0 : zc ? med.chunks : 0,
        zcCopied: mode === 'node-net' ? 0 : zc ? 0 : med.chunks,
        samples: ok.map((m) => m.bytes / m.seconds / 1e6),
        senderCpuPct: med.senderCpuPct,
        chunks: med.chunks,
        rearms: med.rearms ?? null,
      });
    }
  }
  return out;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

export function recvJson(aggs: RecvAggregate[]): RecvJsonEntry[] {
  return aggs.map((a) => {
    const e: RecvJsonEntry = {
      mode: a.mode,
      size: a.size,
      mbps: a.mbps === null ? null : r1(a.mbps),
      cpuPct: a.cpuPct === null ? null : r1(a.cpuPct),
      zcUsed: a.zcUsed,
      zcCopied: a.zcCopied,
    };
    if (a.error) e.error = a.error;
    return e;
  });
}

function ratio(aggs: RecvAggregate[], mode: string, size: number): number | null {
  const a = aggs.find((x) => x.mode === mode && x.size === size);
  const b = aggs.find((x) => x.mode === RECV_BASELINE && x.size === size);
  if (!a || !b || a.mbps === null || b.mbps === null || b.mbps === 0) return null;
  return a.mbps / b.mbps;
}

export function recvReport(aggs: RecvAggregate[], o: { seconds: number; rounds: number }): string {
  const head = ['mode', 'size', 'MB/s', `x ${RECV_BASELINE}`, 'receiver CPU %', 'MB per CPU-s', 'chunks', 're-arms', 'sender CPU %'];
  const rows = [head];
  for (const a of aggs) {
    if (a.mbps === null) {
      rows.push([a.mode, formatSize(a.size), 'error', '', '', '', '', '', '']);
      continue;
    }
    rows.push([
      ...throughputCells(a.mode, a.size, a.mbps, ratio(aggs, a.mode, a.size), a.cpuPct!),
      String(a.chunks ?? '-'),
      a.rearms === null ? '-' : String(a.rearms),
      a.senderCpuPct === null ? '-' : a.senderCpuPct.toFixed(0),
    ]);
  }
  const out = [
    `uring-zc bench --recv: loopback TCP, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    `machine: ${machineLine()}`,
    `${o.seconds} s measured per run after a warm-up, ${o.rounds} round(s) (median shown); sender: separate process` +
      ' (c_zc_fixed, SEND_ZC from registered buffers, size bytes per send); receiver: this process.',
    '',
    toMarkdown(rows),
    '',
    'size: bytes per send, and the buffer (largest chunk) of bufring; zcrx-nodev chunks are pages (4K);',
    "  node-net reads what libuv gives it (up to 64K per 'data' event).",
    'chunks: reads (node-net) or chunk records delivered in the span; re-arms: times the area ran dry and the',
    '  multishot receive was re-armed once chunks came back (backpressure, no data lost).',
    'receiver CPU %: this process (user+sys) / wall time; 100 = one core.',
  ];
  for (const a of aggs) if (a.error) out.push(`error: ${a.mode} ${formatSize(a.size)}: ${a.error}`);
  const v = ratio(aggs, 'bufring', 65536);
  out.push('');
  out.push('acceptance (issue 4, this run):');
  out.push(
    `  ${v === null ? 'SKIP' : v >= 1.2 ? 'PASS' : 'FAIL'}  bufring 64K / node-net 64K: ${v === null ? 'not measured' : `${v.toFixed(2)} (>= 1.2)`}`,
  );
  out.push('');
  out.push('reproduce: npx tsx ts/cli/main.ts bench --recv --mode node-net,bufring --size 64K --seconds 3');
  return out.join('\n');
}
