// SPDX-License-Identifier: MIT
// The round trip's distribution, and what happened on its slow round trips (docs/PERFORMANCE.md,
// Session 20 p99). Runs `bench --rr`'s peers the way the bench does (one pair at a time, unpinned,
// the modes interleaved per round) with URING_ZC_BENCH_TRACE set (ts/bench/rr-trace.ts), then reads
// the peers' traces: percentiles and a histogram per mode, garbage collections per message, the
// round trip split at the server's handler (request leg: client's record -> server's handler; reply
// leg: server's handler -> client's record), and the slow round trips (above node-net's p99 of the
// same round) by what overlapped them.
// usage: node scripts/rr-tail.mjs BUNDLE [rounds=4] [size=64] [seconds=2] [modes=node-net,uring] [dir]
//   BUNDLE: a bench child bundle (ts/bench/child.ts, see scripts/rr-pair.mjs), inside a checkout
//   (its node_modules); URING_ZC_LIB: its libzc.so. PIN=S,C pins server and client (taskset).
//   A mode `uring#epoll` (#auto, #ring) runs uring with that loopWait (URING_ZC_BENCH_LOOP_WAIT);
//   `uring#epoll#nested` also with URING_ZC_DOORBELL=nested (the doorbell's nested set).
//   READ=dir only reads the traces of an earlier run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { join } from 'node:path';

const [bundle, rounds = '4', size = '64', seconds = '2', modesArg = 'node-net,uring', dirArg] = process.argv.slice(2);
const modes = modesArg.split(',');
const dir = process.env.READ || dirArg || `/tmp/rr-tail-${Date.now()}`;

function start(bundle, args, env) {
  const pin = process.env.PIN ? process.env.PIN.split(',') : null;
  const cpu = pin ? (args[0] === 'rr-server' ? pin[0] : pin[1]) : null;
  const argv = cpu !== null ? ['taskset', '-c', cpu, process.execPath, bundle, ...args] : [process.execPath, bundle, ...args];
  const c = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env });
  const it = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  return { c, next: async () => (await it.next()).value };
}

async function runPair(mode, prefix, wait) {
  const env = { ...process.env, URING_ZC_BENCH_TRACE: prefix, URING_ZC_BENCH_DEFER_TASKRUN: '0' };
  // a mode label `uring#epoll` (or #ring, #auto) runs that mode with that loopWait
  if (['auto', 'epoll', 'ring'].includes(wait)) env.URING_ZC_BENCH_LOOP_WAIT = wait;
  // ... and `uring#epoll#nested` with the doorbell's nested epoll set instead of a poll per socket
  if (prefix.endsWith('#nested')) env.URING_ZC_DOORBELL = 'nested';
  // PERF=1: the scheduler's and the idle loop's events of the whole run (perf record -a,
  // CLOCK_MONOTONIC, the traces' clock), read below: every wakeup of a peer's main thread
  const perf = process.env.PERF === '1'
    ? spawn('perf', ['record', '-q', '-a', '-k', 'CLOCK_MONOTONIC', '-e', 'sched:sched_switch', '-e', 'sched:sched_waking', '-e', 'sched:sched_wakeup', '-e', 'power:cpu_idle', '-o', `${prefix}.perf.data`], { stdio: 'ignore' })
    : null;
  if (perf) await new Promise((r) => setTimeout(r, 500));
  const s = start(bundle, ['rr-server', mode], env);
  const port = (await s.next()).split(' ')[1];
  const cl = start(bundle, ['rr-client', mode, '--port', port, '--size', size, '--conns', '1', '--seconds', seconds, '--warmup', '0.5'], env);
  let line;
  while ((line = await cl.next()) === 'mark');
  const r = JSON.parse(line);
  await new Promise((res) => { if (cl.c.exitCode !== null) res(); else { cl.c.once('exit', res); cl.c.stdin.end(); } });
  await new Promise((res) => { s.c.once('exit', res); s.c.stdin.end(); });
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((res) => perf.once('exit', res));
    const out = spawnSync('perf', ['script', '-i', `${prefix}.perf.data`, '-F', 'cpu,time,event,trace'], { maxBuffer: 1 << 30, encoding: 'utf8' });
    writeFileSync(`${prefix}.perf.txt`, out.stdout);
    unlinkSync(`${prefix}.perf.data`);
  }
  return r;
}

