// SPDX-License-Identifier: MIT
/**
 * `bench --udp`: UDP send throughput where zero-copy is real on this kind
 * of box, the veth-drop path (netns.ts): frames leave a veth and are
 * dropped by the peer namespace before local delivery, so zero-copy
 * payloads are never copied (REPORT_USAGE says "used").
 *
 * Every sender runs inside the namespace: the Node modes in one child
 * process kept for the run (udp-sender.ts), the C modes as c_zc_fixed
 * --udp.  Rounds interleave every mode of a size, so paired ratios compare
 * runs seconds apart.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { buildHelpers, childCommand } from './build.ts';
import { runC } from './c-sender.ts';
import { aggregate, progressLine, type Aggregate, type RunOutcome } from './harness.ts';
import { UDP_DST, UDP_PORT, VethDrop } from './netns.ts';
import { minorFaultsOf, statFields } from './proc-cpu.ts';
import { ringSettings } from './settings.ts';
import type { SenderResult } from './types.ts';
import { roundOrder } from './round-order.ts';
import { UDP_NODE_MODES, type UdpNodeMode, type UdpRunSpec } from './udp-sender.ts';

export const UDP_MODE_INFO = [
  { name: 'node-dgram', zeroCopy: false, describe: "Node dgram socket.send() on a connected socket (baseline)" },
  { name: 'copy', zeroCopy: false, describe: "our API: send(PoolBuffer, { mode: 'copy' })" },
  { name: 'zc', zeroCopy: true, describe: "our API: send(Uint8Array, { mode: 'zc' }), pages pinned per send" },
  { name: 'zc-fixed', zeroCopy: true, describe: "our API: send(PoolBuffer, { mode: 'zc' }), registered buffer" },
  { name: 'auto', zeroCopy: true, describe: "our API: send(PoolBuffer, { mode: 'auto' })" },
  { name: 'c-copy', zeroCopy: false, describe: 'C on liburing: plain SEND, same loop (reference)' },
  { name: 'c-zc-fixed', zeroCopy: true, describe: 'C on liburing: SEND_ZC from registered buffers (reference)' },
] as const;
export type UdpMode = (typeof UDP_MODE_INFO)[number]['name'];
export const UDP_MODES: readonly UdpMode[] = UDP_MODE_INFO.map((m) => m.name);
export const UDP_DEFAULT_SIZES = [1400, 8000, 65000];
/** Datagrams in flight per sender (every mode). */
export const UDP_DEFAULT_WINDOW = 16;
/** Largest UDP payload over IPv4. */
export const UDP_MAX_SIZE = 65507;

export interface UdpBenchOptions {
  modes: UdpMode[];
  sizes: number[];
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  window: number;
  /**
   * Pin the senders (`--pin on`): every run of round r on vCPU r mod
   * (vCPUs), the C sender whole, the Node child's main thread (the sending
   * thread; V8's helper threads stay free, as in any Node process).
   * Unpinned, each sender runs where the scheduler puts it, and the
   * progress line says where its main thread ran (docs/PERFORMANCE.md,
   * Session 19, udp19).
   */
  pin: boolean;
  log: (line: string) => void;
}

/** The vCPU a round's senders run on, or null when not pinned (one vCPU, or no taskset). */
export function roundCpu(round: number, pin: boolean): number | null {
  const n = availableParallelism();
  return pin && n > 1 && hasTaskset() ? round % n : null;
}

/** For the report: where this run's senders ran. */
export function pinText(pin: boolean): string {
  if (roundCpu(0, pin) === null) {
    return pin ? 'senders not pinned (one vCPU, or no taskset)' : 'senders not pinned (--pin off): placed by the scheduler';
  }
  return `senders pinned: every run of round r on vCPU r mod ${availableParallelism()} (the C sender, the Node child's main thread)`;
}

/**
 * Where a process's main thread runs, sampled every 10 ms (the
 * `processor` field of /proc/PID/stat): stop() gives the share of samples
 * on each vCPU, for the progress line of an unpinned run.
 */
export function placementSampler(): { watch(pid: number): void; stop(): string } {
  const seen = new Map<number, number>();
  let pid = 0;
  const t = setInterval(() => {
    if (!pid) return;
    try {
      const cpu = Number(statFields(pid)[36]);
      seen.set(cpu, (seen.get(cpu) ?? 0) + 1);
    } catch {
      // gone
    }
  }, 10);
  return {
    watch(p: number) {
      pid = p;
    },
    stop() {
      clearInterval(t);
      const total = [...seen.values()].reduce((a, b) => a + b, 0);
      return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([c, n]) => `vCPU ${c} ${Math.round((100 * n) / total)}%`).join(', ');
    },
  };
}

let tasksetFound: boolean | null = null;
function hasTaskset(): boolean {
  tasksetFound ??= spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  return tasksetFound;
}

/** The Node sender child, started once inside the namespace. */
class SenderChild {
  #child: ChildProcessByStdio<Writable, Readable, null>;
  #lines: AsyncIterator<string>;

