// SPDX-License-Identifier: MIT
// Paired UDP instrument (docs/PERFORMANCE.md, Session 19, udp19): two senders on the veth-drop
// path of a namespace you made (the recipe in ts/bench/netns.ts), round by round.
//   PLACE=once (default): A and B run AT ONCE, both pinned to one vCPU (0 and 1 alternating per
//     round): host effects land on both in the same seconds; compare CPU per send.
//   PLACE=seq: one after the other (order alternating), both pinned to the round's vCPU.
//   PLACE=free: one after the other, unpinned; the vCPU each sender's main thread was seen on
//     (sampled every 10 ms) is printed.
// A sender is `c` (libzc/build/bench/c_zc_fixed --udp, zc-fixed), `c:MODE` (send|zc-fixed) or a
// bench child bundle (see scripts/rr-pair.mjs for how to build one) with an optional mode,
// `/path/X.mjs[:zc-fixed]`; a third part `:defer` runs that sender with DEFER_TASKRUN (`c:zc-fixed:defer`,
// `/path/X.mjs:zc-fixed:defer`; without it every sender runs with DEFER_TASKRUN off).
// usage: NS=<netns> node scripts/udp-pair.mjs A B [rounds=8] [size=65000] [seconds=2] [window=16]
// env: LIB_A / LIB_B (or URING_ZC_LIB) the libzc.so of each build; ENV_A / ENV_B "K=V,K=V";
// WARMUP seconds (0.3); STAT=1 prints each run's context switches and migrations; WARM: the TS child's
// unmeasured 1 s runs before the first round, at least WARM (6), then until one faults no more pages
// than its own buffers (a fresh child's V8 heap grows with its first few million sends, and every page
// fault costs ~20 us of system time in this guest: docs/PERFORMANCE.md, Session 21 kern21).
// TRACE=1 (PLACE=once): kernel time per send without getrusage's tick-sampled user/system split:
//   `perf record` of raw_syscalls, sched_switch and user page faults on both senders for TRACE_S
//   seconds (seconds - WARMUP - 0.5) in the middle of each round; the on-CPU time inside syscalls
//   per send (sends = the SQEs io_uring_enter() took), io_uring_enter's alone, and the faults.
//   The tracepoints cost both senders the same per syscall (one enter per `window` sends each).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [A, B, rounds = '8', size = '65000', seconds = '2', window = '16'] = process.argv.slice(2);
const NS = process.env.NS;
if (!A || !B || !NS) throw new Error('usage: NS=<netns> node scripts/udp-pair.mjs A B [rounds] [size] [seconds] [window]');
const PLACE = process.env.PLACE || 'once';
const WARMUP = process.env.WARMUP || '0.3';
const extra = (s) => Object.fromEntries((s || '').split(',').filter(Boolean).map((kv) => kv.split('=')));
const envOf = (k) => ({ ...process.env, URING_ZC_LIB: process.env[`LIB_${k}`] || process.env.URING_ZC_LIB, ...extra(process.env[`ENV_${k}`]) });
const cBin = join(root, 'libzc', 'build', 'bench', 'c_zc_fixed');

// A TS sender is one child per build for the whole run (warmed by a 1 s run), its main thread pinned
// per round with `taskset -p`; a C sender is a fresh process per run, as in `bench --udp`.
function cmdOf(spec, cpu) {
  const pin = cpu === null ? [] : ['taskset', '-c', String(cpu)];
  if (spec === 'c' || spec.startsWith('c:')) {
    const [mode = 'zc-fixed', defer] = spec.slice(2).split(':').map((x) => x || undefined);
    return { argv: ['ip', 'netns', 'exec', NS, ...pin, cBin, '--udp', '198.18.0.2', '--port', '9', '--size', size,
      '--seconds', seconds, '--warmup', WARMUP, '--window', window, '--mode', mode, ...(defer === 'defer' ? [] : ['--no-defer'])], c: true };
  }
  const [bundle, mode = 'zc-fixed'] = spec.split(':');
  return { argv: ['ip', 'netns', 'exec', NS, ...pin, process.execPath, bundle, 'udp-sender'], c: false, mode };
}

function statOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { cpu: +f[36] };
  } catch {
    return null;
  }
}
function switchesOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return +/voluntary_ctxt_switches:\s+(\d+)/.exec(s)[1] + +/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(s)[1];
  } catch {
    return 0;
  }
}