if (!process.env.READ) {
  if (!bundle) throw new Error('usage: node scripts/rr-tail.mjs BUNDLE [rounds] [size] [seconds] [modes] [dir]');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < +rounds; i++) {
    // ORDER=alt: every other round runs the modes in reverse order (an order effect shows as a
    // difference between the two kinds of round)
    const order = process.env.ORDER === 'alt' && i % 2 === 1 ? [...modes].reverse() : modes;
    for (const mode of order) {
      const r = await runPair(mode.split('#')[0], join(dir, `r${i}-${mode}`), mode.split('#')[1]);
      console.log(`round ${i + 1} ${mode}: ${r.msgs} round trips p50 ${r.p50us.toFixed(1)} p99 ${r.p99us.toFixed(1)} p999 ${r.p999us.toFixed(1)} | load ${loadavg()[0].toFixed(2)}`);
    }
  }
}

// ---------------------------------------------------------------- reading
const q = (s, p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
const sorted = (a) => Float64Array.from(a).sort();
const f1 = (x) => (x === undefined ? '-' : x.toFixed(1));
const EDGES = [0, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 160, 180, 200, 250, 300, 500, 1000, Infinity];

function load(prefix) {
  const c = JSON.parse(readFileSync(`${prefix}.client.json`, 'utf8'));
  const s = JSON.parse(readFileSync(`${prefix}.server.json`, 'utf8'));
  return { c, s };
}

// Wakeups of each peer's main thread from the perf text: latency from sched_wakeup to its
// sched_switch in, by whether the target vCPU was idle (halted) then and for how long.
function wakeups(prefix, pids, t0, t1) {
  const file = `${prefix}.perf.txt`;
  if (!existsSync(file)) return null;
  const idleSince = [null, null, null, null];
  const pending = new Map();
  const waking = new Map();
  const out = Object.fromEntries(pids.map((p) => [p, []]));
  const re = /\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$/;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const cpu = +m[1], t = +m[2] * 1000, ev = m[3], rest = m[4];
    if (ev === 'power:cpu_idle') {
      const st = /state=(\d+) cpu_id=(\d+)/.exec(rest);
      if (st) idleSince[+st[2]] = +st[1] === 4294967295 ? null : t;
    } else if (ev === 'sched:sched_waking') {
      // in the waker's context, before the wakee's vCPU is chosen: the waker's vCPU and the
      // wakee's previous one (sched_wakeup's event CPU is the wakee's when the wakeup is queued
      // to it by IPI, so it cannot tell where the waker ran)
      const w = /pid=(\d+) .*target_cpu=(\d+)/.exec(rest);
      if (w && out[+w[1]]) waking.set(+w[1], { wcpu: cpu, prev: +w[2] });
    } else if (ev === 'sched:sched_wakeup') {
      const w = /pid=(\d+) .*target_cpu=(\d+)/.exec(rest);
      if (w && out[+w[1]] && !pending.has(+w[1])) {
        const tc = +w[2];
        const k = waking.get(+w[1]);
        waking.delete(+w[1]);
        // pulled: moved onto the waker's vCPU (what a WF_SYNC wakeup may do); local: already there
        const place = !k ? '?' : tc !== k.wcpu ? 'other' : k.prev !== k.wcpu ? 'pulled' : 'local';
        pending.set(+w[1], { t, tc, from: cpu, place, halt: idleSince[tc] !== null ? t - idleSince[tc] : -1 });
      }
    } else if (ev === 'sched:sched_switch') {
      const w = /next_pid=(\d+)/.exec(rest);
      const pid = w ? +w[1] : 0;
      if (pending.has(pid)) {
        const p = pending.get(pid);
        pending.delete(pid);
        if (t >= t0 && t <= t1) out[pid].push({ at: t, lat: (t - p.t) * 1000, halt: p.halt * 1000, place: p.place, cpu });
      }
    }
  }
  return out;
}

