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
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { buildHelpers, childCommand } from './build.ts';
import { runC } from './c-sender.ts';
import { aggregate, progressLine, type Aggregate, type RunOutcome } from './harness.ts';
import { UDP_DST, UDP_PORT, VethDrop } from './netns.ts';
import { ringSettings } from './settings.ts';
import type { SenderResult } from './types.ts';
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
  log: (line: string) => void;
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

  async run(spec: UdpRunSpec): Promise<SenderResult> {
    this.#child.stdin.write(JSON.stringify(spec) + '\n');
    const answer = JSON.parse(await this.#next()) as SenderResult | { error: string };
    if ('error' in answer) throw new Error(answer.error);
    return answer;
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

export async function runUdpBench(opts: UdpBenchOptions): Promise<Aggregate[]> {
  const binDir = buildHelpers();
  const net = VethDrop.create();
  opts.log(`bench --udp: senders run in network namespace ${net.a} (peer ${net.b}), removed at the end`);
  const outcomes: RunOutcome[] = [];
  let child: SenderChild | null = null;
  try {
    child = await SenderChild.start(net);
    const { deferTaskrun } = ringSettings();
    for (let round = 0; round < opts.rounds; round++) {
      for (const size of opts.sizes) {
        for (const mode of opts.modes) {
          const o: RunOutcome = { mode, size, round };
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
              ], net.exec([]));
              o.result = {
                bytes: r.bytes, seconds: r.seconds, cpuSeconds: r.utime + r.stime, sysSeconds: r.stime, sends: r.sends,
                zcUsed: r.zcUsed, zcCopied: r.zcCopied, detail: `window ${opts.window}`,
              };
            } else {
              o.result = await child.run({
                mode: mode as UdpNodeMode, size, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds,
                window: opts.window, host: UDP_DST, port: UDP_PORT, deferTaskrun,
              });
            }
          } catch (e) {
            o.error = e instanceof Error ? e.message : String(e);
          }
          outcomes.push(o);
          opts.log(progressLine(o, opts.rounds).replace(/^bench:/, 'bench --udp:'));
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
