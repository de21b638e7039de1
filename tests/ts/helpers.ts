// SPDX-License-Identifier: MIT
/** Shared helpers of the vitest suites: pattern, verifying receivers, leak probes, child processes. */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { libraryPath } from '../../ts/ffi/libzc.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Inside the VM suites (scripts/vm-guest.sh): TCG makes everything ~10x slower. */
export const IN_VM = process.env['URING_ZC_VM'] === '1';

/** URING_ZC_SCALE shrinks (or grows) loop counts; default 1. */
export const SCALE = (() => {
  const v = Number(process.env['URING_ZC_SCALE'] ?? '1');
  return Number.isFinite(v) && v > 0 ? v : 1;
})();

export const scaled = (n: number, min = 1): number => Math.max(min, Math.round(n * SCALE));

/** `make test-full` (URING_ZC_FULL=1): the suites' slow forms. */
export const FULL_RUN = process.env['URING_ZC_FULL'] === '1';

/**
 * Loops that are long to be thorough, not to reach a size: a quarter of
 * scaled() in the VMs' CI form, where KASAN under TCG makes each send some 30
 * times dearer (libzc's tests/helpers.h scaled_vm() does the same).
 */
export const scaledVm = (n: number, min = 1): number =>
  Math.max(min, Math.round(n * SCALE * (IN_VM && !FULL_RUN ? 0.25 : 1)));

/** Byte of the test stream at absolute offset i: a hash, so any reorder, loss or duplication shows. */
export function patternByte(i: number): number {
  let x = (i ^ (i >>> 16)) >>> 0;
  x = Math.imul(x, 0x45d9f3b);
  x ^= x >>> 16;
  x = Math.imul(x, 0x45d9f3b);
  x ^= x >>> 16;
  return x & 0xff;
}

/** Fill dst with the stream pattern starting at stream offset `start`. */
export function fillPattern(dst: Uint8Array, start: number, len = dst.length): void {
  for (let k = 0; k < len; k++) dst[k] = patternByte(start + k);
}

/** A TCP server in this process that checks every byte against the pattern. */
export class PatternReceiver {
  readonly server: net.Server;
  received = 0;
  mismatchAt = -1;
  connections = 0;
  #waiters: { n: number; resolve: () => void }[] = [];
  sockets: net.Socket[] = [];
  #paused: boolean;

  private constructor(server: net.Server, paused: boolean) {
    this.#paused = paused;
    this.server = server;
  }

  static async start(opts: { paused?: boolean; host?: string } = {}): Promise<PatternReceiver> {
    const server = net.createServer({ pauseOnConnect: opts.paused ?? false });
    const r = new PatternReceiver(server, opts.paused ?? false);
    server.on('connection', (s) => {
      r.connections++;
      r.sockets.push(s);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => r.#onData(d));
      if (!r.#paused) s.resume(); // accepted after resume(): reads at once
    });
    await new Promise<void>((res) => server.listen(0, opts.host ?? '127.0.0.1', res));
    return r;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /**
   * A paused receiver starts reading: its connections, and those it
   * accepts later.  (A client's 'connect' can come before the server
   * accepted, so resuming only `sockets` left a connection unread.)
   */
  resume(): void {
    this.#paused = false;
    for (const s of this.sockets) s.resume();
  }

  #onData(d: Buffer): void {
    if (this.mismatchAt < 0) {
      const base = this.received;
      for (let k = 0; k < d.length; k++) {
        if (d[k] !== patternByte(base + k)) {
          this.mismatchAt = base + k;
          break;
        }
      }
    }
    this.received += d.length;
    this.#waiters = this.#waiters.filter((w) => {
      if (this.received >= w.n) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  /** Resolves once n bytes arrived (rejects after timeoutMs). */
  waitFor(n: number, timeoutMs = 20_000): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`receiver: ${this.received} of ${n} bytes after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

/** A UDP socket in this process collecting datagrams. */
export class UdpReceiver {
  readonly socket: dgram.Socket;
  readonly datagrams: Buffer[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];

  private constructor(s: dgram.Socket) {
    this.socket = s;
    s.on('message', (m: Buffer) => {
      this.datagrams.push(m);
      this.#waiters = this.#waiters.filter((w) => (this.datagrams.length >= w.n ? (w.resolve(), false) : true));
    });
  }

  static async start(type: 'udp4' | 'udp6' = 'udp4'): Promise<UdpReceiver> {
    const s = dgram.createSocket(type);
    await new Promise<void>((res) => s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', res));
    return new UdpReceiver(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.datagrams.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`udp: ${this.datagrams.length} of ${n} datagrams`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  close(): Promise<void> {
    return new Promise((res) => this.socket.close(() => res()));
  }
}

/** Open fds of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A /proc/self/status field in kB (VmPin, VmLck, ...). */
export function vmKb(field: 'VmPin' | 'VmLck' | 'VmRSS'): number {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]);
}

/** Default time a child may take: TCG on a shared 2-core machine made a
 * 30 s limit kill a C compile in the VM (abi test, 2026-11-29). */
const RUN_TIMEOUT_MS = IN_VM ? 120_000 : 30_000;

/** Run a command; resolves { code, stdout, stderr } (never rejects on exit code). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: ROOT, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? RUN_TIMEOUT_MS, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}

const bundled = new Map<string, string>();

/**
 * A fixture bundled to plain ESM by esbuild (once per test process), so a
 * child is just `node file.mjs`: no tsx loader in the children.  Under TCG
 * tsx cost seconds per child, and its wasm lexer sometimes died there with
 * "memory access out of bounds".
 */
function bundleFixture(file: string): string {
  let out = bundled.get(file);
  if (out === undefined) {
    out = resolve(ROOT, 'build', 'fixtures', basename(file).replace(/\.ts$/, '.mjs'));
    buildSync({
      entryPoints: [resolve(ROOT, file)],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external', // koffi, zod: from node_modules, as in the repo
      logLevel: 'error',
    });
    bundled.set(file, out);
  }
  return out;
}

/**
 * Run a TypeScript fixture in a child node process (bundled, see above).
 * The bundle does not sit next to ts/ffi, so the child is told where libzc
 * is unless the caller sets URING_ZC_LIB itself.
 */
export function runTs(file: string, args: string[] = [], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; wrap?: string[] } = {}) {
  const argv = [process.execPath, bundleFixture(file), ...args];
  const base = opts.env ?? process.env;
  const env = { ...base, URING_ZC_LIB: base['URING_ZC_LIB'] ?? libraryPath() };
  const [cmd, ...rest] = [...(opts.wrap ?? []), ...argv] as [string, ...string[]];
  return run(cmd, rest, { ...opts, env });
}

/** The one JSON line a fixture prints; on anything else, an error that shows what the child said. */
export function childJson<T = Record<string, unknown>>(r: { code: number | null; signal: string | null; stdout: string; stderr: string }): T {
  try {
    return JSON.parse(r.stdout.trim()) as T;
  } catch {
    throw new Error(
      `child printed no JSON (exit ${r.code}, signal ${r.signal}):\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 4000)}`,
    );
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** This thread's CPU time in clock ticks (utime + stime of /proc/thread-self/stat). */
export function threadTicks(): number {
  const f = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/**
 * CPU time (ms, at 100 ticks/s) this thread spends while its loop waits `ms`
 * for a timer: a loop that sleeps spends next to none, one whose wait never
 * blocks (a sleep that returns at once) about all its share of a CPU.
 */
export async function idleCpuMs(ms: number): Promise<number> {
  const t0 = threadTicks();
  await new Promise<void>((res) => setTimeout(res, ms));
  return (threadTicks() - t0) * 10;
}