  private constructor(child: ChildProcessByStdio<Writable, Readable, null>) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(net: VethDrop): Promise<SenderChild> {
    const { argv, env } = await childCommand('udp-sender');
    const [cmd, ...args] = net.exec(argv) as [string, ...string[]];
    const c = new SenderChild(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], env }));
    const first = await c.#next();
    if (first !== 'ready') throw new Error(`bench --udp: sender child said ${JSON.stringify(first)} instead of ready`);
    return c;
  }

  async #next(): Promise<string> {
    const gone = new Promise<never>((_, reject) =>
      this.#child.once('exit', (code, sig) => reject(new Error(`bench --udp: sender child exited (${sig ?? code})`))),
    );
    gone.catch(() => undefined);
    const r = await Promise.race([this.#lines.next(), gone]);
    this.#child.removeAllListeners('exit');
    if (r.done) throw new Error('bench --udp: sender child closed its output');
    return r.value;
  }

  /** Pin the child's main thread (its pid's task) to one vCPU; the other threads keep theirs. */
  pin(cpu: number): void {
    const r = spawnSync('taskset', ['-p', '-c', String(cpu), String(this.#child.pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bench --udp: taskset -p -c ${cpu} ${this.#child.pid} failed: ${(r.stderr || '').trim()}`);
  }

  async run(spec: UdpRunSpec): Promise<SenderResult> {
    this.#child.stdin.write(JSON.stringify(spec) + '\n');
    const answer = JSON.parse(await this.#next()) as SenderResult | { error: string };
    if ('error' in answer) throw new Error(answer.error);
    return answer;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.stdin.end();
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

/** Most unmeasured runs per Node mode and size before round 1 (warmChild). */
const WARM_MAX_RUNS = 6;

/**
 * Before round 1, each Node mode sends unmeasured, in runs of up to 1 s,
 * until a run faults no more pages than its own buffers (at most
 * WARM_MAX_RUNS): a fresh child's V8 heap grows with its first few million
 * sends and every page fault costs ~20 us of system time in this guest, so
 * round 1 measured the child's growth (zc-fixed ~3% behind at 8000 B,
 * node-dgram ~1.4 us per send; docs/PERFORMANCE.md, Session 21 kern21).
 * The C sender, a fresh process per run, allocates nothing while it sends.
 */
async function warmChild(child: SenderChild, opts: UdpBenchOptions, deferTaskrun: boolean): Promise<void> {
  const modes = opts.modes.filter((m): m is UdpNodeMode => (UDP_NODE_MODES as readonly string[]).includes(m));
  const seconds = Math.min(1, opts.seconds);
  for (const size of opts.sizes) {
    for (const mode of modes) {
      const own = opts.window * Math.ceil(size / 4096) + 64;
      let runs = 0;
      let faults = 0;
      do {
        const f0 = minorFaultsOf(child.pid);
        await child.run({ mode, size, seconds, warmupSeconds: 0, window: opts.window, host: UDP_DST, port: UDP_PORT, deferTaskrun });
        faults = minorFaultsOf(child.pid) - f0;
        runs++;
      } while (faults > own && runs < WARM_MAX_RUNS);
      opts.log(`bench --udp: warmed ${mode} ${size}B: ${runs} unmeasured run(s) of ${seconds} s, ${faults} page faults in the last`);
    }
  }
}

export async function runUdpBench(opts: UdpBenchOptions): Promise<Aggregate[]> {
  const binDir = buildHelpers();
  const net = VethDrop.create();
  opts.log(`bench --udp: senders run in network namespace ${net.a} (peer ${net.b}), removed at the end`);
  const outcomes: RunOutcome[] = [];
  let child: SenderChild | null = null;
  try {
    child = await SenderChild.start(net);
    const { deferTaskrun } = ringSettings();
    await warmChild(child, opts, deferTaskrun);
    for (let round = 0; round < opts.rounds; round++) {
      const cpu = roundCpu(round, opts.pin);
      const pin = cpu === null ? [] : ['taskset', '-c', String(cpu)];
      if (cpu !== null) {
        child.pin(cpu);
        opts.log(`bench --udp: round ${round + 1}/${opts.rounds}: every sender on vCPU ${cpu}`);
      }
      for (const size of opts.sizes) {
        for (const mode of roundOrder(opts.modes, round)) {
          const o: RunOutcome = { mode, size, round };
          const where = cpu === null ? placementSampler() : null;
          try {
            if (mode === 'c-copy' || mode === 'c-zc-fixed') {
              const r = await runC({ binDir }, [
                '--udp', UDP_DST,
                '--port', String(UDP_PORT),
                '--size', String(size),
                '--seconds', String(opts.seconds),
                '--warmup', String(opts.warmupSeconds),
                '--window', String(opts.window),
                '--mode', mode === 'c-copy' ? 'send' : 'zc-fixed',
                ...(deferTaskrun ? [] : ['--no-defer']),
              ], net.exec(pin), (pid) => where?.watch(pid));
              o.result = {
                bytes: r.bytes, seconds: r.seconds, cpuSeconds: r.utime + r.stime, sysSeconds: r.stime, sends: r.sends,
                zcUsed: r.zcUsed, zcCopied: r.zcCopied, detail: `window ${opts.window}`,
              };
            } else {
              where?.watch(child.pid);
              o.result = await child.run({
                mode: mode as UdpNodeMode, size, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds,
                window: opts.window, host: UDP_DST, port: UDP_PORT, deferTaskrun,
              });
            }
          } catch (e) {
            o.error = e instanceof Error ? e.message : String(e);
          }
          outcomes.push(o);
          const placed = where?.stop();
          opts.log(progressLine(o, opts.rounds).replace(/^bench:/, 'bench --udp:') + (placed ? ` [ran on ${placed}]` : ''));
        }
      }
    }
  } finally {
    await child?.stop();
    net.remove();
  }
  const info = UDP_MODE_INFO.filter((m) => opts.modes.includes(m.name));
  return aggregate(info, opts.sizes, opts.rounds, outcomes);
}

export { UDP_NODE_MODES };
