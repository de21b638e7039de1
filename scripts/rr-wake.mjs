// SPDX-License-Identifier: MIT
// The wakee's own time in the 1-connection round trip (docs/PERFORMANCE.md, Session 25 wake25):
// per peer main thread and per wakeup, from the scheduler's and the syscalls' tracepoints
// (perf record -a, CLOCK_MONOTONIC, the client's measured span only):
//   wake    sched_waking of the peer (in its waker's context) -> its sched_switch in (the IPI and
//           the host's wake of a halted vCPU, the scheduler); of it `ipi`: waking -> sched_wakeup
//           (which a wakeup queued to an idle vCPU records there, once it runs)
//   kret    switched in -> the first sys_exit (the blocking syscall's return: io_uring's task
//           work and CQ wait exit, or epoll's)
//   user    that sys_exit -> sys_enter of the syscall that sends (the one in whose context the
//           other peer's sched_waking comes: loopback delivers in the sender's syscall), with the
//           syscalls made between (node-net's read)
//   send    that sys_enter -> the other peer's sched_waking (the kernel's send path, loopback's
//           softirq included)
//   turn    switched in -> send's sys_enter (kret + user)
// Runs `bench --rr`'s peers one pair at a time (modes interleaved per round, ORDER=alt reverses
// every other round), unpinned unless PIN=S,C. Modes: node-net, uring, uring#epoll (#ring, #auto:
// that loopWait), c-uring (libzc/build/bench/c_rr, `make -C libzc/bench`).
// usage: node scripts/rr-wake.mjs BUNDLE [rounds=3] [size=64] [seconds=2] [modes=node-net,uring,c-uring] [dir]
//   BUNDLE: a bench child bundle (see scripts/rr-pair.mjs) inside a checkout; URING_ZC_LIB its libzc.so.
//   ENV_<mode>="K=V,K=V" extra environment for a mode label (`#` written as `_`: ENV_uring_epoll).
//   A label `uring@B` runs that mode from the bundle BUNDLE_B: A/B pairs interleaved in one run.
//   READ=dir only reads an earlier run's perf text.
// x86-64 only (the syscall numbers below), and it reads at most 4 CPUs' idle and MSR events.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';

const [bundle, rounds = '3', size = '64', seconds = '2', modesArg = 'node-net,uring,c-uring', dirArg] = process.argv.slice(2);
const modes = modesArg.split(',');
const dir = process.env.READ || dirArg || `/tmp/rr-wake-${Date.now()}`;
// every syscall (raw_syscalls: the id, and for io_uring_enter its to_submit as args[1])
const EVENTS = ['sched:sched_switch', 'sched:sched_waking', 'sched:sched_wakeup', 'raw_syscalls:sys_enter', 'raw_syscalls:sys_exit', 'power:cpu_idle', 'msr:write_msr'];
const SYSCALL = { 0: 'read', 1: 'write', 20: 'writev', 232: 'epoll_wait', 281: 'epoll_pwait', 426: 'io_uring_enter', 228: 'clock_gettime', 202: 'futex' };
// PROBES=ev1,ev2: uprobe events (perf probe -x ...) splitting `user` at their first hit after the
// return, in this order (each adds its own cost: compare segments, not totals, across settings)
const PROBES = (process.env.PROBES || '').split(',').filter(Boolean);
EVENTS.push(...PROBES);
// SAMPLE=1: cpu-clock samples too (every 40 us of CPU, --perf-basic-prof in node peers): the
// symbols of the samples that fall in each cycle's `user` (split at the first probe when PROBES)
if (process.env.SAMPLE === '1') EVENTS.push('cpu-clock/period=40000/');
// COUNT=ev1,ev2: tracepoints of the peers' main threads (e.g. exceptions:page_fault_user) counted
// per message: in the user leg (return -> the send's enter) and in all
const COUNT = (process.env.COUNT || '').split(',').filter(Boolean);
EVENTS.push(...COUNT);
const COUNTS = new Map();

function start(argv, role, env) {
  const pin = process.env.PIN ? process.env.PIN.split(',') : null;
  const full = pin ? ['taskset', '-c', role === 'server' ? pin[0] : pin[1], ...argv] : argv;
  const c = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env });
  const it = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  return { c, next: async () => (await it.next()).value };
}

