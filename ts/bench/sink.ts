// SPDX-License-Identifier: MIT
/**
 * The receiving end of the benchmark: a separate process (C, zc_sink)
 * that accepts one connection at a time on 127.0.0.1, discards what it
 * reads, and reports bytes and its own CPU time per connection.  It exits
 * when our end of its stdin closes, so it cannot outlive the benchmark.
 * With `spin` it polls its socket instead of sleeping (zc_sink --spin).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface SinkConnection {
  /** bytes received on the connection */
  bytes: number;
  /** sink CPU seconds (user + sys) spent on the connection */
  cpuSeconds: number;
  /** wall seconds from accept to EOF */
  wallSeconds: number;
}

export class Sink {
  readonly port: number;
  /** the sink process's pid (for /proc) */
  get pid(): number {
    return this.child.pid!;
  }
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly waiting: Array<(c: SinkConnection) => void> = [];
  private readonly ready: SinkConnection[] = [];
  private exited = false;

  private constructor(child: ChildProcessByStdio<Writable, Readable, null>, port: number, lines: AsyncIterator<string>) {
    this.child = child;
    this.port = port;
    void this.pump(lines);
  }

  /** Starts `binary` and waits for its "port N" line. */
  static async start(binary: string, opts: { trunc?: boolean; spin?: boolean } = {}): Promise<Sink> {
    const args = [...(opts.trunc ? ['--trunc'] : []), ...(opts.spin ? ['--spin'] : [])];
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(new Error(`bench sink ${binary}: ${e.message}`)));
      child.once('exit', (code, sig) => reject(new Error(`bench sink ${binary} exited (${sig ?? code}) before listening`)));
    });
    const first = await Promise.race([lines.next(), failed]);
    const m = first.done ? null : /^port (\d+)$/.exec(first.value);
    if (!m) {
      child.kill();
      throw new Error(`bench sink ${binary}: unexpected first line ${JSON.stringify(first.value)}`);
    }
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    failed.catch(() => undefined);
    const sink = new Sink(child, Number(m[1]), lines);
    child.once('exit', () => {
      sink.exited = true;
    });
    return sink;
  }

  private async pump(lines: AsyncIterator<string>): Promise<void> {
    for (;;) {
      const r = await lines.next();
      if (r.done) return;
      const m = /^done (\d+) ([\d.]+) ([\d.]+)$/.exec(r.value);
      if (!m) continue;
      const c = { bytes: Number(m[1]), cpuSeconds: Number(m[2]), wallSeconds: Number(m[3]) };
      const w = this.waiting.shift();
      if (w) w(c);
      else this.ready.push(c);
    }
  }

  /** Resolves with the report of the next connection that reaches EOF. */
  nextConnection(timeoutMs = 10_000): Promise<SinkConnection> {
    const c = this.ready.shift();
    if (c) return Promise.resolve(c);
    if (this.exited) return Promise.reject(new Error('bench sink exited'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.waiting.indexOf(done);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error('bench sink: no end-of-connection report within ' + timeoutMs + ' ms'));
      }, timeoutMs);
      const done = (v: SinkConnection): void => {
        clearTimeout(t);
        resolve(v);
      };
      this.waiting.push(done);
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
}
