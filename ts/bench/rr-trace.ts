// SPDX-License-Identifier: MIT
/**
 * `URING_ZC_BENCH_TRACE=PREFIX`: a diagnostic record of one `bench --rr`
 * peer, for reading the round trip's distribution and what happened on
 * its slow round trips (docs/PERFORMANCE.md, Session 20 p99;
 * scripts/rr-tail.mjs runs the peers and reads these files).
 *
 * Each peer writes `PREFIX.<role>.json` when it ends: its garbage
 * collections (start, duration, kind), the time of every message it
 * handled (the server: each request's handler; the client: each round
 * trip's end and its length), its migrations and context switches, and
 * (uring peers) the ring's counters.  Times are CLOCK_MONOTONIC
 * milliseconds, the same clock in both processes.  Off (the default),
 * nothing of this runs.
 */
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

const PREFIX = process.env['URING_ZC_BENCH_TRACE'] || '';
/** true when this peer records a trace */
export const TRACING = PREFIX !== '';

/**
 * performance.now() + MONO = CLOCK_MONOTONIC in ms (both are uv_hrtime
 * based).  The offset is read between two performance.now() calls, the
 * tightest of 64 tries: a peer preempted between one pair of reads under
 * load put its clock a millisecond or more off the other peer's, and a
 * slow round trip then seemed to hold several of the server's handlers.
 */
function monoOffset(): number {
  let best = Infinity;
  let off = 0;
  for (let i = 0; i < 64; i++) {
    const a = performance.now();
    const hr = Number(process.hrtime.bigint()) / 1e6;
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      off = hr - (a + b) / 2;
    }
  }
  return off;
}
const MONO = TRACING ? monoOffset() : 0;

class Grow {
  a = new Float64Array(1 << 16);
  n = 0;
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  list(): number[] {
    return Array.from(this.a.subarray(0, this.n), (x) => Math.round(x * 1000) / 1000);
  }
}

const gcs: number[][] = [];
const times = new Grow();
const lengths = new Grow();
let observer: PerformanceObserver | null = null;

const KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Start observing garbage collections (no-op unless tracing). */
export function traceStart(): void {
  if (!TRACING || observer) return;
  observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gcs.push([e.startTime + MONO, e.duration, kind]);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** A message handled now (server: a request's handler ran). */
export function traceMessage(now: number): void {
  times.push(now + MONO);
}

/** A round trip of `us` ended at `now` (client, measured span only). */
export function traceRoundTrip(now: number, us: number): void {
  times.push(now + MONO);
  lengths.push(us);
}

function schedFields(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync('/proc/self/sched', 'utf8').split('\n')) {
      const m = /^(?:se\.)?(nr_migrations|nr_switches|nr_voluntary_switches|nr_involuntary_switches)\s*:\s*(\d+)/.exec(line);
      if (m) out[m[1]!] = Number(m[2]);
    }
  } catch {
    // not every kernel has it
  }
  return out;
}

/** CPU ticks (utime + stime) of each thread of this process, by name ("name/tid"). */
function threadTicks(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out[`${name}/${tid}`] = Number(f[11]) + Number(f[12]);
    }
  } catch {
    // a thread ended while read
  }
  return out;
}

let spanTicks: Record<string, number> | null = null;
/** The measured span starts (client): its threads' CPU from now on. */
export function traceSpanStart(): void {
  if (TRACING) spanTicks = threadTicks();
}

/** Write `PREFIX.<role>.json` (no-op unless tracing). */
export function traceWrite(role: string, mode: string, extra: Record<string, unknown> = {}): void {
  if (!TRACING) return;
  observer?.disconnect();
  const cpu = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[36]);
  writeFileSync(
    `${PREFIX}.${role}.json`,
    JSON.stringify({
      role, mode, pid: process.pid, lastCpu: cpu, sched: schedFields(), cpuUsage: process.cpuUsage(),
      gcs: gcs.map(([t, d, k]) => [Math.round(t! * 1000) / 1000, Math.round(d! * 1000) / 1000, KINDS[k!] ?? String(k)]),
      times: times.list(), lengths: lengths.list(), threadTicks: threadTicks(), spanTicks, ...extra,
    }),
  );
}
