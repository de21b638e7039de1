// SPDX-License-Identifier: MIT
/**
 * Runs every (mode, size) pair against one sink process, interleaved:
 * for each round, for each size, every mode back to back, so the ratios
 * of one size compare runs taken close together (this box is shared and
 * noisy).  Each round starts at the next mode, going forward in even
 * rounds and backward in odd ones (alternatingOrder), so no mode always
 * runs first or after the same one, and drift over a round favours no side.  With several rounds each pair
 * reports its median run.
 */
import { buildHelpers } from './build.ts';
import { alternatingOrder } from './round-order.ts';
import { Sink } from './sink.ts';
import type { BenchMode, SenderResult } from './types.ts';

export interface BenchOptions {
  modes: BenchMode[];
  sizes: number[];
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  /** sink discards with recv(MSG_TRUNC) instead of copying out */
  sinkTrunc: boolean;
  /**
   * sink polls its socket (recv MSG_DONTWAIT) instead of sleeping in recv:
   * a sleeping sink costs the sender a wakeup IPI per sleep, at a rate set
   * by the sink's phase, not by the mode (`--sink-wait spin`, the default)
   */
  sinkSpin: boolean;
  /** progress lines (stderr) */
  log: (line: string) => void;
}

export interface RunOutcome {
  mode: string;
  size: number;
  round: number;
  result?: SenderResult;
  error?: string;
  /** sink CPU % over its connection (is the receiver the bottleneck?) */
  sinkCpuPct?: number;
}

export interface Aggregate {
  mode: string;
  size: number;
  zeroCopy: boolean;
  /** 1e6 bytes per second */
  mbps: number | null;
  /** sender CPU time / wall time, percent (100 = one core) */
  cpuPct: number | null;
  /** sends completed per second */
  sendsPerSec: number | null;
  /** sender CPU microseconds per completed send */
  cpuUsPerSend: number | null;
  /** the system (kernel) part of cpuUsPerSend; null when the sender did not split it */
  sysUsPerSend: number | null;
  /** sysUsPerSend by round (null: failed or not measured), to pair with other modes */
  sysUsByRound: (number | null)[];
  zcUsed: number | null;
  zcCopied: number | null;
  sinkCpuPct: number | null;
  runs: number;
  /** all rounds' MB/s, for the spread */
  samples: number[];
  /** MB/s by round (null: that round failed), to pair with other modes */
  byRound: (number | null)[];
  detail?: string;
  error?: string;
}

export async function runBench(opts: BenchOptions): Promise<Aggregate[]> {
  const binDir = buildHelpers();
  const sink = await Sink.start(`${binDir}/zc_sink`, { trunc: opts.sinkTrunc, spin: opts.sinkSpin });
  const outcomes: RunOutcome[] = [];
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const size of opts.sizes) {
        for (const mode of alternatingOrder(opts.modes, round)) {
          const o: RunOutcome = { mode: mode.name, size, round };
          const spec = { size, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds, port: sink.port };
          try {
            o.result = await mode.run(spec, { binDir });
            const conn = await sink.nextConnection();
            if (conn.wallSeconds > 0) o.sinkCpuPct = (100 * conn.cpuSeconds) / conn.wallSeconds;
          } catch (e) {
            o.error = e instanceof Error ? e.message : String(e);
            // A failed sender may or may not have connected: don't wait long.
            await sink.nextConnection(1000).catch(() => undefined);
          }
          outcomes.push(o);
          opts.log(progressLine(o, opts.rounds));
        }
      }
    }
  } finally {
    await sink.stop();
  }
  return aggregate(opts.modes, opts.sizes, opts.rounds, outcomes);
}

function mbpsOf(r: SenderResult): number {
  return r.bytes / r.seconds / 1e6;
}

export function progressLine(o: RunOutcome, rounds: number): string {
  const tag = `${rounds > 1 ? `[round ${o.round + 1}/${rounds}] ` : ''}${o.mode} ${o.size}B`;
  if (o.error) return `bench: ${tag}: FAILED: ${o.error}`;
  const r = o.result!;
  return (
    `bench: ${tag}: ${mbpsOf(r).toFixed(0)} MB/s, cpu ${((100 * r.cpuSeconds) / r.seconds).toFixed(0)}%` +
    (r.detail ? ` (${r.detail})` : '')
  );
}

function sysUsPerSend(r: SenderResult): number | null {
  return r.sysSeconds === undefined || r.sends <= 0 ? null : (r.sysSeconds * 1e6) / r.sends;
}

/** Per (mode, size): the median run by MB/s, and every round's MB/s for pairing. */
export function aggregate(
  modes: readonly { name: string; zeroCopy: boolean }[], sizes: readonly number[], rounds: number, outcomes: RunOutcome[],
): Aggregate[] {
  const out: Aggregate[] = [];
  for (const size of sizes) {
    for (const mode of modes) {
      const mine = outcomes.filter((o) => o.mode === mode.name && o.size === size);
      const ok = mine.filter((o) => o.result).sort((a, b) => mbpsOf(a.result!) - mbpsOf(b.result!));
      const base = { mode: mode.name, size, zeroCopy: mode.zeroCopy, runs: ok.length };
      if (ok.length === 0) {
        out.push({
          ...base, mbps: null, cpuPct: null, sendsPerSec: null, cpuUsPerSend: null, sysUsPerSend: null, zcUsed: null, zcCopied: null,
          sinkCpuPct: null, samples: [], byRound: [], sysUsByRound: [],
          error: mine.find((o) => o.error)?.error ?? 'not run',
        });
        continue;
      }
      const med = ok[Math.floor((ok.length - 1) / 2)]!;
      const r = med.result!;
      const agg: Aggregate = {
        ...base,
        mbps: mbpsOf(r),
        cpuPct: (100 * r.cpuSeconds) / r.seconds,
        sendsPerSec: r.sends / r.seconds,
        cpuUsPerSend: r.sends > 0 ? (r.cpuSeconds * 1e6) / r.sends : null,
        sysUsPerSend: sysUsPerSend(r),
        zcUsed: r.zcUsed,
        zcCopied: r.zcCopied,
        sinkCpuPct: med.sinkCpuPct ?? null,
        samples: ok.map((o) => mbpsOf(o.result!)),
        byRound: Array.from({ length: rounds }, (_, round) => {
          const o = mine.find((x) => x.round === round);
          return o?.result ? mbpsOf(o.result) : null;
        }),
        sysUsByRound: Array.from({ length: rounds }, (_, round) => {
          const o = mine.find((x) => x.round === round);
          return o?.result ? sysUsPerSend(o.result) : null;
        }),
      };
      if (r.detail) agg.detail = r.detail;
      out.push(agg);
    }
  }
  return out;
}
