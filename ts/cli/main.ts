#!/usr/bin/env -S npx tsx
// SPDX-License-Identifier: MIT
/**
 * uring-zc: command-line tool of the uring-zc package.
 *
 *   uring-zc probe [--json]
 *   uring-zc build
 *   uring-zc serve [dir] [--port N] [--host H]
 *   uring-zc bench [--mode m1,m2] [--size 4K,64K] [--seconds N] [--rounds N] [--json]
 *   uring-zc bench --udp [...]     UDP sends on the veth-drop path (root)
 *   uring-zc bench --rr [...]      request/response latency and messages/s
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { runBench } from '../bench/harness.ts';
import { ALL_MODES, DIAGNOSTIC_MODES, MODES, modeByName } from '../bench/modes.ts';
import { docSection, humanReport, toJson, updateDoc } from '../bench/report.ts';
import { formatSize, parseSize } from '../bench/units.ts';
import { setRingSettings } from '../bench/settings.ts';
import { setWindow } from '../bench/window.ts';
import type { BenchMode } from '../bench/types.ts';
import { probeJson, probeText, runProbe } from './probe.ts';
import { SERVE_USAGE, cmdServe } from './serve.ts';
import { BENCH_FILE_USAGE, cmdBenchFile } from './bench-file.ts';
import { buildFromSource } from '../ffi/load.ts';
import { RECV_MODE_NAMES, defaultRecvModes, recvJson, recvReport, runRecvBench, type RecvBenchMode } from '../bench/recv.ts';
import '../bench/recv-probe.ts';
import { UDP_DEFAULT_SIZES, UDP_DEFAULT_WINDOW, UDP_MAX_SIZE, UDP_MODE_INFO, UDP_MODES, pinText, runUdpBench, type UdpMode } from '../bench/udp.ts';
import { udpDocSection, udpJson, udpReport } from '../bench/udp-report.ts';
import { RR_DEFAULT_CONNS, RR_DEFAULT_MODES, RR_DEFAULT_SIZES, RR_MODE_INFO, RR_MODES, rrCases, runRrBench } from '../bench/rr.ts';
import { rrAggregate, rrDocSection, rrJson, rrReport } from '../bench/rr-report.ts';

const DEFAULT_SIZES = [4096, 16384, 65536];
const DEFAULT_SECONDS = 2;
/** UDP send bench defaults: 5 interleaved rounds of 1 s (medians, ratios paired per round)
 * resist this shared box's noise better than one long run. */
const SEND_DEFAULT_SECONDS = 1;
const SEND_DEFAULT_ROUNDS = 5;
/** TCP send bench: runs of 3 s.  A loopback run can fall into a slow regime (the sink
 * sleeps and each wakeup is an IPI to a halted vCPU) that hits every mode alike; with
 * 1 s runs a 5-round median of two equal modes read below 0.95 in ~1 of 5 whole runs,
 * with 3 s in 0.2% of resamples (docs/PERFORMANCE.md, Session 24 tcp24).  ~6 minutes.
 * The sink polls by default (--sink-wait spin), which makes that regime rare: 1 slow run
 * in 105 against 12 (docs/PERFORMANCE.md, Session 26 tcp26).  Shorter rounds are no
 * tighter: a median's spread follows the measured seconds, so 10 x 1.5 s reads like
 * 5 x 3 s for 9% more time (docs/PERFORMANCE.md, Session 27 tcp27). */
const TCP_DEFAULT_SECONDS = 3;
const MAX_SECONDS = 3600;
const RR_DEFAULT_SECONDS = 2;
const RR_DEFAULT_ROUNDS = 3;

class UsageError extends Error {}