function peerArgv(mode, role, args, b) {
  if (mode === 'c-uring') return [join(dirname(bundle), 'c_rr'), role, ...args, '--no-defer'];
  return [process.execPath, ...(process.env.SAMPLE === '1' ? ['--perf-basic-prof'] : []), b ?? bundle, `rr-${role}`, mode, ...args];
}

async function runPair(label, prefix) {
  // a label `uring@B` runs the bundle BUNDLE_B (an A/B pair in one run, interleaved)
  const [modeWait, which] = label.split('@');
  const [mode, wait] = modeWait.split('#');
  const b = which ? process.env[`BUNDLE_${which}`] : undefined;
  if (which && !b) throw new Error(`rr-wake: ${label} needs BUNDLE_${which}`);
  const env = { ...process.env, URING_ZC_BENCH_DEFER_TASKRUN: '0' };
  if (['auto', 'epoll', 'ring'].includes(wait)) env.URING_ZC_BENCH_LOOP_WAIT = wait;
  for (const kv of (process.env[`ENV_${label.replace(/[#@]/g, '_')}`] || '').split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    env[k] = v;
  }
  const s = start(peerArgv(mode, 'server', [], b), 'server', env);
  const port = (await s.next()).split(' ')[1];
  const cl = start(peerArgv(mode, 'client', ['--port', port, '--size', size, '--conns', '1', '--seconds', seconds, '--warmup', '1.5'], b), 'client', env);
  // recorded from here (the client's warm-up covers perf's start), only what concerns the two peers
  const [sp, cp] = [s.c.pid, cl.c.pid];
  const mine = `common_pid == ${sp} || common_pid == ${cp}`;
  const filter = (e) =>
    e.startsWith('cpu-clock') ? null : e === 'sched:sched_switch' ? `prev_pid == ${sp} || prev_pid == ${cp} || next_pid == ${sp} || next_pid == ${cp}`
      : e === 'sched:sched_wakeup' || e === 'sched:sched_waking' ? `pid == ${sp} || pid == ${cp}`
        : e === 'power:cpu_idle' ? null : e === 'msr:write_msr' ? 'msr == 0x6e0' : mine;
  const perf = spawn('perf', ['record', '-q', '-a', '-k', 'CLOCK_MONOTONIC', '-m', '2048', ...EVENTS.flatMap((e) => (filter(e) === null ? ['-e', e] : ['-e', e, '--filter', filter(e)])), '-o', `${prefix}.perf.data`], { stdio: 'ignore' });
  const marks = [];
  let r;
  try {
    let line;
    while ((line = await cl.next()) === 'mark') marks.push(Number(process.hrtime.bigint()) / 1e6);
    r = JSON.parse(line);
    await new Promise((res) => { if (cl.c.exitCode !== null) res(); else { cl.c.once('exit', res); cl.c.stdin.end(); } });
    await new Promise((res) => { s.c.once('exit', res); s.c.stdin.end(); });
  } finally {
    // a peer that died or printed something else must not leave perf record -a running
    if (cl.c.exitCode === null) cl.c.kill();
    if (s.c.exitCode === null) s.c.kill();
    const gone = perf.exitCode !== null || perf.signalCode !== null ? Promise.resolve() : new Promise((res) => perf.once('exit', res));
    perf.kill('SIGINT');
    await gone;
  }
  const fd = openSync(`${prefix}.perf.txt`, 'w');
  spawnSync('perf', ['script', '-i', `${prefix}.perf.data`, ...(process.env.SAMPLE === '1' ? ['-F', 'trace:tid,cpu,time,event,trace', '-F', 'sw:tid,cpu,time,event,ip,sym'] : ['-F', 'tid,cpu,time,event,trace']), '--ns'], { stdio: ['ignore', fd, 'ignore'] });
  closeSync(fd);
  writeFileSync(`${prefix}.json`, JSON.stringify({ ...r, server: s.c.pid, client: cl.c.pid, marks }));
  unlinkSync(`${prefix}.perf.data`);
  return r;
}

