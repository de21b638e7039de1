// SPDX-License-Identifier: MIT
/** Table, targets and JSON of `bench --rr`. */
import { checkLines, docBlock, loadLine, machineLine, median, stamp, toMarkdown, usPerSend, type Check, type ReportInfo } from './report.ts';
import { RR_MODE_INFO, type RrRun } from './rr.ts';
import { loopWaitText, ringSettingsText } from './settings.ts';

export const RR_BASELINE = 'node-net';

/** The JSON contract of `uring-zc bench --rr --json`: one entry per mode and case. */
export interface RrJsonEntry {
  mode: string;
  size: number;
  conns: number;
  p50us: number | null;
  p99us: number | null;
  p999us: number | null;
  msgsPerSec: number | null;
  cpuPct: number | null;
  error?: string;
}

/** One mode and case over all rounds: medians, and per-round values for pairing. */
export interface RrAggregate extends RrJsonEntry {
  /** CPU microseconds (client + server) per round trip */
  cpuUsPerMsg: number | null;
  runs: number;
  byRound: Map<number, { p50us: number; p99us: number; msgsPerSec: number }>;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

export function rrAggregate(runs: RrRun[]): RrAggregate[] {
  const keys: { mode: string; size: number; conns: number }[] = [];
  for (const r of runs) {
    if (!keys.some((k) => k.mode === r.mode && k.size === r.size && k.conns === r.conns)) {
      keys.push({ mode: r.mode, size: r.size, conns: r.conns });
    }
  }
  return keys.map((k) => {
    const mine = runs.filter((r) => r.mode === k.mode && r.size === k.size && r.conns === k.conns);
    const ok = mine.filter((r) => r.result && r.result.seconds > 0 && r.result.msgs > 0);
    if (ok.length === 0) {
      return {
        ...k, p50us: null, p99us: null, p999us: null, msgsPerSec: null, cpuPct: null, cpuUsPerMsg: null, runs: 0,
        byRound: new Map(), error: mine.find((r) => r.error)?.error ?? 'no round trips',
      };
    }
    const med = (f: (r: NonNullable<RrRun['result']>) => number): number => median(ok.map((r) => f(r.result!)));
    const byRound = new Map<number, { p50us: number; p99us: number; msgsPerSec: number }>();
    for (const r of ok) {
      byRound.set(r.round, { p50us: r.result!.p50us, p99us: r.result!.p99us, msgsPerSec: r.result!.msgs / r.result!.seconds });
    }
    return {
      ...k,
      p50us: r1(med((r) => r.p50us)),
      p99us: r1(med((r) => r.p99us)),
      p999us: r1(med((r) => r.p999us)),
      msgsPerSec: Math.round(med((r) => r.msgs / r.seconds)),
      cpuPct: r1(med((r) => (100 * r.cpuSeconds) / r.seconds)),
      cpuUsPerMsg: med((r) => (r.cpuSeconds * 1e6) / r.msgs),
      runs: ok.length,
      byRound,
    };
  });
}

export function rrJson(aggs: RrAggregate[]): RrJsonEntry[] {
  return aggs.map((a) => {
    const e: RrJsonEntry = {
      mode: a.mode, size: a.size, conns: a.conns, p50us: a.p50us, p99us: a.p99us, p999us: a.p999us,
      msgsPerSec: a.msgsPerSec, cpuPct: a.cpuPct,
    };
    if (a.error) e.error = a.error;
    return e;
  });
}

function findAgg(aggs: RrAggregate[], mode: string, size: number, conns: number): RrAggregate | undefined {
  return aggs.find((a) => a.mode === mode && a.size === size && a.conns === conns);
}

/** a / b for one metric: the median of per-round ratios (or of the medians with one round). */
export function rrRatio(a: RrAggregate | undefined, b: RrAggregate | undefined, metric: Metric): number | null {
  if (!a || !b || a[metric] === null || b[metric] === null || b[metric] === 0) return null;
  const pairs = rrPairs(a, b, metric);
  return pairs.length > 1 ? median(pairs) : a[metric]! / b[metric]!;
}

type Metric = 'p50us' | 'p99us' | 'msgsPerSec';

/** Per-round ratios a / b of one metric. */
function rrPairs(a: RrAggregate | undefined, b: RrAggregate | undefined, metric: Metric): number[] {
  const pairs: number[] = [];
  if (!a || !b) return pairs;
  for (const [round, x] of a.byRound) {
    const y = b.byRound.get(round);
    if (y && y[metric] > 0) pairs.push(x[metric] / y[metric]);
  }
  return pairs;
}

export function rrTable(aggs: RrAggregate[]): string {
  const rows: string[][] = [
    ['mode', 'size', 'conns', 'p50 us', 'p99 us', 'p999 us', 'msgs/s', 'p50 x', 'p99 x', 'msgs/s x', 'CPU %', 'CPU us/msg'],
  ];
  for (const a of aggs) {
    if (a.msgsPerSec === null) {
      rows.push([a.mode, String(a.size), String(a.conns), 'error', '', '', '', '', '', '', '', '']);
      continue;
    }
    const base = findAgg(aggs, RR_BASELINE, a.size, a.conns);
    const x = (m: Metric): string => {
      const v = rrRatio(a, base, m);
      return v === null ? '-' : v.toFixed(2);
    };
    rows.push([
      a.mode, String(a.size), String(a.conns), a.p50us!.toFixed(1), a.p99us!.toFixed(1), a.p999us!.toFixed(1),
      String(a.msgsPerSec), x('p50us'), x('p99us'), x('msgsPerSec'), a.cpuPct!.toFixed(0), usPerSend(a.cpuUsPerMsg),
    ]);
  }
  return toMarkdown(rows);
}

/** Targets of issue 9 for request/response. */
export function rrTargets(aggs: RrAggregate[]): Check[] {
  const checks: Check[] = [];
  const add = (name: string, a: RrAggregate | undefined, b: RrAggregate | undefined, m: Metric, bound: { min?: number; max?: number }): void => {
    const v = rrRatio(a, b, m);
    const pairs = rrPairs(a, b, m);
    const c: Check = {
      name, value: v, perCpu: null, min: bound.min ?? 0,
      pass: v === null ? null : bound.max !== undefined ? v <= bound.max : v >= (bound.min ?? 0),
    };
    if (bound.max !== undefined) c.max = bound.max;
    if (pairs.length > 1) c.range = [Math.min(...pairs), Math.max(...pairs)];
    checks.push(c);
  };
  for (const size of [64, 1024]) {
    const u = findAgg(aggs, 'uring', size, 1);
    const n = findAgg(aggs, RR_BASELINE, size, 1);
    add(`uring p50 ${size} B x1 / node-net`, u, n, 'p50us', { max: 1.0 });
    add(`uring p99 ${size} B x1 / node-net`, u, n, 'p99us', { max: 1.0 });
  }
  add(`uring msgs/s 1024 B x1000 / node-net`, findAgg(aggs, 'uring', 1024, 1000), findAgg(aggs, RR_BASELINE, 1024, 1000), 'msgsPerSec', { min: 1.3 });
  return checks;
}

/**
 * What the net-compatible layer costs over the uring API it is built on (issue 9; the
 * uring peers use the callback forms of receive() and send()):
 * duplex / uring per case, paired per round (p50 and CPU per round trip
 * above 1 and messages/s below 1 are its overhead).
 */
export function rrLayerLines(aggs: RrAggregate[]): string[] {
  const out: string[] = [];
  for (const d of aggs) {
    if (d.mode !== 'duplex' || d.msgsPerSec === null) continue;
    const u = findAgg(aggs, 'uring', d.size, d.conns);
    if (!u || u.msgsPerSec === null) continue;
    const f = (m: Metric): string => {
      const v = rrRatio(d, u, m);
      const pairs = rrPairs(d, u, m);
      const range = pairs.length > 1 ? ` (rounds ${Math.min(...pairs).toFixed(2)}..${Math.max(...pairs).toFixed(2)})` : '';
      return v === null ? '-' : `${v.toFixed(2)}${range}`;
    };
    const cpu = d.cpuUsPerMsg !== null && u.cpuUsPerMsg ? (d.cpuUsPerMsg / u.cpuUsPerMsg).toFixed(2) : '-';
    out.push(`  ${d.size} B x${d.conns}: p50 ${f('p50us')}, msgs/s ${f('msgsPerSec')}, CPU us/msg ${cpu} (medians)`);
  }
  return out.length ? ["net-compatible layer over the uring API (duplex / uring, this run):", ...out] : [];
}

export const RR_LEGEND = [
  'Loopback TCP, TCP_NODELAY at both ends; client and server are separate processes of the same mode.',
  'Each connection is a closed loop: send `size` bytes, wait until `size` echoed bytes are back, repeat.',
  'p50/p99/p999: round-trip time percentiles over every round trip of the measured span (all connections).',
  'p50 x, p99 x, msgs/s x: ratio to node-net for the same case, median of the per-round ratios.',
  'CPU %: client + server CPU time / wall time (200 = both cores); CPU us/msg: that CPU time per round trip.',
];

/** The bench-rr section of docs/PERFORMANCE.md. */
export function rrDocSection(aggs: RrAggregate[], info: ReportInfo): string {
  return docBlock(
    [
      `Measured ${stamp()} on ${machineLine()}, with \`npx tsx ts/cli/main.ts bench ${info.argv.filter((a) => a !== '--update-doc').join(' ')}\``,
      `(${info.seconds} s per run after a warm-up, ${info.rounds} interleaved rounds, medians shown, ratios paired per round;`,
      `${ringSettingsText()}; ${loopWaitText()}). ${loadLine(info)}`,
    ],
    rrTable(aggs),
    [...RR_LEGEND, ...rrLayerLines(aggs), ...checkLines(rrTargets(aggs), 'targets (issue 9, this run):')],
  );
}

export function rrReport(aggs: RrAggregate[], info: ReportInfo): string {
  const out: string[] = [];
  out.push(`uring-zc bench --rr: request/response, ${stamp()}`);
  out.push(`machine: ${machineLine()}`);
  out.push(
    `${info.seconds} s measured per run after a warm-up, ${info.rounds} interleaved round(s), medians shown; ` +
      `${ringSettingsText()}; ${loopWaitText()}.`,
  );
  out.push(loadLine(info));
  out.push('');
  out.push(rrTable(aggs));
  out.push('');
  out.push(...RR_LEGEND);
  out.push('modes:');
  for (const m of RR_MODE_INFO) out.push(`  ${m.name.padEnd(9)} ${m.describe}`);
  for (const a of aggs) if (a.error) out.push(`error: ${a.mode} ${a.size} B x${a.conns}: ${a.error}`);
  const layer = rrLayerLines(aggs);
  if (layer.length) out.push('', ...layer);
  const acc = checkLines(rrTargets(aggs), 'targets (issue 9, this run):');
  if (acc.length) out.push('', ...acc);
  out.push('', `reproduce: npx tsx ts/cli/main.ts bench ${info.argv.filter((a) => a !== '--json').join(' ')}`);
  return out.join('\n');
}
