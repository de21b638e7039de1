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
// `/path/X.mjs[:zc-fixed]`.
// usage: NS=<netns> node scripts/udp-pair.mjs A B [rounds=8] [size=65000] [seconds=2] [window=16]
// env: LIB_A / LIB_B (or URING_ZC_LIB) the libzc.so of each build; ENV_A / ENV_B "K=V,K=V";
// WARMUP seconds (0.3); STAT=1 prints each run's context switches and migrations.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
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
    const mode = spec.slice(2) || 'zc-fixed';
    return { argv: ['ip', 'netns', 'exec', NS, ...pin, cBin, '--udp', '198.18.0.2', '--port', '9', '--size', size,
      '--seconds', seconds, '--warmup', WARMUP, '--window', window, '--mode', mode, '--no-defer'], c: true };
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
  await tsRun(kids[key], spec, 1);
  return kids[key];
}
async function tsRun(k, spec, secs) {
  const mode = spec.split(':')[1] || 'zc-fixed';
  k.child.stdin.write(JSON.stringify({ mode, size: +size, seconds: secs, warmupSeconds: +WARMUP, window: +window,
    host: '198.18.0.2', port: 9, deferTaskrun: false }) + '\n');
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

async function run(spec, key, cpu) {
  const isC = spec === 'c' || spec.startsWith('c:');
  let pid, r, child = null, lines = null, k = null;
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

const q = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return `${s[0].toFixed(3)} / ${s[(s.length - 1) >> 1].toFixed(3)} / ${s[s.length - 1].toFixed(3)}`;
};
const cpuR = [], sysR = [], mbR = [];
const fmt = (x) => `${x.us.toFixed(3)} us/send (sys ${x.sysUs.toFixed(3)}) ${x.mbps.toFixed(0)} MB/s` +
  (PLACE === 'free' ? ` vcpu0 ${((100 * x.seen[0]) / Math.max(1, x.seen[0] + x.seen[1])).toFixed(0)}%` : '');
console.log(`udp-pair: PLACE=${PLACE} size ${size} window ${window} ${seconds} s per run, A=${A} B=${B}`);
for (let i = 0; i < +rounds; i++) {
  const cpu = PLACE === 'free' ? null : i % 2;
  let a, b;
  if (PLACE === 'once') {
    [a, b] = await Promise.all([run(A, 'A', cpu), run(B, 'B', cpu)]);
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
}
console.log(`B/A CPU per send min/median/max: ${q(cpuR)}; sys per send ${q(sysR)}; MB/s ${q(mbR)}`);
for (const k of Object.values(kids)) k.child.stdin.end();