function usage(): string {
  const line = (m: BenchMode): string => `                 ${m.name.padEnd(12)} ${m.describe}`;
  const modes = MODES.map(line).join('\n');
  const diag = DIAGNOSTIC_MODES.map(line).join('\n');
  return `usage:
  uring-zc probe [--json]
      What this kernel, liburing and process support (capabilities, kernel release,
      RLIMIT_MEMLOCK, kernel.io_uring_disabled, liburing version, unified completion).

  uring-zc build
      Build libzc from the package's sources against this system's liburing
      (needs a C compiler, make, pkg-config, liburing >= 2.12); it is used
      instead of the prebuilt library from then on.

${SERVE_USAGE}
  uring-zc bench [--mode M1,M2,...] [--size S1,S2,...] [--seconds N] [--rounds N]
                 [--warmup N] [--sink copy|trunc] [--sink-wait spin|sleep] [--json]
      Loopback TCP throughput of each send mode into a separate receiver process.
      --mode     modes to run (default: all of these)
${modes}
                 diagnostic modes, only when named:
${diag}
      --size     bytes per send, e.g. 4K,16K,64K (default: ${DEFAULT_SIZES.map(formatSize).join(',')})
      --seconds  measured seconds per mode, size and round (default: ${TCP_DEFAULT_SECONDS})
      --rounds   repeat everything N times, interleaved, report medians (default: ${SEND_DEFAULT_ROUNDS})
      --warmup   seconds sent before measuring (default: 0.3)
      --sink     receiver reads into a buffer (copy, default) or discards in the
                 kernel with MSG_TRUNC (trunc)
      --sink-wait  receiver polls its socket and never sleeps (spin, default: a
                 vCPU of its own) or sleeps in recv (sleep: each wakeup costs the
                 sender an IPI, and runs of every mode fall into a slow regime
                 at random; docs/PERFORMANCE.md, Session 26)
      --json     stdout is only a JSON array of
                 { mode, size, mbps, cpuPct, zcUsed, zcCopied } (progress goes to stderr)
      --window   sends in flight per sender (default: 1 MiB worth, 8..256)
      --defer-taskrun on|off
                 IORING_SETUP_DEFER_TASKRUN for every io_uring sender (TS and C);
                 default: the Ring default (off)
      --update-doc
                 also write the result table into docs/PERFORMANCE.md between
                 its <!-- bench:start --> and <!-- bench:end --> markers
                 (--udp: bench-udp, --rr: bench-rr markers)

  uring-zc bench --udp [--mode M1,...] [--size ...] [--seconds N] [--rounds N] [--window N] [--pin on|off] [--json]
      UDP send throughput where zero-copy is real: datagrams out of a veth whose peer
      drops them before local delivery, in two network namespaces the bench makes
      and removes itself (root).  Every sender runs in the namespace.
      --mode     (default: all)
${UDP_MODE_INFO.map((m) => `                 ${m.name.padEnd(12)} ${m.describe}`).join('\n')}
      --size     datagram bytes (default: ${UDP_DEFAULT_SIZES.join(',')}; at most ${UDP_MAX_SIZE})
      --window   datagrams in flight per sender (default: ${UDP_DEFAULT_WINDOW})
      --pin      off (default): where the scheduler puts them (each progress line says where
                 the sender's main thread ran); on: every run of round r on vCPU r mod (vCPUs),
                 so the senders a ratio pairs ran on the same vCPU
      --json     stdout is only a JSON array of
                 { mode, size, mbps, sendsPerSec, cpuPct, zcUsed, zcCopied }
      (--seconds default ${SEND_DEFAULT_SECONDS}, --rounds default ${SEND_DEFAULT_ROUNDS}, --warmup, --defer-taskrun as above)

  uring-zc bench --rr [--mode M1,...] [--size ...] [--conns N1,...] [--seconds N] [--rounds N] [--json]
                 [--defer-taskrun on|off] [--loop-wait auto|epoll|ring]
      Request/response on loopback TCP, client and server in separate processes.
      --mode     (default: all but the diagnostic ones)
${RR_MODE_INFO.map((m) => `                 ${m.name.padEnd(12)} ${m.describe}`).join('\n')}
      --size     1-connection ping-pong sizes (default: ${RR_DEFAULT_SIZES.join(',')})
      --conns    connection counts (default: ${RR_DEFAULT_CONNS.join(',')}): 1 runs every --size,
                 more run 1 KiB messages on every connection at once
      --seconds  measured seconds per run (default: ${RR_DEFAULT_SECONDS}); --rounds (default: ${RR_DEFAULT_ROUNDS})
      --loop-wait auto|epoll|ring
                 RingOptions.loopWait of the TypeScript io_uring peers: where their
                 event loops sleep (default: the Ring default, auto)
      --json     stdout is only a JSON array of
                 { mode, size, conns, p50us, p99us, p999us, msgsPerSec, cpuPct }

${BENCH_FILE_USAGE}
  uring-zc bench --recv [--mode M1,...] [--size ...] [--seconds N] [--rounds N] [--json]
                 [--ifname IF --rxq Q]
      Receive throughput of each receive mode vs Node's net module, same stream
      (a separate C sender process on loopback).  Modes: ${RECV_MODE_NAMES.join(', ')}
      (default: node-net, bufring, and zcrx-nodev where the kernel has it).
`;
}

