// SPDX-License-Identifier: MIT
/**
 * `bench --file`: the same files served over loopback HTTP/1.1 keep-alive
 * by (a) Node's http + fs.createReadStream, (b) `uring-zc serve`, (c)
 * nginx (sendfile on, one worker, a generated config in a temp dir),
 * loaded by wrk: one 1 GiB file over 1 connection, and a 1 MiB file over
 * 16 connections.  Each server is a process of its own; its CPU time
 * (all threads: libuv's pool, io-wq workers, nginx's workers) is read
 * from /proc around each run.  Servers alternate within every round and
 * ratios are paired per round, as the send bench does.  The files are
 * read once before measuring: the page cache is warm.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { chmodSync, closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childCommand } from './build.ts';
import { cpuSecondsOf } from './proc-cpu.ts';

export const FILE_SERVERS = ['node', 'uring-zc', 'nginx'] as const;
export type FileServerKind = (typeof FILE_SERVERS)[number];

export interface FileCase {
  /** '1G' or '1M' */
  file: string;
  bytes: number;
  conns: number;
}

export const FILE_CASES: FileCase[] = [
  { file: '1G', bytes: 1 << 30, conns: 1 },
  { file: '1M', bytes: 1 << 20, conns: 16 },
];

export interface FileRun {
  server: FileServerKind;
  file: string;
  conns: number;
  round: number;
  mbps: number;
  rps: number;
  /** server CPU (user + system, all its threads) / wall time; 100 = one core */
  cpuPct: number;
  errors: number;
}

/** `--json` entries: the median run of each server and case. */
export interface FileJsonEntry {
  server: FileServerKind;
  file: string;
  conns: number;
  mbps: number;
  rps: number;
  cpuPct: number;
}

export interface FileBenchOptions {
  seconds: number;
  rounds: number;
  servers: FileServerKind[];
  cases: FileCase[];
  log: (line: string) => void;
}

/** A process and its direct children (nginx: master and worker). */
function family(pid: number): number[] {
  const out = [pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout.trim() : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

interface Running {
  kind: FileServerKind;
  port: number;
  /** processes whose CPU counts */
  pids: () => number[];
  stop: () => Promise<void>;
  version: string;
}

async function startChild(kind: 'node' | 'uring-zc', root: string): Promise<Running> {
  const { argv, env } = await childCommand('file-server', [kind, root]);
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`bench: the ${kind} file server exited (${code}) before listening`)));
  });
  return {
    kind,
    port,
    pids: () => [child.pid!],
    stop: () => stopChild(child),
    version: kind === 'node' ? `Node ${process.version}` : `uring-zc on Node ${process.version}`,
  };
}

function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

async function startNginx(root: string, dir: string): Promise<Running> {
  const bin = which('nginx');
  if (!bin) throw new Error('bench: nginx is not installed (Debian: nginx-light; `make setup` installs it)');
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    [
      asRoot ? 'user root;' : '',
      'worker_processes 1;',
      'daemon off;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'nginx-error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  sendfile on; tcp_nopush on; tcp_nodelay on;',
      '  keepalive_timeout 65; keepalive_requests 1000000;',
      '  default_type application/octet-stream;',
      `  client_body_temp_path ${join(dir, 'nginx-body')};`,
      `  proxy_temp_path ${join(dir, 'nginx-proxy')};`,
      `  fastcgi_temp_path ${join(dir, 'nginx-fastcgi')};`,
      `  uwsgi_temp_path ${join(dir, 'nginx-uwsgi')};`,
      `  scgi_temp_path ${join(dir, 'nginx-scgi')};`,
      `  server { listen 127.0.0.1:${port}; root ${root}; location / { } }`,
      '}',
      '',
    ].join('\n'),
  );
  const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const child = spawn(bin, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  // listening once a connection is accepted
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || i > 100) throw new Error(`bench: nginx did not start (see ${join(dir, 'nginx-error.log')})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    kind: 'nginx',
    port,
    pids: () => family(child.pid!),
    stop: () => stopChild(child),
    version: (v.stderr || v.stdout).trim().replace(/^nginx version: /, ''),
  };
}

const WRK_SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"bytes":%d,"us":%d,"errors":%d}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout))
end
`;

interface WrkResult {
  requests: number;
  bytes: number;
  seconds: number;
  errors: number;
}

function runWrk(script: string, url: string, conns: number, seconds: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '60s', '-s', script, url];
    const w = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    w.stdout.on('data', (d: Buffer) => (out += d.toString()));
    w.stderr.on('data', (d: Buffer) => (err += d.toString()));
    w.once('exit', (code) => {
      const m = /\{"requests".*\}/.exec(out);
      if (code !== 0 || !m) {
        reject(new Error(`bench: wrk ${args.join(' ')} failed (${code}): ${err || out}`));
        return;
      }
      const j = JSON.parse(m[0]) as { requests: number; bytes: number; us: number; errors: number };
      resolve({ requests: j.requests, bytes: j.bytes, seconds: j.us / 1e6, errors: j.errors });
    });
  });
}

