// SPDX-License-Identifier: MIT
/**
 * `bench --rr`: request/response over loopback TCP, client and server in
 * separate processes, both ends of one implementation per mode:
 *
 *   node-net  Node's net module (baseline)
 *   uring     the uring-zc public API as an application would write it (rr-peer.ts)
 *   uring-iter  the same with the receive's Promise form (diagnostic, only when named)
 *   duplex    the node-net code on uring-zc's net-compatible layer (rr-peer.ts)
 *   c-uring   C straight on liburing (libzc/bench/c_rr.c, reference)
 *
 * Cases: one connection ping-pong at each size (p50/p99/p999 round trip),
 * and N concurrent connections each doing 1 KiB request/response
 * (aggregate messages/s and p99).  Every (case, mode) runs in fresh
 * processes; rounds interleave the modes of a case, each round starting
 * at the next mode (round 1 in the order given).  CPU time of both
 * processes is sampled from /proc when the client marks the start and the
 * end of its measured span.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildHelpers, childCommand } from './build.ts';
import { cpuSecondsOf } from './proc-cpu.ts';
import { ringSettings } from './settings.ts';
import { roundOrder } from './round-order.ts';
import type { RrClientResult } from './rr-peer.ts';

export const RR_MODE_INFO = [
  { name: 'node-net', describe: "Node net: createServer echo (socket.write of each 'data'), net.connect client" },
  { name: 'uring', describe: 'uring-zc API: createServer/accept, connect, the callback forms of receive() and send() (rr-peer.ts)' },
  { name: 'duplex', describe: "uring-zc's net-compatible layer: the node-net ends on its createServer/connect, 'data' and write()" },
  { name: 'c-uring', describe: 'C on liburing: multishot accept/recv into a buffer ring, send (c_rr.c, reference)' },
  { name: 'uring-iter', describe: 'diagnostic: uring with the Promise form of receive() (for await / next() per chunk)', diagnostic: true },
] as const;
export type RrMode = string;
/** every mode --mode takes */
export const RR_MODES: readonly string[] = RR_MODE_INFO.map((m) => m.name);
/** the modes run when --mode is not given (diagnostic ones only when named) */
export const RR_DEFAULT_MODES: readonly string[] = RR_MODE_INFO.filter((m) => !('diagnostic' in m)).map((m) => m.name);
export const RR_DEFAULT_SIZES = [64, 1024, 16384];
export const RR_DEFAULT_CONNS = [1, 100, 1000];
/** Message size of the many-connection cases. */
export const RR_MANY_SIZE = 1024;

export interface RrCase {
  size: number;
  conns: number;
}

/** 1-connection ping-pong at every size; more connections at 1 KiB. */
export function rrCases(sizes: number[], conns: number[]): RrCase[] {
  const out: RrCase[] = [];
  for (const c of conns) {
    if (c === 1) for (const size of sizes) out.push({ size, conns: 1 });
    else out.push({ size: RR_MANY_SIZE, conns: c });
  }
  return out;
}

export interface RrBenchOptions {
  modes: string[];
  cases: RrCase[];
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  log: (line: string) => void;
}

export interface RrRun {
  mode: string;
  size: number;
  conns: number;
  round: number;
  result?: RrClientResult & { cpuSeconds: number; clientCpuSeconds: number; serverCpuSeconds: number };
  error?: string;
}

interface Peer {
  child: ChildProcess;
  lines: AsyncIterator<string>;
  stderr: string[];
}

/** `URING_ZC_BENCH_STATS=1`: the uring peers print their rings' counters at the end (rr-peer.ts). */
const STATS_LINE = /^rr-(server|client) stats: .*$/gm;

function startPeer(argv: string[], env?: NodeJS.ProcessEnv): Peer {
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 50) stderr.push(d);
  });
  child.on('error', () => undefined);
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](), stderr };
}

async function nextLine(p: Peer, what: string, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    p.child.once('exit', (code, sig) =>
      reject(new Error(`${what}: exited (${sig ?? code})${p.stderr.length ? ': ' + p.stderr.join('').trim().slice(0, 800) : ''}`)),
    );
  });
  fail.catch(() => undefined);
  try {
    const r = await Promise.race([p.lines.next(), fail]);
    if (r.done) throw new Error(`${what}: closed its output${p.stderr.length ? ': ' + p.stderr.join('').trim().slice(0, 800) : ''}`);
    return r.value;
  } finally {
    clearTimeout(timer);
    p.child.removeAllListeners('exit');
  }
}