function parseNumber(flag: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag}: "${v}" is not a number in ${min}..${max}`);
  }
  return n;
}

function parseModes(v: string | undefined): BenchMode[] {
  if (v === undefined) return [...MODES];
  const out: BenchMode[] = [];
  for (const name of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = modeByName(name);
    if (!m) throw new UsageError(`--mode: unknown mode "${name}" (known: ${ALL_MODES.map((x) => x.name).join(', ')})`);
    if (!out.includes(m)) out.push(m);
  }
  if (out.length === 0) throw new UsageError('--mode: no mode given');
  // Keep table order so the baseline comes first.
  return ALL_MODES.filter((m) => out.includes(m));
}

function parseSizes(v: string | undefined): number[] {
  if (v === undefined) return DEFAULT_SIZES;
  let sizes: number[];
  try {
    sizes = v.split(',').map((s) => s.trim()).filter(Boolean).map(parseSize);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (sizes.length === 0) throw new UsageError('--size: no size given');
  return [...new Set(sizes)].sort((a, b) => a - b);
}

async function cmdProbe(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } }, strict: true });
  const r = await runProbe();
  process.stdout.write(values.json ? JSON.stringify(probeJson(r), null, 2) + '\n' : probeText(r) + '\n');
  return 0;
}

function cmdBuild(args: string[]): number {
  parseArgs({ args, options: {}, strict: true });
  process.stdout.write(`libzc built from source: ${buildFromSource()}\n`);
  return 0;
}

async function cmdBench(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      mode: { type: 'string' },
      size: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      sink: { type: 'string' },
      'sink-wait': { type: 'string' },
      json: { type: 'boolean' },
      'update-doc': { type: 'boolean' },
      window: { type: 'string' },
      'defer-taskrun': { type: 'string' },
      'loop-wait': { type: 'string' },
      pin: { type: 'string' },
      recv: { type: 'boolean' },
      udp: { type: 'boolean' },
      rr: { type: 'boolean' },
      file: { type: 'boolean' },
      server: { type: 'string' },
      conns: { type: 'string' },
      ifname: { type: 'string' },
      rxq: { type: 'string' },
    },
  });
  const kinds = [values.recv, values.udp, values.rr, values.file].filter(Boolean).length;
  if (kinds > 1) throw new UsageError('--recv, --udp, --rr and --file are separate benchmarks: give one');
  if (values['sink-wait'] !== undefined && kinds > 0) throw new UsageError('--sink-wait: only with the TCP send bench');
  if (values.server !== undefined && !values.file) throw new UsageError('--server: only with --file');
  if (values.file) return cmdBenchFile(values);
  if (values.conns !== undefined && !values.rr) throw new UsageError('--conns: only with --rr');
  if (values['loop-wait'] !== undefined && !values.rr) throw new UsageError('--loop-wait: only with --rr');
  if (values.pin !== undefined && !values.udp) throw new UsageError('--pin: only with --udp');
  if (values.recv) return cmdBenchRecv(values);
  if (values.udp) return cmdBenchUdp(values, args);
  if (values.rr) return cmdBenchRr(values, args);
  const sink = values.sink ?? 'copy';
  if (sink !== 'copy' && sink !== 'trunc') throw new UsageError(`--sink: "${sink}" is not copy or trunc`);
  const sinkWait = values['sink-wait'] ?? 'spin';
  if (sinkWait !== 'spin' && sinkWait !== 'sleep') throw new UsageError(`--sink-wait: "${sinkWait}" is not spin or sleep`);
  const opts = {
    modes: parseModes(values.mode),
    sizes: parseSizes(values.size),
    seconds: parseNumber('--seconds', values.seconds, TCP_DEFAULT_SECONDS, 0.1, MAX_SECONDS),
    rounds: Math.trunc(parseNumber('--rounds', values.rounds, SEND_DEFAULT_ROUNDS, 1, 100)),
    warmupSeconds: parseNumber('--warmup', values.warmup, 0.3, 0, 60),
    sinkTrunc: sink === 'trunc',
    sinkSpin: sinkWait === 'spin',
    log: (line: string) => process.stderr.write(line + '\n'),
  };
  setWindow(values.window === undefined ? null : Math.trunc(parseNumber('--window', values.window, 16, 1, 1024)));
  const defer = values['defer-taskrun'];
  if (defer !== undefined && defer !== 'on' && defer !== 'off') {
    throw new UsageError(`--defer-taskrun: "${defer}" is not on or off`);
  }
  setRingSettings(defer === undefined ? {} : { deferTaskrun: defer === 'on' });
  const loadStart = loadavg()[0]!;
  const aggs = await runBench(opts);
  const info = {
    loadStart, loadEnd: loadavg()[0]!, seconds: opts.seconds, rounds: opts.rounds, sinkTrunc: opts.sinkTrunc, sinkSpin: opts.sinkSpin, argv: args,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(toJson(aggs)) + '\n');
  } else {
    process.stdout.write(humanReport(aggs, info) + '\n');
  }
  if (values['update-doc']) {
    const file = updateDoc(docSection(aggs, info));
    process.stderr.write(`bench: wrote the table into ${file}\n`);
  }
  return aggs.some((a) => a.error) ? 1 : 0;
}

function parseNames<T extends string>(flag: string, v: string | undefined, known: readonly T[], defaults: readonly T[] = known): T[] {
  if (v === undefined) return [...defaults];
  const names = v.split(',').map((x) => x.trim()).filter(Boolean);
  for (const n of names) {
    if (!(known as readonly string[]).includes(n)) throw new UsageError(`${flag}: unknown mode "${n}" (known: ${known.join(', ')})`);
  }
  const out = known.filter((m) => names.includes(m));
  if (out.length === 0) throw new UsageError(`${flag}: no mode given`);
  return out;
}

function setDefer(v: string | undefined, loopWait?: string): void {
  if (v !== undefined && v !== 'on' && v !== 'off') throw new UsageError(`--defer-taskrun: "${v}" is not on or off`);
  if (loopWait !== undefined && loopWait !== 'auto' && loopWait !== 'epoll' && loopWait !== 'ring') {
    throw new UsageError(`--loop-wait: "${loopWait}" is not auto, epoll or ring`);
  }
  if (loopWait === 'ring' && v === 'on') {
    throw new UsageError('--loop-wait ring: the loop sleeps only in a ring without DEFER_TASKRUN; drop --defer-taskrun on');
  }
  setRingSettings({
    ...(v === undefined ? {} : { deferTaskrun: v === 'on' }),
    ...(loopWait === undefined ? {} : { loopWait: loopWait as 'auto' | 'epoll' | 'ring' }),
  });
}

interface BenchValues {
  mode?: string;
  size?: string;
  seconds?: string;
  rounds?: string;
  warmup?: string;
  window?: string;
  json?: boolean;
  conns?: string;
  'update-doc'?: boolean;
  'defer-taskrun'?: string;
  'loop-wait'?: string;
  pin?: string;
}

/** bench --udp: the veth-drop UDP send benchmark (ts/bench/udp.ts). */
async function cmdBenchUdp(values: BenchValues, argv: string[]): Promise<number> {
  const sizes = parseSizes(values.size ?? UDP_DEFAULT_SIZES.join(','));
  for (const s of sizes) if (s > UDP_MAX_SIZE) throw new UsageError(`--size: ${s} is more than a UDP datagram carries (${UDP_MAX_SIZE})`);
  setDefer(values['defer-taskrun']);
  const pin = values.pin ?? 'off';
  if (pin !== 'on' && pin !== 'off') throw new UsageError(`--pin: "${pin}" is not on or off`);
  const opts = {
    modes: parseNames<UdpMode>('--mode', values.mode, UDP_MODES),
    sizes,
    seconds: parseNumber('--seconds', values.seconds, SEND_DEFAULT_SECONDS, 0.1, MAX_SECONDS),
    rounds: Math.trunc(parseNumber('--rounds', values.rounds, SEND_DEFAULT_ROUNDS, 1, 100)),
    warmupSeconds: parseNumber('--warmup', values.warmup, 0.3, 0, 60),
    window: Math.trunc(parseNumber('--window', values.window, UDP_DEFAULT_WINDOW, 1, 1024)),
    pin: pin === 'on',
    log: (line: string) => process.stderr.write(line + '\n'),
  };
  const loadStart = loadavg()[0]!;
  const aggs = await runUdpBench(opts);
  const info = {
    loadStart, loadEnd: loadavg()[0]!, seconds: opts.seconds, rounds: opts.rounds, sinkTrunc: false, argv, window: opts.window,
    placement: pinText(opts.pin),
  };
  process.stdout.write((values.json ? JSON.stringify(udpJson(aggs)) : udpReport(aggs, info)) + '\n');
  if (values['update-doc']) process.stderr.write(`bench: wrote the table into ${updateDoc(udpDocSection(aggs, info), 'bench-udp')}\n`);
  return aggs.some((a) => a.error) ? 1 : 0;
}

/** bench --rr: request/response (ts/bench/rr.ts). */
async function cmdBenchRr(values: BenchValues, argv: string[]): Promise<number> {
  const sizes = values.size === undefined ? RR_DEFAULT_SIZES : parseSizes(values.size);
  let conns = RR_DEFAULT_CONNS;
  if (values.conns !== undefined) {
    conns = values.conns.split(',').map((x) => Math.trunc(parseNumber('--conns', x.trim(), 1, 1, 10000)));
    conns = [...new Set(conns)].sort((a, b) => a - b);
  }
  setDefer(values['defer-taskrun'], values['loop-wait']);
  const opts = {
    modes: parseNames('--mode', values.mode, RR_MODES, RR_DEFAULT_MODES),
    cases: rrCases(sizes, conns),
    seconds: parseNumber('--seconds', values.seconds, RR_DEFAULT_SECONDS, 0.1, MAX_SECONDS),
    rounds: Math.trunc(parseNumber('--rounds', values.rounds, RR_DEFAULT_ROUNDS, 1, 100)),
    warmupSeconds: parseNumber('--warmup', values.warmup, 0.5, 0, 60),
    log: (line: string) => process.stderr.write(line + '\n'),
  };
  const loadStart = loadavg()[0]!;
  const aggs = rrAggregate(await runRrBench(opts));
  const info = { loadStart, loadEnd: loadavg()[0]!, seconds: opts.seconds, rounds: opts.rounds, sinkTrunc: false, argv };
  process.stdout.write((values.json ? JSON.stringify(rrJson(aggs)) : rrReport(aggs, info)) + '\n');
  if (values['update-doc']) process.stderr.write(`bench: wrote the table into ${updateDoc(rrDocSection(aggs, info), 'bench-rr')}\n`);
  return aggs.some((a) => a.error) ? 1 : 0;
}

/** bench --recv: receive modes (ts/bench/recv.ts), same flags and JSON shape. */
async function cmdBenchRecv(values: { mode?: string; size?: string; seconds?: string; rounds?: string; warmup?: string; json?: boolean; ifname?: string; rxq?: string }): Promise<number> {
  let modes: RecvBenchMode[] = defaultRecvModes();
  if (values.mode !== undefined) {
    const names = values.mode.split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) {
      if (!(RECV_MODE_NAMES as readonly string[]).includes(n)) {
        throw new UsageError(`--mode: unknown receive mode "${n}" (known: ${RECV_MODE_NAMES.join(', ')})`);
      }
    }
    modes = RECV_MODE_NAMES.filter((m) => names.includes(m));
    if (modes.length === 0) throw new UsageError('--mode: no mode given');
  }
  const opts = {
    modes,
    sizes: parseSizes(values.size),
    seconds: parseNumber('--seconds', values.seconds, DEFAULT_SECONDS, 0.1, MAX_SECONDS),
    rounds: Math.trunc(parseNumber('--rounds', values.rounds, 1, 1, 100)),
    warmupSeconds: parseNumber('--warmup', values.warmup, 0.3, 0, 60),
    ifname: values.ifname,
    rxq: Math.trunc(parseNumber('--rxq', values.rxq, 0, 0, 65535)),
    log: (line: string) => process.stderr.write(line + '\n'),
  };
  const aggs = await runRecvBench(opts);
  process.stdout.write((values.json ? JSON.stringify(recvJson(aggs)) : recvReport(aggs, opts)) + '\n');
  return aggs.some((a) => a.error) ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'probe':
        return await cmdProbe(rest);
      case 'bench':
        return await cmdBench(rest);
      case 'build':
        return cmdBuild(rest);
      case 'serve':
        return await cmdServe(rest);
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        process.stdout.write(usage());
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`uring-zc: ${(e as Error).message}\n\n${usage()}`);
      return 2;
    }
    process.stderr.write(`uring-zc: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