/** A bench child kept for the whole run (as `bench --udp` keeps its one), warmed by one run first. */
const kids = {};
async function tsChild(spec, key) {
  if (kids[key]) return kids[key];
  const { argv } = cmdOf(spec, null);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: envOf(key) });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  if ((await lines.next()).value !== 'ready') throw new Error(`${spec}: no ready`);
  kids[key] = { child, lines };
  // Warm in 1 s runs: at least WARM of them, then until a run faults no more than its own buffers
  // (heap growth follows the sends, not the seconds: a starved child needs more runs), at most 4 x WARM.
  const warm = +(process.env.WARM || 6), own = +window * Math.ceil(+size / 4096) + 64;
  for (let i = 1; ; i++) {
    const f0 = minflt(child.pid);
    await tsRun(kids[key], spec, 1);
    if ((i >= warm && minflt(child.pid) - f0 <= own) || i >= 4 * warm) break;
  }
  return kids[key];
}
async function tsRun(k, spec, secs) {
  const mode = spec.split(':')[1] || 'zc-fixed';
  k.child.stdin.write(JSON.stringify({ mode, size: +size, seconds: secs, warmupSeconds: +WARMUP, window: +window,
    host: '198.18.0.2', port: 9, deferTaskrun: spec.split(':')[2] === 'defer' }) + '\n');
  const a = JSON.parse((await k.lines.next()).value);
  if (a.error) throw new Error(a.error);
  return { sends: a.sends, bytes: a.bytes, seconds: a.seconds, cpu: a.cpuSeconds, sys: a.sysSeconds };
}
function minflt(pid) {
  try {
    return +readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7];
  } catch {
    return 0;
  }
}

const pids = {};
async function run(spec, key, cpu) {
  const isC = spec === 'c' || spec.startsWith('c:');
  let pid, r, child = null, lines = null, k = null;
  delete pids[key];
  if (isC) {
    const { argv } = cmdOf(spec, cpu);
    child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: envOf(key) });
    lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    pid = child.pid;
  } else {
    k = await tsChild(spec, key);
    pid = k.child.pid;
    const ts = spawnSync('taskset', ['-p', '-c', cpu === null ? '0-1023' : String(cpu), String(pid)], { stdio: 'ignore' });
    if (ts.status !== 0 && cpu !== null) throw new Error('taskset -p failed');
  }
  pids[key] = pid;
  const seen = [0, 0];
  const sampler = setInterval(() => {
    const s = statOf(pid);
    if (s && s.cpu < 2) seen[s.cpu]++;
  }, 10);
  const sw0 = switchesOf(pid), f0 = minflt(pid);
  if (isC) {
    const c = JSON.parse((await lines.next()).value);
    r = { sends: c.sends, bytes: c.bytes, seconds: c.seconds, cpu: c.utime + c.stime, sys: c.stime };
  } else {
    r = await tsRun(k, spec, +seconds);
  }
  const sw = switchesOf(pid) - sw0, flt = minflt(pid) - f0;
  clearInterval(sampler);
  if (child) await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
  return { ...r, us: (r.cpu * 1e6) / r.sends, sysUs: (r.sys * 1e6) / r.sends, mbps: r.bytes / r.seconds / 1e6, seen, sw, flt };
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
/** perf record both senders for TRACE_S s once both run (past their warm-up); per pid: ns per send. */
async function traceRound() {
  while (!pids.A || !pids.B) await sleep(20);
  const pa = pids.A, pb = pids.B;
  await sleep((+WARMUP + 0.2) * 1000);
  const span = +(process.env.TRACE_S || Math.max(0.5, +seconds - +WARMUP - 0.5));
  const out = join(tmpdir(), `udp-pair-${process.pid}.data`);
  const rec = spawn('perf', ['record', '-q', '-m', '4096', '-e',
    'raw_syscalls:sys_enter,raw_syscalls:sys_exit,sched:sched_switch,exceptions:page_fault_user',
    '-p', `${pa},${pb}`, '-o', out, '--', 'sleep', String(span)], { stdio: 'ignore' });
  await new Promise((res) => rec.once('exit', res));
  const txt = spawnSync('perf', ['script', '-i', out, '--ns', '-F', 'pid,tid,time,event,trace'], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout;
  rmSync(out, { force: true });
  return { A: kernelOf(txt, pa), B: kernelOf(txt, pb) };
}
/** On-CPU time inside syscalls of one process's threads (a syscall's time off the CPU, preempted or asleep, left out). */
function kernelOf(txt, pid) {
  const th = new Map();
  const T = (tid) => th.get(tid) ?? (th.set(tid, { nr: -1, t0: null, acc: 0 }), th.get(tid));
  let insys = 0, enter = 0, sends = 0, faults = 0;
  for (const line of txt.split('\n')) {
    const m = /^\s*(\d+)\/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, p, tid, ts, ev, tr] = m, t = +ts;
    if (ev === 'sched:sched_switch') {
      const prev = +/prev_pid=(\d+)/.exec(tr)[1], next = +/next_pid=(\d+)/.exec(tr)[1];
      if (th.has(prev)) { const x = th.get(prev); if (x.t0 !== null) { x.acc += t - x.t0; x.t0 = null; } }
      if (th.has(next)) { const x = th.get(next); if (x.nr >= 0) x.t0 = t; }
      continue;
    }
    if (+p !== pid) continue;
    const x = T(+tid);
    if (ev === 'raw_syscalls:sys_enter') {
      x.nr = +/NR (\d+)/.exec(tr)[1]; x.t0 = t; x.acc = 0;
    } else if (ev === 'raw_syscalls:sys_exit') {
      const nr = +/NR (\d+)/.exec(tr)[1], ret = +/= (-?\d+)/.exec(tr)[1];
      if (x.nr === nr && x.t0 !== null) {
        x.acc += t - x.t0;
        insys += x.acc;
        if (nr === 426) { enter += x.acc; if (ret > 0) sends += ret; }
      }
      x.nr = -1; x.t0 = null;
    } else if (ev === 'exceptions:page_fault_user') faults++;
  }
  if (sends < 1000) return null; // the trace missed this sender (lost events, or it was not sending)
  const per = (s) => (s * 1e9) / sends;
  return { insys: per(insys), enter: per(enter), other: per(insys - enter), faults: (faults * 1000) / sends };
}

