// SPDX-License-Identifier: MIT
/**
 * `bench --udp`'s kernel-time figures: the sender's system time per send
 * (the Meter's split of its own CPU time, and the C sender's stime) reaches
 * the table, and zc-fixed's is paired with c-zc-fixed's round by round.
 * The aggregation is checked on given runs; the Meter on this process's own
 * CPU time (no timing asserted).
 */
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aggregate, type RunOutcome } from '../../ts/bench/harness.ts';
import { Meter, type SenderResult } from '../../ts/bench/types.ts';
import { udpSysLines, udpTable } from '../../ts/bench/udp-report.ts';
import { docSection, humanReport, receiverText, type ReportInfo } from '../../ts/bench/report.ts';
import { alternatingOrder, roundOrder } from '../../ts/bench/round-order.ts';

const MODES = [
  { name: 'zc-fixed', zeroCopy: true },
  { name: 'c-zc-fixed', zeroCopy: true },
  { name: 'node-dgram', zeroCopy: false },
];

function result(sends: number, cpuSeconds: number, sysSeconds?: number): SenderResult {
  const r: SenderResult = { bytes: sends * 8000, seconds: 1, cpuSeconds, sends, zcUsed: sends, zcCopied: 0 };
  if (sysSeconds !== undefined) r.sysSeconds = sysSeconds;
  return r;
}

describe('bench --udp: system time per send', () => {
  it('is shown per mode and paired per round against c-zc-fixed', () => {
    const outcomes: RunOutcome[] = [
      // round 0: zc-fixed 1.5 us sys per send, C 1.0 -> 1.5
      { mode: 'zc-fixed', size: 8000, round: 0, result: result(400_000, 0.8, 0.6) },
      { mode: 'c-zc-fixed', size: 8000, round: 0, result: result(800_000, 0.82, 0.8) },
      { mode: 'node-dgram', size: 8000, round: 0, result: result(300_000, 0.9) },
      // round 1: 1.0 against 1.25 -> 0.8
      { mode: 'zc-fixed', size: 8000, round: 1, result: result(500_000, 0.7, 0.5) },
      { mode: 'c-zc-fixed', size: 8000, round: 1, result: result(600_000, 0.76, 0.75) },
      { mode: 'node-dgram', size: 8000, round: 1, result: result(300_000, 0.9) },
      // round 2: zc-fixed failed, so the round is not paired
      { mode: 'zc-fixed', size: 8000, round: 2, error: 'boom' },
      { mode: 'c-zc-fixed', size: 8000, round: 2, result: result(600_000, 0.76, 0.75) },
      { mode: 'node-dgram', size: 8000, round: 2, result: result(300_000, 0.9) },
    ];
    const aggs = aggregate(MODES, [8000], 3, outcomes);
    const zc = aggs.find((a) => a.mode === 'zc-fixed')!;
    const c = aggs.find((a) => a.mode === 'c-zc-fixed')!;
    const nd = aggs.find((a) => a.mode === 'node-dgram')!;
    expect(zc.sysUsByRound).toEqual([1.5, 1.0, null]);
    expect(c.sysUsByRound).toEqual([1.0, 1.25, 1.25]);
    // A sender that did not split its CPU time has no system figure.
    expect(nd.sysUsPerSend).toBeNull();
    expect(nd.sysUsByRound).toEqual([null, null, null]);

    const table = udpTable(aggs).split('\n');
    const cols = (row: string): string[] => row.split('|').map((x) => x.trim()).filter((x, i, all) => i > 0 && i < all.length - 1);
    const head = cols(table[0]!);
    const sysCol = head.indexOf('sys us/send');
    expect(sysCol).toBe(head.indexOf('CPU us/send') + 1);
    const row = (mode: string): string[] => cols(table.find((l) => cols(l)[0] === mode)!);
    // The row is the median run by MB/s (of two, the slower: round 0's).
    expect(row('zc-fixed')[sysCol]).toBe('1.50');
    expect(row('c-zc-fixed')[sysCol]).toBe('1.25');
    expect(row('node-dgram')[sysCol]).toBe('-');

    expect(udpSysLines(aggs)).toEqual([
      'sys us/send paired per round (kernel time per send against C; 1 = the same kernel work):',
      '  zc-fixed 8000 / c-zc-fixed 8000: 1.150, rounds 0.80..1.50',
    ]);
  });

  it('says nothing without a c-zc-fixed run to pair with', () => {
    const aggs = aggregate(MODES.slice(0, 1), [8000], 1, [
      { mode: 'zc-fixed', size: 8000, round: 0, result: result(1000, 0.01, 0.005) },
    ]);
    expect(udpSysLines(aggs)).toEqual([]);
  });

  it("the Meter splits out the process's system time", () => {
    const m = new Meter({ size: 1, seconds: 0.05, warmupSeconds: 0, port: 0 });
    let sends = 0;
    // stat(2) in the loop, so some of the span is kernel time
    while (m.tick(sends, sends, 0, 0)) {
      statSync('/');
      sends++;
    }
    const r = m.done!;
    expect(r.sysSeconds).toBeDefined();
    expect(r.sysSeconds!).toBeGreaterThanOrEqual(0);
    // part of the process's CPU time (both from the same two readings)
    expect(r.sysSeconds!).toBeLessThanOrEqual(r.cpuSeconds);
  });
});