/** Write `bytes` of random data (incompressible; no zero pages). */
function makeFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w', 0o644);
  const chunk = Buffer.allocUnsafe(Math.min(bytes, 16 << 20));
  randomFillSync(chunk);
  for (let off = 0; off < bytes; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off));
  closeSync(fd);
}

/** Read a file once so the page cache holds it. */
function warm(path: string): void {
  spawnSync('cat', [path], { stdio: ['ignore', 'ignore', 'ignore'] });
}

export interface FileBenchResult {
  runs: FileRun[];
  versions: Record<string, string>;
  wrkVersion: string;
}

export async function runFileBench(o: FileBenchOptions): Promise<FileBenchResult> {
  if (!which('wrk')) throw new Error('bench: wrk is not installed (Debian: wrk; `make setup` installs it)');
  const dir = mkdtempSync(join(tmpdir(), `uring-zc-bench-file-${process.pid}-`));
  const root = join(dir, 'www');
  const running: Running[] = [];
  try {
    spawnSync('mkdir', ['-p', root]);
    chmodSync(dir, 0o755); // nginx's worker reads it
    chmodSync(root, 0o755);
    for (const c of o.cases) {
      o.log(`bench: writing ${c.file}.bin (${c.bytes} bytes)`);
      makeFile(join(root, `${c.file}.bin`), c.bytes);
      warm(join(root, `${c.file}.bin`));
    }
    const script = join(dir, 'report.lua');
    writeFileSync(script, WRK_SCRIPT);
    for (const k of o.servers) {
      running.push(k === 'nginx' ? await startNginx(root, dir) : await startChild(k, root));
    }
    const versions: Record<string, string> = {};
    for (const r of running) versions[r.kind] = r.version;
    const wv = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
    const wrkVersion = ((wv.stdout || '') + (wv.stderr || '')).split('\n')[0]!.trim();

    // Warm-up: every server serves every case once (JIT, connection setup, caches).
    for (const c of o.cases) {
      for (const r of running) {
        await runWrk(script, `http://127.0.0.1:${r.port}/${c.file}.bin`, c.conns, Math.min(2, o.seconds));
      }
    }
    const runs: FileRun[] = [];
    for (let round = 0; round < o.rounds; round++) {
      for (const c of o.cases) {
        // rotate the order each round: no server always runs right after another
        const order = running.map((_, i) => running[(i + round) % running.length]!);
        for (const r of order) {
          for (const c2 of o.cases) warm(join(root, `${c2.file}.bin`));
          const pids = r.pids();
          const cpu0 = pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
          const w = await runWrk(script, `http://127.0.0.1:${r.port}/${c.file}.bin`, c.conns, o.seconds);
          const cpu1 = pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
          const run: FileRun = {
            server: r.kind,
            file: c.file,
            conns: c.conns,
            round,
            mbps: w.bytes / w.seconds / 1e6,
            rps: w.requests / w.seconds,
            cpuPct: (100 * (cpu1 - cpu0)) / w.seconds,
            errors: w.errors,
          };
          runs.push(run);
          o.log(
            `bench: round ${round + 1}/${o.rounds} ${r.kind.padEnd(8)} ${c.file} x${c.conns}: ` +
              `${run.mbps.toFixed(0)} MB/s, ${run.rps.toFixed(1)} req/s, server cpu ${run.cpuPct.toFixed(0)}%` +
              (w.errors ? `, ${w.errors} errors` : ''),
          );
        }
      }
    }
    return { runs, versions, wrkVersion };
  } finally {
    for (const r of running) await r.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

export function fileJson(runs: FileRun[]): FileJsonEntry[] {
  const out: FileJsonEntry[] = [];
  const keys = new Set(runs.map((r) => `${r.server}|${r.file}|${r.conns}`));
  for (const k of keys) {
    const rs = runs.filter((r) => `${r.server}|${r.file}|${r.conns}` === k);
    const m = [...rs].sort((a, b) => a.mbps - b.mbps)[Math.floor((rs.length - 1) / 2)]!;
    out.push({ server: m.server, file: m.file, conns: m.conns, mbps: Math.round(m.mbps), rps: Math.round(m.rps * 10) / 10, cpuPct: Math.round(m.cpuPct) });
  }
  return out;
}

interface Ratio {
  label: string;
  median: number;
  min: number;
  max: number;
}

/** Per-round ratios of a over b for one case, on a metric. */
function pairedRatio(runs: FileRun[], a: FileServerKind, b: FileServerKind, c: FileCase, metric: (r: FileRun) => number): Ratio | null {
  const xs: number[] = [];
  const rounds = new Set(runs.map((r) => r.round));
  for (const round of rounds) {
    const ra = runs.find((r) => r.round === round && r.server === a && r.file === c.file);
    const rb = runs.find((r) => r.round === round && r.server === b && r.file === c.file);
    if (ra && rb && metric(rb) > 0) xs.push(metric(ra) / metric(rb));
  }
  if (xs.length === 0) return null;
  return { label: `${a}/${b}`, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

const perCpu = (r: FileRun): number => (r.cpuPct > 0 ? r.mbps / (r.cpuPct / 100) : 0);

export interface FileReportInfo {
  seconds: number;
  rounds: number;
  loadStart: number;
  loadEnd: number;
  versions: Record<string, string>;
  wrkVersion: string;
  date: string;
  host: string;
}

export function fileReport(runs: FileRun[], cases: FileCase[], info: FileReportInfo): string {
  const lines: string[] = [];
  lines.push(
    `Measured ${info.date} on ${info.host}; ${info.rounds} round(s) of ${info.seconds} s per server and case, servers` +
      ' alternating within each round, median run shown; ratios are medians of per-round ratios (min..max).' +
      ` Loopback, keep-alive, wrk (${info.wrkVersion}) with one thread; page cache warm (every file read before each run).` +
      ` Servers: ${Object.entries(info.versions).map(([k, v]) => `${k} = ${v}`).join('; ')}.` +
      ` Load average ${info.loadStart.toFixed(1)} at start, ${info.loadEnd.toFixed(1)} at end (2 cores; wrk and the server are about 2).`,
  );
  lines.push('');
  lines.push('| server   | file | conns |  MB/s |  req/s | server CPU % | MB per CPU-s | errors |');
  lines.push('|----------|------|------:|------:|-------:|-------------:|-------------:|-------:|');
  for (const e of fileJson(runs)) {
    const errs = runs.filter((r) => r.server === e.server && r.file === e.file).reduce((a, r) => a + r.errors, 0);
    const pc = e.cpuPct > 0 ? (e.mbps / (e.cpuPct / 100)).toFixed(0) : '-';
    lines.push(
      `| ${e.server.padEnd(8)} | ${e.file.padEnd(4)} | ${String(e.conns).padStart(5)} | ${String(e.mbps).padStart(5)} | ` +
        `${e.rps.toFixed(1).padStart(6)} | ${String(e.cpuPct).padStart(12)} | ${pc.padStart(12)} | ${String(errs).padStart(6)} |`,
    );
  }
  lines.push('');
  lines.push('```');
  lines.push('MB = 10^6 bytes of response (headers included). server CPU %: user+system time of the server process');
  lines.push('  (all threads: io-wq workers, libuv pool; nginx master + worker) per wall second; 100 = one core.');
  lines.push('targets (issue 13; paired per round):');
  const mark = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
  for (const c of cases) {
    const n = pairedRatio(runs, 'uring-zc', 'node', c, (r) => r.mbps);
    const nc = pairedRatio(runs, 'uring-zc', 'node', c, perCpu);
    const x = pairedRatio(runs, 'uring-zc', 'nginx', c, (r) => r.mbps);
    const xc = pairedRatio(runs, 'uring-zc', 'nginx', c, perCpu);
    const fmt = (r: Ratio): string => `${r.median.toFixed(2)} (${r.min.toFixed(2)}..${r.max.toFixed(2)})`;
    if (n) lines.push(`  ${mark(n.median >= 2)}  ${c.file} x${c.conns} uring-zc/node MB/s: ${fmt(n)} (>= 2.0)`);
    if (nc) lines.push(`  ${mark(nc.median >= 2)}  ${c.file} x${c.conns} uring-zc/node MB per CPU-s: ${fmt(nc)} (>= 2.0)`);
    if (x) lines.push(`  ${mark(x.median >= 0.9)}  ${c.file} x${c.conns} uring-zc/nginx MB/s: ${fmt(x)} (>= 0.9)`);
    if (xc) lines.push(`        ${c.file} x${c.conns} uring-zc/nginx MB per CPU-s: ${fmt(xc)} (for reference)`);
  }
  lines.push('```');
  return lines.join('\n');
}