if (!process.env.READ) {
  if (!bundle) throw new Error('usage: node scripts/rr-wake.mjs BUNDLE [rounds] [size] [seconds] [modes] [dir]');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < +rounds; i++) {
    const order = process.env.ORDER === 'alt' && i % 2 === 1 ? [...modes].reverse() : modes;
    for (const m of order) {
      const r = await runPair(m, join(dir, `r${i}-${m}`));
      console.log(`round ${i + 1} ${m}: ${r.msgs} round trips p50 ${r.p50us.toFixed(1)} p99 ${r.p99us.toFixed(1)} | load ${loadavg()[0].toFixed(2)}`);
    }
  }
}

// ---------------------------------------------------------------- reading
const q = (s, p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
// DEC=2: segment lengths with 2 decimals (A/B steps below 0.1 us)
const DEC = +(process.env.DEC || 1);
const f1 = (x) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(DEC));

/** user split at the probes: ret -> first probe -> ... -> the send's enter (NaN where one is missing) */
function probeSegs(o) {
  const pts = [['ret', o.ret], ...PROBES.map((p) => [p.split(':')[1], o.hits[p] ?? NaN]), ['send', o.enter]];
  const seg = {};
  for (let i = 1; i < pts.length; i++) seg[`${pts[i - 1][0]}>${pts[i][0]}`] = (pts[i][1] - pts[i - 1][1]) * 1000;
  return seg;
}

const SAMPLES = new Map();

