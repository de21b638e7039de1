// SPDX-License-Identifier: MIT
/** Shared shapes of the benchmark harness. */
import { performance } from 'node:perf_hooks';

export interface RunSpec {
  /** bytes per send */
  size: number;
  /** measured seconds (after the warm-up) */
  seconds: number;
  /** seconds sent before measuring starts (JIT, socket buffers, TCP window) */
  warmupSeconds: number;
  /** the sink's port on 127.0.0.1 */
  port: number;
}

/** What a sender measured over the measured span only. */
export interface SenderResult {
  /** bytes the kernel accepted (completed sends) in the span */
  bytes: number;
  /** length of the span */
  seconds: number;
  /** sender process CPU time (user + sys) in the span */
  cpuSeconds: number;
  /** the system (kernel) part of cpuSeconds, when the sender measured it */
  sysSeconds?: number;
  /** sends completed in the span */
  sends: number;
  /** zero-copy sends the kernel reported as sent without a copy */
  zcUsed: number;
  /** zero-copy sends the kernel reported as copied (always, on loopback) */
  zcCopied: number;
  /** free-form detail for the table footnotes (window, threshold, ...) */
  detail?: string;
}

export interface BenchEnv {
  /** directory holding the C helpers (c_zc_fixed, zc_sink) */
  binDir: string;
}

export interface BenchMode {
  name: string;
  /** one line for --help and the table legend */
  describe: string;
  /** whether the mode asks for zero-copy (zc counts are meaningful) */
  zeroCopy: boolean;
  run(spec: RunSpec, env: BenchEnv): Promise<SenderResult>;
}

/** CPU time of this process (all threads), seconds. */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Warm-up/measure/stop phases for in-process senders: call tick() with
 * the bytes completed so far; it returns false once the measured span is
 * over.  Counters are snapshotted at the phase boundaries.
 */
export class Meter {
  private readonly t0: number;
  private startAt = 0;
  /** process.cpuUsage() at the start of the span: user and system from one read */
  private cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };
  private base = { bytes: 0, sends: 0, zcUsed: 0, zcCopied: 0 };
  private measuring = false;
  private result: SenderResult | null = null;
  private calls = 0;

  constructor(private readonly spec: RunSpec) {
    this.t0 = performance.now();
  }

  /**
   * Returns true while the sender should keep sending.  The clock is read
   * on every 16th call, as the C senders read it once per loop turn (a
   * window of completions): a clock read per send would be the bench's
   * own cost, not the sender's.
   */
  tick(bytes: number, sends: number, zcUsed: number, zcCopied: number): boolean {
    if (this.result) return false;
    if ((++this.calls & 15) !== 0) return true;
    const now = performance.now();
    if (!this.measuring) {
      if (now - this.t0 < this.spec.warmupSeconds * 1000) return true;
      this.measuring = true;
      this.startAt = now;
      this.cpu0 = process.cpuUsage();
      this.base = { bytes, sends, zcUsed, zcCopied };
      return true;
    }
    if (now - this.startAt < this.spec.seconds * 1000) return true;
    const cpu = process.cpuUsage(this.cpu0);
    this.result = {
      bytes: bytes - this.base.bytes,
      seconds: (now - this.startAt) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      sysSeconds: cpu.system / 1e6,
      sends: sends - this.base.sends,
      zcUsed: zcUsed - this.base.zcUsed,
      zcCopied: zcCopied - this.base.zcCopied,
    };
    return false;
  }

  get done(): SenderResult | null {
    return this.result;
  }
}

/** Deterministic non-zero fill so payloads are not all zero pages. */
export function fillPattern(buf: Uint8Array): void {
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 31 + 7) & 0xff;
}
