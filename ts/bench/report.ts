// SPDX-License-Identifier: MIT
/** Table, acceptance checks and JSON of a benchmark run. */
import { cpus, release } from 'node:os';
import type { Aggregate } from './harness.ts';
import { formatSize } from './units.ts';

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

function find(aggs: Aggregate[], mode: string, size: number): Aggregate | undefined {
  return aggs.find((a) => a.mode === mode && a.size === size);
}

function ratio(a: Aggregate | undefined, b: Aggregate | undefined): number | null {
  if (!a || !b || a.mbps === null || b.mbps === null || b.mbps === 0) return null;
  return a.mbps / b.mbps;
}

/** Markdown-compatible table (also readable in a terminal). */
export function table(aggs: Aggregate[]): string {
  const head = ['mode', 'size', 'MB/s', `x ${BASELINE}`, 'sender CPU %', 'MB per CPU-s', 'zc used', 'zc copied', 'sink CPU %'];
  const rows: string[][] = [head];
  for (const a of aggs) {
    if (a.mbps === null) {
      rows.push([a.mode, formatSize(a.size), 'error', '', '', '', '', '', '']);
      continue;
    }
    const r = ratio(a, find(aggs, BASELINE, a.size));
    rows.push([
      a.mode,
      formatSize(a.size),
      a.mbps.toFixed(0),
      r === null ? '-' : r.toFixed(2),
      a.cpuPct!.toFixed(0),
      a.cpuPct! > 0 ? ((a.mbps * 100) / a.cpuPct!).toFixed(0) : '-',
      a.zeroCopy ? String(a.zcUsed) : '-',
      a.zeroCopy ? String(a.zcCopied) : '-',
      a.sinkCpuPct === null ? '-' : a.sinkCpuPct.toFixed(0),
    ]);
  }
  return toMarkdown(rows);
}

function toMarkdown(rows: string[][]): string {
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
  min: number;
  pass: boolean | null;
}

/** The acceptance criteria of issue 2, evaluated on this run. */
export function acceptance(aggs: Aggregate[]): Check[] {
  const K64 = 64 * 1024;
  const K4 = 4 * 1024;
  const checks: Check[] = [];
  const add = (name: string, value: number | null, min: number): void => {
    checks.push({ name, value, min, pass: value === null ? null : value >= min });
  };
  add('zc-fixed 64K / node-net 64K', ratio(find(aggs, 'zc-fixed', K64), find(aggs, 'node-net', K64)), 1.3);
  add('zc-fixed 64K / c-zc-fixed 64K', ratio(find(aggs, 'zc-fixed', K64), find(aggs, 'c-zc-fixed', K64)), 0.9);
  const send4 = find(aggs, 'send', K4);
  const net4 = find(aggs, 'node-net', K4);
  const better = [send4, net4].filter((a) => a && a.mbps !== null).sort((a, b) => b!.mbps! - a!.mbps!)[0];
  add(`auto 4K / best of send, node-net 4K${better ? ` (${better.mode})` : ''}`, send4 && net4 ? ratio(find(aggs, 'auto', K4), better) : null, 0.95);
  return checks;
}

export function machineLine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model.trim() ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}`;
}

export function humanReport(aggs: Aggregate[], info: { seconds: number; rounds: number; sinkTrunc: boolean; notes: string[] }): string {
  const out: string[] = [];
  out.push(`uring-zc bench: loopback TCP, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  out.push(`machine: ${machineLine()}`);
  out.push(
    `${info.seconds} s measured per run after a warm-up, ${info.rounds} round(s) (median shown); ` +
      `receiver: separate process (zc_sink, ${info.sinkTrunc ? 'recv MSG_TRUNC' : 'recv into a 1 MiB buffer'}).`,
  );
  out.push('');
  out.push(table(aggs));
  out.push('');
  out.push('MB = 10^6 bytes. x node-net: throughput ratio vs node-net at the same size, same run.');
  out.push('sender CPU %: process CPU time (user+sys, all threads) / wall time; 100 = one core. For c-zc-fixed');
  out.push('  it is the child process\'s own getrusage() over the measured span.');
  out.push('zc used / copied: REPORT_USAGE of the completed zero-copy sends. On loopback every one is "copied":');
  out.push('  the kernel copies looped-back zero-copy payloads when it delivers them to the local receiver.');
  out.push('  That is expected, not a failure; the sender still skips its own copy into socket buffers.');
  for (const n of info.notes) out.push(n);
  for (const a of aggs) if (a.error) out.push(`error: ${a.mode} ${formatSize(a.size)}: ${a.error}`);
  const checks = acceptance(aggs);
  if (checks.some((c) => c.value !== null)) {
    out.push('');
    out.push('acceptance (issue 2, this run):');
    for (const c of checks) {
      const v = c.value === null ? 'not measured' : `${c.value.toFixed(2)} (>= ${c.min})`;
      out.push(`  ${c.pass === null ? 'SKIP' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${v}`);
    }
  }
  out.push('');
  out.push('reproduce: make bench    (or: npx tsx ts/cli/main.ts bench --mode node-net,zc-fixed --size 64K --seconds 3)');
  return out.join('\n');
}
