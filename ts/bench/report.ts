// SPDX-License-Identifier: MIT
/** Table, acceptance checks and JSON of a benchmark run. */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './build.ts';
import type { Aggregate } from './harness.ts';
import { formatSize } from './units.ts';
import { ringSettingsText } from './settings.ts';

export const BASELINE = 'node-net';

/** The JSON contract of `uring-zc bench --json`: one entry per mode and size. */
export interface JsonEntry {
  mode: string;
  size: number;
  mbps: number | null;
  cpuPct: number | null;
  zcUsed: number | null;
  zcCopied: number | null;
  error?: string;
}

export function toJson(aggs: Aggregate[]): JsonEntry[] {
  return aggs.map((a) => {
    const e: JsonEntry = {
      mode: a.mode,
      size: a.size,
      mbps: a.mbps === null ? null : round(a.mbps, 1),
      cpuPct: a.cpuPct === null ? null : round(a.cpuPct, 1),
      zcUsed: a.zcUsed,
      zcCopied: a.zcCopied,
    };
    if (a.error) e.error = a.error;
    return e;
  });
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function find(aggs: Aggregate[], mode: string, size: number): Aggregate | undefined {
  return aggs.find((a) => a.mode === mode && a.size === size);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Throughput ratio a / b: the median of the per-round ratios (the two runs
 * of one round are seconds apart, so the drift of a shared machine cancels
 * out), or the ratio of the medians with a single round.
 */
export function ratio(a: Aggregate | undefined, b: Aggregate | undefined): number | null {
  if (!a || !b || a.mbps === null || b.mbps === null || b.mbps === 0) return null;
  const pairs = pairedRatios(a, b);
  return pairs.length > 1 ? median(pairs) : a.mbps / b.mbps;
}

/**
 * The per-round ratios a / b (rounds where both ran) of throughput, or of
 * another per-round figure `by` picks (e.g. system time per send).
 */
export function pairedRatios(
  a: Aggregate | undefined, b: Aggregate | undefined, by: (x: Aggregate) => (number | null)[] = (x) => x.byRound,
): number[] {
  const pairs: number[] = [];
  if (!a || !b) return pairs;
  const bs = by(b);
  by(a).forEach((x, r) => {
    const y = bs[r];
    if (x !== null && y !== null && y !== undefined && y > 0) pairs.push(x / y);
  });
  return pairs;
}

/** Check of a / b >= min on throughput, with the per-CPU-second ratio and the rounds' spread. */
export function throughputCheck(name: string, a: Aggregate | undefined, b: Aggregate | undefined, min: number): Check {
  const value = ratio(a, b);
  const pairs = pairedRatios(a, b);
  const c: Check = { name, value, perCpu: effRatio(a, b), min, pass: value === null ? null : value >= min };
  if (pairs.length > 1) c.range = [Math.min(...pairs), Math.max(...pairs)];
  return c;
}

/** Markdown-compatible table (also readable in a terminal). */
export function table(aggs: Aggregate[]): string {
  const head = [
    'mode', 'size', 'MB/s', `x ${BASELINE}`, 'sender CPU %', 'MB per CPU-s', 'CPU us/send', 'zc used', 'zc copied', 'sink CPU %',
  ];
  const rows: string[][] = [head];
  for (const a of aggs) {
    if (a.mbps === null) {
      rows.push([a.mode, formatSize(a.size), 'error', '', '', '', '', '', '', '']);
      continue;
    }
    rows.push([
      ...throughputCells(a.mode, a.size, a.mbps, ratio(a, find(aggs, BASELINE, a.size)), a.cpuPct!),
      usPerSend(a.cpuUsPerSend),
      a.zeroCopy ? String(a.zcUsed) : '-',
      a.zeroCopy ? String(a.zcCopied) : '-',
      a.sinkCpuPct === null ? '-' : a.sinkCpuPct.toFixed(0),
    ]);
  }
  return toMarkdown(rows);
}

/** The leading cells every bench table shares: mode, size, MB/s, ratio, CPU %, MB per CPU-s. */
export function throughputCells(mode: string, size: number, mbps: number, r: number | null, cpuPct: number): string[] {
  return [
    mode,
    formatSize(size),
    mbps.toFixed(0),
    r === null ? '-' : r.toFixed(2),
    cpuPct.toFixed(0),
    cpuPct > 0 ? ((mbps * 100) / cpuPct).toFixed(0) : '-',
  ];
}

/** CPU microseconds per send, 2 significant decimals below 10. */
export function usPerSend(us: number | null): string {
  if (us === null) return '-';
  return us < 10 ? us.toFixed(2) : us.toFixed(1);
}

/** Rows (first = header) as a markdown table, numbers right-aligned from the third column. */
export function toMarkdown(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(3, ...rows.map((r) => r[i]!.length)));
  const right = rows[0]!.map((_, i) => i >= 2);
  const fmt = (r: string[]): string =>
    '| ' + r.map((c, i) => (right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(' | ') + ' |';
  const rule = '|' + w.map((n, i) => (right[i] ? '-'.repeat(n + 1) + ':' : '-'.repeat(n + 2))).join('|') + '|';
  return [fmt(rows[0]!), rule, ...rows.slice(1).map(fmt)].join('\n');
}

export interface Check {
  name: string;
  /** measured ratio, null when a side is missing */
  value: number | null;
  /** the same ratio of MB per CPU-second (work per CPU time, steadier on a busy box) */
  perCpu: number | null;
  /** value must be >= min ... */
  min: number;
  /** ... or, when set, <= max (latency ratios) */
  max?: number;
  /** lowest and highest per-round ratio (the noise) */
  range?: [number, number];
  pass: boolean | null;
}

export function effRatio(a: Aggregate | undefined, b: Aggregate | undefined): number | null {
  if (!a || !b || a.mbps === null || b.mbps === null || !a.cpuPct || !b.cpuPct) return null;
  return a.mbps / a.cpuPct / (b.mbps / b.cpuPct);
}

/** Best of `modes` at `size` by MB/s (the baseline a target compares with). */
export function bestOf(aggs: Aggregate[], modes: string[], size: number): Aggregate | undefined {
  const got = modes.map((m) => find(aggs, m, size)).filter((a): a is Aggregate => a !== undefined && a.mbps !== null);
  if (got.length !== modes.length) return undefined;
  return got.sort((x, y) => y.mbps! - x.mbps!)[0];
}

/** The TCP targets of issues 2 and 9, evaluated on this run. */
export function acceptance(aggs: Aggregate[]): Check[] {
  const K64 = 64 * 1024;
  const checks: Check[] = [];
  const add = (name: string, a: Aggregate | undefined, b: Aggregate | undefined, min: number): void => {
    checks.push(throughputCheck(name, a, b, min));
  };
  add('(issue 2) zc-fixed 64K / node-net 64K', find(aggs, 'zc-fixed', K64), find(aggs, 'node-net', K64), 1.3);
  add('(issue 9) zc-fixed 64K / c-zc-fixed 64K', find(aggs, 'zc-fixed', K64), find(aggs, 'c-zc-fixed', K64), 0.9);
  for (const size of [...new Set(aggs.map((a) => a.size))]) {
    const best = bestOf(aggs, ['send', 'node-net'], size);
    add(
      `(issue 9) auto ${formatSize(size)} / best of send, node-net${best ? ` (${best.mode})` : ''}`,
      find(aggs, 'auto', size),
      best,
      0.95,
    );
  }
  return checks;
}

export function machineLine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model.trim() ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}`;
}

export interface ReportInfo {
  /** 1-minute load average when the run started and ended */
  loadStart?: number;
  loadEnd?: number;
  seconds: number;
  rounds: number;
  sinkTrunc: boolean;
  /** the TCP sink polled its socket instead of sleeping (`--sink-wait spin`); unset: it slept */
  sinkSpin?: boolean;
  /** the bench arguments, for the reproduce line */
  argv: string[];
}

const LEGEND = [
  'MB = 10^6 bytes. x node-net: throughput ratio to node-net at the same size: the median over rounds of',
  '  the ratio within each round (runs seconds apart), so the drift of a shared machine cancels out.',
  'sender CPU %: CPU time (user+sys, all threads) of the sending process / wall time; 100 = one core.',
  "  For c-zc-fixed it is the child's own getrusage() over the measured span. MB per CPU-s = MB/s / CPU.",
  'CPU us/send: sender CPU time / sends completed (coalesced sends count one each), in microseconds.',
  'zc used / copied: REPORT_USAGE of the completed zero-copy sends. On loopback every one says "copied":',
  '  the kernel copies looped-back zero-copy payloads when it delivers them to the local receiver.',
  '  Expected, not a failure: the sender still skips its own copy into the socket buffer.',
  'sink CPU %: the receiver process (C, recv into a 1 MiB buffer). Polling (--sink-wait spin, the default) it',
  '  reads ~100 whatever it receives; sleeping (--sink-wait sleep), well below 100 = not the bottleneck.',
];

function acceptanceLines(aggs: Aggregate[]): string[] {
  return checkLines(acceptance(aggs), 'targets (this run; judged on MB/s, the per-CPU-second ratio for reference):');
}

/** PASS/FAIL/SKIP lines of checks under a title; [] when nothing was measured. */
export function checkLines(checks: Check[], title: string): string[] {
  if (!checks.some((c) => c.value !== null)) return [];
  const out = [title];
  for (const c of checks) {
    const bound = c.max === undefined ? `>= ${c.min}` : `<= ${c.max}`;
    const v =
      c.value === null
        ? 'not measured'
        : `${c.value.toFixed(3)} (${bound})` +
          (c.range ? `, rounds ${c.range[0].toFixed(2)}..${c.range[1].toFixed(2)}` : '') +
          (c.perCpu === null ? '' : `; per CPU-second ${c.perCpu.toFixed(3)}`);
    out.push(`  ${c.pass === null ? 'SKIP' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${v}`);
  }
  return out;
}

function reproduce(info: ReportInfo): string {
  const args = info.argv.filter((a) => a !== '--update-doc' && a !== '--json');
  return `npx tsx ts/cli/main.ts bench${args.length ? ' ' + args.join(' ') : ''}`;
}

/**
 * One line about machine load, stated, not judged: the bench itself keeps
 * about 1.5 cores busy, and the 1-minute average lags; the sender CPU %
 * column shows whether each sender had its core.
 */
export function loadLine(info: ReportInfo): string {
  const n = cpus().length;
  const end = info.loadEnd ?? loadavg()[0]!;
  const start = info.loadStart ?? end;
  return `load average ${start.toFixed(1)} at start, ${end.toFixed(1)} at end (${n} cores; the bench itself adds about 1.5).`;
}

export function stamp(): string {
  return new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** How the TCP receiver read: into a buffer or MSG_TRUNC, polling or sleeping. */
export function receiverText(info: ReportInfo): string {
  const how = info.sinkTrunc ? 'recv MSG_TRUNC' : 'recv into a 1 MiB buffer';
  const wait = info.sinkSpin
    ? 'polling with MSG_DONTWAIT, never sleeping (--sink-wait spin)'
    : 'sleeping in recv when it has caught up (--sink-wait sleep)';
  return `separate process (zc_sink, ${how}, ${wait})`;
}

export function humanReport(aggs: Aggregate[], info: ReportInfo): string {
  const out: string[] = [];
  out.push(`uring-zc bench: loopback TCP, ${stamp()}`);
  out.push(`machine: ${machineLine()}`);
  out.push(
    `${info.seconds} s measured per run after a warm-up, ${info.rounds} interleaved round(s), median run shown; ` +
      `receiver: ${receiverText(info)}.`,
  );
  out.push(`${capitalize(ringSettingsText())}.`);
  out.push(loadLine(info));
  out.push('');
  out.push(table(aggs));
  out.push('');
  out.push(...LEGEND);
  for (const a of aggs) if (a.error) out.push(`error: ${a.mode} ${formatSize(a.size)}: ${a.error}`);
  const acc = acceptanceLines(aggs);
  if (acc.length) out.push('', ...acc);
  out.push('');
  out.push(`reproduce: make bench   (this run: ${reproduce(info)})`);
  return out.join('\n');
}

/** The TCP section of docs/PERFORMANCE.md (between the bench markers). */
export function docSection(aggs: Aggregate[], info: ReportInfo): string {
  const out: string[] = [];
  out.push(`Measured ${stamp()} on ${machineLine()}, with \`${reproduce(info)}\``);
  out.push(
    `(${info.seconds} s per run after a 0.3 s warm-up, ${info.rounds} interleaved round(s), median run shown, ` +
      'ratios paired per round). ' +
      'The sender runs in the bench process (the C modes in a child process); the receiver is a separate C ' +
      `process on 127.0.0.1 that reads and discards, ${info.sinkSpin ? 'polling its socket, never sleeping' : 'sleeping when it has caught up'}. ` +
      'Each sender keeps about 1 MiB in flight ' +
      '(at least 8 sends): all modes use the same window and Nagle setting; ' +
      ringSettingsText() +
      '. ' +
      capitalize(loadLine(info)),
  );
  out.push('');
  out.push(table(aggs));
  out.push('');
  out.push('```');
  out.push(...LEGEND);
  const acc = acceptanceLines(aggs);
  if (acc.length) out.push('', ...acc);
  out.push('```');
  out.push('');
  out.push(...NOTES, '');
  out.push(
    'Reproduce with `make bench` (all modes, 4K/16K/64K; about 6 minutes). Pick modes and sizes with ' +
      '`--mode node-net,zc-fixed --size 4K,64K`, longer runs with `--seconds N --rounds N`, machine-readable ' +
      'output with `--json`; `--update-doc` rewrites this section. Absolute numbers drift between runs on ' +
      'a shared machine: compare ratios from one run.',
  );
  return out.join('\n');
}

function capitalize(t: string): string {
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** What holds for every run on loopback (design facts, not this run's numbers). */
const NOTES = [
  '- On loopback the kernel copies every zero-copy payload when it delivers it to the local socket',
  '  (ip_local_deliver_finish -> skb_orphan_frags_rx -> skb_copy_ubufs, into freshly allocated pages),',
  '  in the sender\'s own softirq. So zero-copy cannot save CPU here; it costs more: `perf record -a -g`',
  '  on this box (2026-11-24, 64K) put ~41% of the zc-fixed sender\'s samples under skb_copy_ubufs,',
  "  while node-net's own copy into the socket (_copy_from_iter) was ~10% of its samples. C pays the",
  '  same (`--mode c-send,c-zc-fixed`). The zero-copy gain needs a real NIC; loopback measures the',
  '  overhead of each path.',
  '  So `auto` never picks zero-copy to a peer on this host (loopback or one of its own addresses):',
  '  here it sends copies at every size, as `send` does, from pool buffers.',
  "- `send` and `auto` coalesce the copying sends made in one tick into one",
  "  sendmsg (like Node's writev). `zc-fixed` coalesces zero-copy pool sends made in",
  '  one tick into one SENDMSG_ZC from registered buffers (up to 16 buffers / 256 KiB; Linux >= 6.15):',
  '  one request, one notification, one record for several Promises. `c-zc-vec` is C doing the same',
  '  batching; `c-zc-fixed` is the plain one-SEND_ZC-per-buffer C loop.',
  '- `zc` (from a plain Uint8Array) pins the pages on every send and is not coalesced.',
  '- Every mode runs at about 100% of one core on this box, so MB/s is also the work per CPU-second.',
  '  Runs of the same mode taken seconds apart differed by up to 2x here with a sleeping receiver, by',
  '  ~1.1x with the polling one (a shared virtual machine): read the paired ratios, not single MB/s values.',
  '- The receiver polls (`--sink-wait spin`): asleep, it is woken from the sender\'s softirq, each wakeup an',
  '  IPI to a halted vCPU paid by the sender, and how often it sleeps depends on whether it is ahead; runs of',
  '  every mode then fell into a slow regime at random (docs/PERFORMANCE.md, Session 26, tcp26).',
];

/** A measured section for docs/PERFORMANCE.md: prose lines, the table, then notes in a code block. */
export function docBlock(head: string[], tableText: string, notes: string[]): string {
  return [head.join(' '), '', tableText, '', '```', ...notes, '```'].join('\n');
}

/** The one performance document (measurements live there, not in API docs). */
export const PERF_DOC = join(REPO_ROOT, 'docs', 'PERFORMANCE.md');

/**
 * Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`
 * of docs/PERFORMANCE.md (NAME: bench, bench-udp, bench-rr); returns its path.
 */
export function updateDoc(section: string, name = 'bench', file = PERF_DOC): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${file}: no ${start} ... ${end} markers`);
  writeFileSync(file, text.slice(0, a + start.length) + '\n' + section + '\n' + text.slice(b));
  return file;
}