/** Per peer main thread: the wakeup cycles, as segment lengths in us. */
function cycles(prefix, label) {
  const meta = JSON.parse(readFileSync(`${prefix}.json`, 'utf8'));
  const [t0, t1] = meta.marks;
  const peers = [meta.server, meta.client];
  const st = Object.fromEntries(peers.map((p) => [p, { wake: null, in: null, ret: null, enter: null, enterName: '', mid: 0, sent: false, running: false }]));
  const out = Object.fromEntries(peers.map((p) => [p, []]));
  const sysEnters = Object.fromEntries(peers.map((p) => [p, {}]));
  const re = /^\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$/;
  // per vCPU: since when it is idle (null: not), and the TSC-deadline writes since its last idle exit
  const idleSince = [null, null, null, null];
  const msrs = [0, 0, 0, 0];
  for (const line of readFileSync(`${prefix}.perf.txt`, 'utf8').split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const tid = +m[1], t = +m[3] * 1000, ev = m[4], rest = m[5];
    const cpu = +m[2];
    if (ev === 'power:cpu_idle') {
      const x = /state=(\d+)/.exec(rest);
      if (x) {
        if (+x[1] === 4294967295) idleSince[cpu] = null;
        else { idleSince[cpu] = t; msrs[cpu] = 0; }
      }
      continue;
    }
    if (ev === 'msr:write_msr') { msrs[cpu]++; continue; }
    if (ev.startsWith('cpu-clock')) {
      // a sample of a peer's main thread inside its current cycle's user leg (after the return, before the send)
      const s = st[tid];
      if (s && s.in !== null && !s.sent && s.ret !== null) {
        const sym = rest.trim().split(/\s+/).slice(1).join(' ') || '?';
        const part = PROBES.length && !(PROBES[0] in s.hits) ? 'before' : 'after';
        (s.samples ??= []).push([t, `${part} ${sym}`]);
      }
      continue;
    }
    if (ev === 'sched:sched_waking') {
      // in the waker's context (try_to_wake_up's start): the end of the waker's send when the
      // waker is the other peer in its send syscall; the start of the wakee's wake
      const w = /pid=(\d+)/.exec(rest);
      const p = w ? +w[1] : 0;
      if (!st[p]) continue;
      const other = peers.find((x) => x !== p);
      const o = st[other];
      if (tid === other && o.in !== null && !o.sent && o.enter !== null && t >= t0 && t <= t1) {
        if (o.samples) for (const [ts, x] of o.samples) if (ts < o.enter) SAMPLES.set(`${label} ${other === meta.server ? 'server' : 'client'} ${x}`, (SAMPLES.get(`${label} ${other === meta.server ? 'server' : 'client'} ${x}`) ?? 0) + 1);
        o.samples = null;
        out[other].push({ halt: o.ch, msr: o.cmsr, wake: (o.in - o.cw) * 1000, ipi: o.cu !== null ? (o.cu - o.cw) * 1000 : NaN, kret: o.ret !== null ? (o.ret - o.in) * 1000 : NaN, user: o.ret !== null ? (o.enter - o.ret) * 1000 : NaN, send: (t - o.enter) * 1000, turn: (o.enter - o.in) * 1000, mid: o.mid - 1, midNames: o.midNames, sys: o.enterName, ...probeSegs(o) });
        o.sent = true;
      }
      if (!st[p].running && st[p].wake === null) {
        const tc = +(/target_cpu=(\d+)/.exec(rest)?.[1] ?? -1);
        st[p].wake = t; st[p].woken = null;
        st[p].halt = tc >= 0 && idleSince[tc] !== null ? (t - idleSince[tc]) * 1000 : -1;
      }
    } else if (ev === 'sched:sched_wakeup') {
      // where the wakeup took effect (on the wakee's vCPU when queued there by IPI)
      const w = /pid=(\d+)/.exec(rest);
      const p = w ? +w[1] : 0;
      if (st[p] && !st[p].running && st[p].wake !== null && st[p].woken === null) st[p].woken = t;
    } else if (ev === 'sched:sched_switch') {
      const w = /prev_pid=(\d+).*next_pid=(\d+)/.exec(rest);
      if (!w) continue;
      const prev = +w[1], next = +w[2];
      if (st[prev]) st[prev].running = false;
      if (st[next]) {
        const s = st[next];
        s.running = true;
        // a switch-in after a wakeup starts a cycle; one after a preemption continues it
        if (s.wake !== null) { s.cw = s.wake; s.cu = s.woken ?? null; s.ch = s.halt; s.cmsr = msrs[+m[2]]; s.wake = null; s.in = t; s.ret = null; s.enter = null; s.mid = 0; s.sent = false; s.hits = {}; s.midNames = {}; s.samples = null; }
      }
    } else if (st[tid]) {
      const s = st[tid];
      if (s.in === null || s.sent) continue;
      if (COUNT.includes(ev)) {
        const k = `${label} ${tid === meta.server ? 'server' : 'client'} ${ev}`;
        const c = COUNTS.get(k) ?? { all: 0, user: 0, addr: new Map() };
        c.all++;
        if (s.ret !== null && s.enter === null) {
          c.user++;
          const a = /address=(0x[0-9a-f]+)/.exec(rest);
          if (a) { const mb = (BigInt(a[1]) >> 20n).toString(16); c.addr.set(mb, (c.addr.get(mb) ?? 0) + 1); }
        }
        COUNTS.set(k, c);
        continue;
      }
      if (PROBES.includes(ev)) {
        if (s.ret !== null && !(ev in s.hits)) s.hits[ev] = t;
        continue;
      }
      if (ev === 'raw_syscalls:sys_exit') {
        if (s.ret === null) s.ret = t;
      } else if (ev === 'raw_syscalls:sys_enter') {
        if (s.ret !== null) s.mid++;
        s.enter = t;
        const id = /NR (\d+) \(([0-9a-f]+), ([0-9a-f]+)/.exec(rest);
        s.enterName = id ? (SYSCALL[id[1]] ?? `nr${id[1]}`) + (id[1] === '426' ? `(${parseInt(id[3], 16)})` : '') : '?';
        if (id && s.ret !== null && SYSCALL[id[1]] !== 'io_uring_enter' && SYSCALL[id[1]] !== 'write' && SYSCALL[id[1]] !== 'writev') s.midNames[s.enterName] = (s.midNames[s.enterName] ?? 0) + 1;
      }
    }
  }
  // a cycle's wake is only known when the switch-in followed a wakeup: drop the others
  return { meta, peers: Object.fromEntries(peers.map((p) => [p === meta.server ? 'server' : 'client', out[p]])) };
}

function line(label, cs, msgs) {
  if (!cs.length) return `    ${label}: none`;
  const seg = (k) => {
    const v = Float64Array.from(cs.map((c) => c[k]).filter((x) => !Number.isNaN(x))).sort();
    return `${k} ${f1(q(v, 0.5))} (${f1(q(v, 0.1))}-${f1(q(v, 0.9))})`;
  };
  const sys = {};
  for (const c of cs) sys[c.sys] = (sys[c.sys] ?? 0) + 1;
  const mid = cs.reduce((a, c) => a + c.mid, 0) / cs.length;
  const midN = {};
  for (const c of cs) for (const [k, v] of Object.entries(c.midNames)) midN[k] = (midN[k] ?? 0) + v;
  const bins = [[-Infinity, 0, 'running'], [0, 20, '0-20'], [20, 40, '20-40'], [40, 60, '40-60'], [60, 100, '60-100'], [100, Infinity, '100+']].map(([lo, hi, name]) => {
    const b = cs.filter((c) => (lo === -Infinity ? c.halt < 0 : c.halt >= lo && c.halt < hi));
    if (!b.length) return null;
    const w = Float64Array.from(b.map((c) => c.wake)).sort();
    const r = Float64Array.from(b.map((c) => c.wake - c.ipi).filter((x) => !Number.isNaN(x))).sort();
    return `${name} ${(100 * b.length / cs.length).toFixed(0)}% wake ${f1(q(w, 0.5))} (wakeup>in ${f1(q(r, 0.5))}, msr ${(b.reduce((a, c) => a + (c.msr > 0), 0) / b.length).toFixed(2)})`;
  }).filter(Boolean);
  const hs = Float64Array.from(cs.map((c) => c.halt).filter((x) => x >= 0)).sort();
  return `    ${label}: ${cs.length} cycles (${(cs.length / msgs).toFixed(2)}/msg), halt before the waking p50 ${f1(q(hs, 0.5))} us; by halt: ${bins.join('; ')}\n      ${label}: ${cs.length} cycles (${(cs.length / msgs).toFixed(2)}/msg); p50 (p10-p90) us: ${['wake', 'ipi', 'kret', 'user', 'turn', 'send', ...Object.keys(cs[0]).filter((k) => k.includes('>'))].map(seg).join(', ')}; syscalls between ${mid.toFixed(2)} (${Object.entries(midN).map(([k, v]) => `${k} ${(v / cs.length).toFixed(2)}`).join(' ')}); send by ${Object.entries(sys).map(([k, v]) => `${k} ${v}`).join(' ')}`;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.perf.txt'));
const byMode = {};
console.log(`traces in ${dir}`);
for (const f of files.sort()) {
  const prefix = join(dir, f.slice(0, -'.perf.txt'.length));
  const mode = f.slice(f.indexOf('-') + 1, -'.perf.txt'.length);
  const { meta, peers } = cycles(prefix, mode);
  console.log(`${f.split('-')[0]} ${mode}: ${meta.msgs} round trips p50 ${meta.p50us.toFixed(1)} p99 ${meta.p99us.toFixed(1)}`);
  console.log(line('server', peers.server, meta.msgs));
  console.log(line('client', peers.client, meta.msgs));
  const b = (byMode[mode] ??= { server: [], client: [], msgs: 0, p50: [] });
  for (const c of peers.server) b.server.push(c);
  for (const c of peers.client) b.client.push(c);
  b.msgs += meta.msgs;
  b.p50.push(meta.p50us);
}
if (SAMPLES.size) {
  console.log('\nsamples in the user leg (all rounds; before/after the first probe):');
  for (const m of new Set([...SAMPLES.keys()].map((k) => k.split(' ')[0]))) {
    const mine = [...SAMPLES.entries()].filter(([k]) => k.startsWith(`${m} `));
    const tot = mine.reduce((a, [, v]) => a + v, 0);
    console.log(`${m}: ${tot} samples`);
    for (const [k, v] of mine.sort((a, b) => b[1] - a[1]).slice(0, +(process.env.TOP || 40))) console.log(`${String(v).padStart(6)} ${(100 * v / tot).toFixed(1).padStart(5)}% ${k}`);
  }
}
for (const [k, c] of COUNTS) {
  const mode = k.split(' ')[0];
  const msgs = byMode[mode]?.msgs ?? NaN;
  console.log(`${k}: ${(c.all / msgs).toFixed(3)}/msg, in the user leg ${(c.user / msgs).toFixed(3)}/msg; user-leg addresses by MiB: ${[...c.addr.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([a, v]) => `${a}00000 ${v}`).join(', ')}`);
}
console.log('\npooled:');
for (const [mode, b] of Object.entries(byMode)) {
  console.log(`${mode}: p50 by round ${b.p50.map(f1).join(' ')}`);
  console.log(line('server', b.server, b.msgs));
  console.log(line('client', b.client, b.msgs));
}