function wakeLines(label, ws, msgs) {
  const buckets = [[-Infinity, 0, 'not idle'], [0, 20, 'halt 0-20'], [20, 40, 'halt 20-40'], [40, 80, 'halt 40-80'], [80, 150, 'halt 80-150'], [150, Infinity, 'halt 150+']];
  const parts = buckets.map(([lo, hi, name]) => {
    const b = ws.filter((w) => (lo === -Infinity ? w.halt < 0 : w.halt >= lo && w.halt < hi));
    if (!b.length) return null;
    const l = sorted(b.map((w) => w.lat));
    return `${name}: ${(b.length / msgs).toFixed(3)}/msg lat p50 ${f1(q(l, 0.5))} p90 ${f1(q(l, 0.9))}`;
  }).filter(Boolean);
  const place = ['local', 'pulled', 'other'].map((k) => `${k} ${ws.filter((w) => w.place === k).length}`).join(' / ');
  const cpus = [0, 1].map((c) => ws.filter((w) => w.cpu === c).length);
  return `    ${label}: ${ws.length} wakeups (${(ws.length / msgs).toFixed(2)}/msg, on the waker's vCPU ${place} (local: already there, pulled: moved to it, other: the other vCPU), ran on vCPU0/1 ${cpus.join('/')}, lat>30us ${(ws.filter((w) => w.lat > 30).length / msgs * 100).toFixed(2)}% of msgs); ${parts.join('; ')}`;
}

function analyse({ c, s }, threshold) {
  const n = c.lengths.length;
  const ends = c.times, lens = c.lengths;
  const t0 = ends[0] - lens[0] / 1000, t1 = ends[n - 1];
  const inSpan = (g) => g[0] + g[1] >= t0 && g[0] <= t1;
  const cg = c.gcs.filter(inSpan), sg = s.gcs.filter(inSpan);
  // server handler times inside each round trip (sorted both): two pointers
  const st = s.times;
  let j = 0;
  const req = new Float64Array(n), rep = new Float64Array(n);
  let matched = 0;
  for (let i = 0; i < n; i++) {
    const a = ends[i] - lens[i] / 1000, b = ends[i];
    while (j < st.length && st[j] < a) j++;
    if (j < st.length && st[j] <= b) { req[i] = (st[j] - a) * 1000; rep[i] = (b - st[j]) * 1000; matched++; }
    else { req[i] = NaN; rep[i] = NaN; }
  }
  const overl = (gs, a, b) => gs.some((g) => g[0] < b && g[0] + g[1] > a);
  const slow = { n: 0, gcClient: 0, gcServer: 0, reqSlow: 0, repSlow: 0, both: 0 };
  const reqS = sorted(Array.from(req).filter((x) => !Number.isNaN(x)));
  const repS = sorted(Array.from(rep).filter((x) => !Number.isNaN(x)));
  const reqMed = q(reqS, 0.5), repMed = q(repS, 0.5);
  for (let i = 0; i < n; i++) {
    if (lens[i] <= threshold) continue;
    slow.n++;
    const a = ends[i] - lens[i] / 1000, b = ends[i];
    const gc1 = overl(cg, a, b), gc2 = overl(sg, a, b);
    if (gc1) slow.gcClient++;
    if (gc2) slow.gcServer++;
    if (gc1 || gc2) continue;
    // which leg carries the excess (more than 30 us over its median)
    const r1 = req[i] - reqMed > 30, r2 = rep[i] - repMed > 30;
    if (r1 && r2) slow.both++;
    else if (r1) slow.reqSlow++;
    else if (r2) slow.repSlow++;
  }
  // runs of consecutive slow round trips: how many, how long, and what started them
  const runs = { n: 0, len1: 0, len2to4: 0, len5plus: 0, startGc: 0 };
  for (let i = 0; i < n; ) {
    if (lens[i] <= threshold) { i++; continue; }
    let k = i;
    while (k < n && lens[k] > threshold) k++;
    const len = k - i;
    runs.n++;
    if (len === 1) runs.len1++; else if (len < 5) runs.len2to4++; else runs.len5plus++;
    const a = ends[i] - lens[i] / 1000, b = ends[i];
    if (overl(cg, a, b) || overl(sg, a, b)) runs.startGc++;
    i = k;
  }
  const ls = sorted(lens);
  const hist = EDGES.slice(0, -1).map((e, k) => lens.filter((x) => x >= e && x < EDGES[k + 1]).length);
  const gcStat = (gs) => ({ n: gs.length, minor: gs.filter((g) => g[2] === 'minor').length, ms: gs.reduce((x, g) => x + g[1], 0) });
  return {
    runs,
    n, matched, p: [0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999].map((p) => q(ls, p)), hist, slow,
    gcC: gcStat(cg), gcS: gcStat(sg), reqP: [0.5, 0.99].map((p) => q(reqS, p)), repP: [0.5, 0.99].map((p) => q(repS, p)),
    sched: [c.sched, s.sched], switches: [c.loopSwitches, s.loopSwitches],
    quarters: [0, 1, 2, 3].map((k) => {
      const a0 = t0 + ((t1 - t0) * k) / 4, a1 = t0 + ((t1 - t0) * (k + 1)) / 4;
      const part = [];
      for (let i = 0; i < n; i++) if (ends[i] >= a0 && ends[i] < a1) part.push(lens[i]);
      return part.length ? q(sorted(part), 0.99) : NaN;
    }),
    threads: c.spanTicks ? Object.entries(c.threadTicks).map(([k, v]) => [k.split('/')[0], v - (c.spanTicks[k] ?? 0)]).filter(([, v]) => v > 0) : [],
  };
}

