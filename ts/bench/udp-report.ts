// SPDX-License-Identifier: MIT
/** Table, targets and JSON of `bench --udp`. */
import type { Aggregate } from './harness.ts';
import {
  checkLines, docBlock, find, loadLine, machineLine, median, pairedRatios, ratio, stamp, throughputCheck, toMarkdown, usPerSend, type Check, type ReportInfo,
} from './report.ts';
import { ringSettingsText } from './settings.ts';
import { UDP_MODE_INFO } from './udp.ts';

export const UDP_BASELINE = 'node-dgram';

/** The JSON contract of `uring-zc bench --udp --json`: one entry per mode and size. */
export interface UdpJsonEntry {
  mode: string;
  size: number;
  mbps: number | null;
  sendsPerSec: number | null;
  cpuPct: number | null;
  zcUsed: number | null;
  zcCopied: number | null;
  error?: string;
}

const round1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);

export function udpJson(aggs: Aggregate[]): UdpJsonEntry[] {
  return aggs.map((a) => {
    const e: UdpJsonEntry = {
      mode: a.mode,
      size: a.size,
      mbps: round1(a.mbps),
      sendsPerSec: a.sendsPerSec === null ? null : Math.round(a.sendsPerSec),
      cpuPct: round1(a.cpuPct),
      zcUsed: a.zcUsed,
      zcCopied: a.zcCopied,
    };
    if (a.error) e.error = a.error;
    return e;
  });
}

export function udpTable(aggs: Aggregate[]): string {
  const rows: string[][] = [
    ['mode', 'size', 'MB/s', `x ${UDP_BASELINE}`, 'x c-zc-fixed', 'sends/s', 'CPU %', 'CPU us/send', 'sys us/send', 'zc used', 'zc copied'],
  ];
  for (const a of aggs) {
    if (a.mbps === null) {
      rows.push([a.mode, String(a.size), 'error', '', '', '', '', '', '', '', '']);
      continue;
    }
    const r = (b: string): string => {
      const x = ratio(a, find(aggs, b, a.size));
      return x === null ? '-' : x.toFixed(2);
    };
    rows.push([
      a.mode,
      String(a.size),
      a.mbps.toFixed(0),
      r(UDP_BASELINE),
      r('c-zc-fixed'),
      a.sendsPerSec!.toFixed(0),
      a.cpuPct!.toFixed(0),
      usPerSend(a.cpuUsPerSend),
      usPerSend(a.sysUsPerSend),
      a.zeroCopy ? String(a.zcUsed) : '-',
      a.zeroCopy ? String(a.zcCopied) : '-',
    ]);
  }
  return toMarkdown(rows);
}

/** Targets of issue 9 for the UDP path. */
export function udpTargets(aggs: Aggregate[]): Check[] {
  const checks: Check[] = [];
  const add = (name: string, a: Aggregate | undefined, b: Aggregate | undefined, min: number): void => {
    checks.push(throughputCheck(name, a, b, min));
  };
  for (const size of [8000, 65000]) {
    add(`zc-fixed ${size} / c-zc-fixed ${size}`, find(aggs, 'zc-fixed', size), find(aggs, 'c-zc-fixed', size), 0.8);
  }
  add('zc-fixed 65000 / node-dgram 65000', find(aggs, 'zc-fixed', 65000), find(aggs, 'node-dgram', 65000), 2.0);
  add('zc-fixed 8000 / node-dgram 8000', find(aggs, 'zc-fixed', 8000), find(aggs, 'node-dgram', 8000), 1.5);
  for (const size of [...new Set(aggs.map((a) => a.size))]) {
    add(`auto ${size} / node-dgram ${size}`, find(aggs, 'auto', size), find(aggs, 'node-dgram', size), 1.0);
  }
  return checks;
}

/**
 * The kernel's share of the gap to C: zc-fixed's system time per send over
 * c-zc-fixed's, the median of the per-round ratios (rounds seconds apart,
 * as for throughput), with their spread.  A ratio near 1 puts the whole
 * gap in user space; above 1, our sends make the kernel work more.
 */