describe('bench (TCP): the report says how the receiver waited', () => {
  const info = (sinkSpin?: boolean): ReportInfo => ({ seconds: 1, rounds: 1, sinkTrunc: false, argv: [], ...(sinkSpin === undefined ? {} : { sinkSpin }) });

  it('polling (--sink-wait spin) or sleeping, in the header and the doc section', () => {
    expect(receiverText(info(true))).toContain('never sleeping (--sink-wait spin)');
    expect(receiverText(info(false))).toContain('sleeping in recv when it has caught up (--sink-wait sleep)');
    // a report made without the field (the UDP and rr reports) reads as the sleeping receiver
    expect(receiverText(info())).toBe(receiverText(info(false)));
    expect(humanReport([], info(true))).toContain('receiver: separate process (zc_sink, recv into a 1 MiB buffer, polling');
    expect(docSection([], info(true))).toContain('reads and discards, polling its socket, never sleeping.');
    expect(docSection([], info(false))).toContain('reads and discards, sleeping when it has caught up.');
  });
});

describe('bench (TCP): round order', () => {
  const modes = ['node-net', 'send', 'zc', 'zc-fixed', 'auto', 'c-zc-fixed', 'c-zc-vec'];

  it('each round starts at the next mode, forward in even rounds and backward in odd ones', () => {
    expect(alternatingOrder(modes, 0)).toEqual(modes);
    expect(alternatingOrder(modes, 1)).toEqual(['send', 'node-net', 'c-zc-vec', 'c-zc-fixed', 'auto', 'zc-fixed', 'zc']);
    expect(alternatingOrder(modes, 2)).toEqual(roundOrder(modes, 2));
    for (let r = 0; r < 14; r++) {
      const order = alternatingOrder(modes, r);
      expect(order[0]).toBe(modes[r % modes.length]);
      expect([...order].sort()).toEqual([...modes].sort());
    }
    // two modes: the same as roundOrder
    for (let r = 0; r < 4; r++) expect(alternatingOrder(['a', 'b'], r)).toEqual(roundOrder(['a', 'b'], r));
  });

  it('over 5 rounds auto runs after send in 3 rounds and before it in 2 (forward only: after in 2, before in 3)', () => {
    const later = (order: (r: number) => string[]): number[] =>
      [0, 1, 2, 3, 4].map((r) => order(r).indexOf('auto') - order(r).indexOf('send'));
    expect(later((r) => roundOrder(modes, r))).toEqual([3, 3, -4, -4, -4]);
    expect(later((r) => alternatingOrder(modes, r))).toEqual([3, 4, -4, 4, -4]);
  });
});