const q = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return `${s[0].toFixed(3)} / ${s[(s.length - 1) >> 1].toFixed(3)} / ${s[s.length - 1].toFixed(3)}`;
};
const cpuR = [], sysR = [], mbR = [], kR = [];
const TRACE = process.env.TRACE === '1' && PLACE === 'once';
const fmt = (x) => `${x.us.toFixed(3)} us/send (sys ${x.sysUs.toFixed(3)}) ${x.mbps.toFixed(0)} MB/s` +
  (PLACE === 'free' ? ` vcpu0 ${((100 * x.seen[0]) / Math.max(1, x.seen[0] + x.seen[1])).toFixed(0)}%` : '');
console.log(`udp-pair: PLACE=${PLACE} size ${size} window ${window} ${seconds} s per run, A=${A} B=${B}`);
// The TS children start (and warm) before the first round, so its two senders run at once too.
for (const [spec, key] of [[A, 'A'], [B, 'B']]) if (!(spec === 'c' || spec.startsWith('c:'))) await tsChild(spec, key);
for (let i = 0; i < +rounds; i++) {
  const cpu = PLACE === 'free' ? null : i % 2;
  let a, b, kline = null;
  if (PLACE === 'once') {
    let k;
    [a, b, k] = await Promise.all([run(A, 'A', cpu), run(B, 'B', cpu), TRACE ? traceRound() : null]);
    if (k && (!k.A || !k.B)) {
      kline = '  kernel: the trace missed a sender (this round left out)';
    } else if (k) {
      kR.push(k.B.insys / k.A.insys);
      const f = (x) => `${x.insys.toFixed(0)} ns/send in syscalls (io_uring_enter ${x.enter.toFixed(0)}, other ${x.other.toFixed(1)}), ${x.faults.toFixed(2)} faults/1000 sends`;
      kline = `  kernel: A ${f(k.A)} | B ${f(k.B)} | B/A ${(k.B.insys / k.A.insys).toFixed(3)}`;
    }
  } else if (i % 2 === 0) {
    a = await run(A, 'A', cpu);
    b = await run(B, 'B', cpu);
  } else {
    b = await run(B, 'B', cpu);
    a = await run(A, 'A', cpu);
  }
  cpuR.push(b.us / a.us);
  sysR.push(b.sysUs / a.sysUs);
  mbR.push(b.mbps / a.mbps);
  console.log(`round ${i + 1}${cpu === null ? '' : ` vcpu ${cpu}`}: A ${fmt(a)} | B ${fmt(b)} | B/A cpu ${(b.us / a.us).toFixed(3)} ` +
    `MB/s ${(b.mbps / a.mbps).toFixed(3)}${process.env.STAT ? ` | switches ${a.sw} ${b.sw} faults ${a.flt} ${b.flt}` : ''} | load ${loadavg()[0].toFixed(1)}`);
  if (kline) console.log(kline);
}
console.log(`B/A CPU per send min/median/max: ${q(cpuR)}; sys per send ${q(sysR)}; MB/s ${q(mbR)}` +
  (kR.length ? `; in syscalls per send (traced) ${q(kR)}` : ''));
for (const k of Object.values(kids)) k.child.stdin.end();