async function stopPeer(p: Peer): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
  p.child.stdin!.end();
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

async function peerArgv(mode: string, role: 'server' | 'client', args: string[], binDir: string): Promise<{ argv: string[]; env?: NodeJS.ProcessEnv }> {
  const defer = ringSettings().deferTaskrun;
  if (mode === 'c-uring') return { argv: [join(binDir, 'c_rr'), role, ...args, ...(defer ? [] : ['--no-defer'])] };
  const c = await childCommand(`rr-${role}`, [mode, ...args]);
  const env = { ...c.env, URING_ZC_BENCH_DEFER_TASKRUN: defer ? '1' : '0', URING_ZC_BENCH_LOOP_WAIT: ringSettings().loopWait };
  return { argv: c.argv, env };
}

async function runOne(mode: string, c: RrCase, o: RrBenchOptions, binDir: string, tag: string): Promise<RrRun['result']> {
  const s = await peerArgv(mode, 'server', [], binDir);
  const server = startPeer(s.argv, s.env);
  let client: Peer | null = null;
  try {
    const first = await nextLine(server, `${mode} server`, 30_000);
    const m = /^port (\d+)$/.exec(first);
    if (!m) throw new Error(`${mode} server: said ${JSON.stringify(first)} instead of its port`);
    const cargs = [
      '--port', m[1]!, '--size', String(c.size), '--conns', String(c.conns),
      '--seconds', String(o.seconds), '--warmup', String(o.warmupSeconds),
    ];
    const cl = await peerArgv(mode, 'client', cargs, binDir);
    client = startPeer(cl.argv, cl.env);
    const budget = 60_000 + (o.seconds + o.warmupSeconds) * 1000;
    const pids = [client.child.pid, server.child.pid];
    const expect = async (want: string): Promise<string> => {
      const l = await nextLine(client!, `${mode} client`, budget);
      if (want && l !== want) throw new Error(`${mode} client: said ${JSON.stringify(l)} instead of ${want}`);
      return l;
    };
    await expect('mark');
    const c0 = pids.map(cpuSecondsOf);
    await expect('mark');
    const c1 = pids.map(cpuSecondsOf);
    const r = JSON.parse(await expect('')) as RrClientResult;
    const clientCpuSeconds = c1[0]! - c0[0]!;
    const serverCpuSeconds = c1[1]! - c0[1]!;
    return { ...r, cpuSeconds: clientCpuSeconds + serverCpuSeconds, clientCpuSeconds, serverCpuSeconds };
  } finally {
    if (client) await stopPeer(client);
    await stopPeer(server);
    if (process.env['URING_ZC_BENCH_STATS'] === '1') {
      for (const p of client ? [client, server] : [server]) {
        for (const line of p.stderr.join('').match(STATS_LINE) ?? []) o.log(`bench --rr: ${tag}: ${line}`);
      }
    }
  }
}

export async function runRrBench(o: RrBenchOptions): Promise<RrRun[]> {
  const binDir = buildHelpers();
  const runs: RrRun[] = [];
  for (let round = 0; round < o.rounds; round++) {
    // Each round starts at the next mode, so no mode always runs first
    // (what ran before a peer's processes colours its tail).
    const order = roundOrder(o.modes, round);
    for (const c of o.cases) {
      for (const mode of order) {
        const run: RrRun = { mode, size: c.size, conns: c.conns, round };
        const tag = `${o.rounds > 1 ? `[round ${round + 1}/${o.rounds}] ` : ''}${mode} ${c.size}B x${c.conns}`;
        try {
          run.result = await runOne(mode, c, o, binDir, tag);
        } catch (e) {
          run.error = e instanceof Error ? e.message : String(e);
        }
        runs.push(run);
        const r = run.result;
        o.log(
          r
            ? `bench --rr: ${tag}: ${(r.msgs / r.seconds).toFixed(0)} msg/s, p50 ${r.p50us.toFixed(1)} us, ` +
                `p99 ${r.p99us.toFixed(1)} us, cpu ${((100 * r.cpuSeconds) / r.seconds).toFixed(0)}%`
            : `bench --rr: ${tag}: FAILED: ${run.error}`,
        );
      }
    }
  }
  return runs;
}