export function udpSysLines(aggs: Aggregate[]): string[] {
  const out: string[] = [];
  for (const size of [...new Set(aggs.map((a) => a.size))]) {
    const pairs = pairedRatios(find(aggs, 'zc-fixed', size), find(aggs, 'c-zc-fixed', size), (x) => x.sysUsByRound);
    if (pairs.length === 0) continue;
    const spread = pairs.length > 1 ? `, rounds ${Math.min(...pairs).toFixed(2)}..${Math.max(...pairs).toFixed(2)}` : '';
    out.push(`  zc-fixed ${size} / c-zc-fixed ${size}: ${median(pairs).toFixed(3)}${spread}`);
  }
  return out.length ? ['sys us/send paired per round (kernel time per send against C; 1 = the same kernel work):', ...out] : [];
}

export const UDP_LEGEND = [
  'UDP datagrams of `size` bytes from namespace A out of a veth whose peer (namespace B) drops them before',
  '  local delivery (destination MAC owned by nobody): the send side of a NIC, with no receiver copying.',
  'x node-dgram, x c-zc-fixed: throughput ratio, the median over rounds of the ratio within each round.',
  'CPU %: sender process CPU time (user+sys, all threads) / wall time over the measured span; 100 = one core.',
  'CPU us/send: sender CPU time / datagrams sent, in microseconds.',
  'sys us/send: the system (kernel) part of it (getrusage; the user/sys split is sampled at the tick).',
  'zc used / copied: REPORT_USAGE of the zero-copy sends ("used" = no copy; this path should say used).',
];

export interface UdpReportInfo extends ReportInfo {
  window: number;
  /** where the senders ran (udp.ts pinText) */
  placement: string;
}

/** The bench-udp section of docs/PERFORMANCE.md. */
export function udpDocSection(aggs: Aggregate[], info: UdpReportInfo): string {
  return docBlock(
    [
      `Measured ${stamp()} on ${machineLine()}, with \`npx tsx ts/cli/main.ts bench ${info.argv.filter((a) => a !== '--update-doc').join(' ')}\``,
      `(${info.seconds} s per run after a warm-up, ${info.rounds} interleaved rounds, median run shown, ratios paired per round;`,
      `${info.window} datagrams in flight per sender; ${ringSettingsText()}; ${info.placement}). ${loadLine(info)}`,
    ],
    udpTable(aggs),
    [
      ...UDP_LEGEND,
      ...checkLines(udpTargets(aggs), 'targets (issue 9, this run; judged on MB/s, per CPU-second for reference):'),
      ...udpSysLines(aggs),
    ],
  );
}

export function udpReport(aggs: Aggregate[], info: UdpReportInfo): string {
  const out: string[] = [];
  out.push(`uring-zc bench --udp: veth-drop path, ${stamp()}`);
  out.push(`machine: ${machineLine()}`);
  out.push(
    `${info.seconds} s measured per run after a warm-up, ${info.rounds} interleaved round(s), median run shown; ` +
      `${info.window} datagrams in flight per sender; ${ringSettingsText()}.`,
  );
  out.push(`${info.placement}.`);
  out.push(loadLine(info));
  out.push('');
  out.push(udpTable(aggs));
  out.push('');
  out.push(...UDP_LEGEND);
  out.push('modes:');
  for (const m of UDP_MODE_INFO) out.push(`  ${m.name.padEnd(11)} ${m.describe}`);
  for (const a of aggs) if (a.error) out.push(`error: ${a.mode} ${a.size}: ${a.error}`);
  const acc = checkLines(udpTargets(aggs), 'targets (issue 9, this run; judged on MB/s, per CPU-second for reference):');
  if (acc.length) out.push('', ...acc);
  const sys = udpSysLines(aggs);
  if (sys.length) out.push('', ...sys);
  out.push('', `reproduce: npx tsx ts/cli/main.ts bench ${info.argv.filter((a) => a !== '--json').join(' ')}`);
  return out.join('\n');
}