const files = readdirSync(dir).filter((f) => f.endsWith('.client.json'));
const roundsRead = [...new Set(files.map((f) => f.split('-')[0]))].sort((a, b) => +a.slice(1) - +b.slice(1));
const modesRead = [...new Set(files.map((f) => f.slice(f.indexOf('-') + 1, -'.client.json'.length)))];
const base = modesRead.includes('node-net') ? 'node-net' : modesRead[0];
const total = Object.fromEntries(modesRead.map((m) => [m, { hist: EDGES.slice(0, -1).map(() => 0), slow: { n: 0, gcClient: 0, gcServer: 0, reqSlow: 0, repSlow: 0, both: 0 }, n: 0, all: [] }]));
console.log(`traces in ${dir}`);
console.log('round mode        n      p50    p90    p95    p98    p99  p99.5  p99.9 | req p50/p99  rep p50/p99 | GC client/server (minor) per 1k msgs, ms | slow>T: n gcC gcS req rep both | migr c/s | switches');
for (const r of roundsRead) {
  const data = Object.fromEntries(modesRead.map((m) => [m, load(join(dir, `${r}-${m}`))]));
  const perfLines = [];
  const T = q(sorted(data[base].c.lengths), 0.99);
  for (const m of modesRead) {
    const a = analyse(data[m], T);
    const t = total[m];
    a.hist.forEach((h, k) => (t.hist[k] += h));
    for (const k of Object.keys(t.slow)) t.slow[k] += a.slow[k];
    t.n += a.n;
    for (const x of data[m].c.lengths) t.all.push(x); // not push(...): 100k+ arguments overflow the stack
    const per = (g) => `${((1000 * g.n) / a.n).toFixed(2)} (${g.minor}) ${g.ms.toFixed(1)}`;
    console.log(
      `${r.padEnd(5)} ${m.padEnd(9)} ${String(a.n).padStart(6)} ${a.p.map((x) => f1(x).padStart(6)).join(' ')} | ${f1(a.reqP[0])}/${f1(a.reqP[1])}  ${f1(a.repP[0])}/${f1(a.repP[1])} | ${per(a.gcC)} / ${per(a.gcS)} | ` +
        `${a.slow.n} ${a.slow.gcClient} ${a.slow.gcServer} ${a.slow.reqSlow} ${a.slow.repSlow} ${a.slow.both} | ${a.sched[0].nr_migrations ?? '-'}/${a.sched[1].nr_migrations ?? '-'} | ${a.switches.join('/')}` +
        ` | slow runs ${a.runs.n} (1: ${a.runs.len1}, 2-4: ${a.runs.len2to4}, 5+: ${a.runs.len5plus}; GC at start ${a.runs.startGc})` +
        ` | p99 by quarter ${a.quarters.map(f1).join(' ')} | client threads (ticks) ${a.threads.map(([k, v]) => `${k}:${v}`).join(' ')}`,
    );
    const d = data[m];
    const ws = wakeups(join(dir, `${r}-${m}`), [d.s.pid, d.c.pid], d.c.times[0] - d.c.lengths[0] / 1000, d.c.times[d.c.times.length - 1]);
    if (ws) {
      perfLines.push(`  ${r} ${m}:`, wakeLines('server', ws[d.s.pid], a.n), wakeLines('client', ws[d.c.pid], a.n));
      t.wakes ??= { server: [], client: [] };
      for (const w of ws[d.s.pid]) t.wakes.server.push(w);
      for (const w of ws[d.c.pid]) t.wakes.client.push(w);
    }
  }
  if (perfLines.length) console.log(perfLines.join('\n'));
}
for (const m of modesRead) {
  const t = total[m];
  if (t.wakes) console.log(`pooled ${m}:\n${wakeLines('server', t.wakes.server, t.n)}\n${wakeLines('client', t.wakes.client, t.n)}`);
}
console.log('\nhistogram, all rounds pooled (share of round trips, %):');
console.log('bin us'.padEnd(12) + modesRead.map((m) => m.padStart(10)).join(''));
for (let k = 0; k < EDGES.length - 1; k++) {
  console.log(`${EDGES[k]}-${EDGES[k + 1]}`.padEnd(12) + modesRead.map((m) => ((100 * total[m].hist[k]) / total[m].n).toFixed(3).padStart(10)).join(''));
}
console.log('\npooled percentiles:');
for (const m of modesRead) {
  const s = sorted(total[m].all);
  console.log(`${m.padEnd(9)} n ${s.length} p50 ${f1(q(s, 0.5))} p90 ${f1(q(s, 0.9))} p99 ${f1(q(s, 0.99))} p99.9 ${f1(q(s, 0.999))}; slow>T(base p99 of the round): ${JSON.stringify(total[m].slow)}`);
}

// The bench's estimator (median of the per-round p99 ratios) against the pooled one (p99 of every
// round trip of a mode over all rounds), for each mode against the base.
for (const m of modesRead) {
  if (m === base) continue;
  const ratios = roundsRead.map((r) => {
    const x = sorted(load(join(dir, `${r}-${m}`)).c.lengths), y = sorted(load(join(dir, `${r}-${base}`)).c.lengths);
    return [0.5, 0.99].map((p) => q(x, p) / q(y, p));
  });
  const med = (a) => { const s = [...a].sort((u, v) => u - v); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const pooled = [0.5, 0.99].map((p) => q(sorted(total[m].all), p) / q(sorted(total[base].all), p));
  console.log(`${m} / ${base}: per-round p50 ${ratios.map((x) => x[0].toFixed(3)).join(' ')} (median ${med(ratios.map((x) => x[0])).toFixed(3)}, pooled ${pooled[0].toFixed(3)})`);
  console.log(`${m} / ${base}: per-round p99 ${ratios.map((x) => x[1].toFixed(3)).join(' ')} (median ${med(ratios.map((x) => x[1])).toFixed(3)}, pooled ${pooled[1].toFixed(3)})`);
}
