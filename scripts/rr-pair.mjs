// SPDX-License-Identifier: MIT
// Paired rr instrument (docs/PERFORMANCE.md, Session 13): builds A and B run AT ONCE, all four
// peers pinned to one vCPU (vCPU 0 and 1 alternating per round), so host effects land on both in
// the same seconds. Reports CPU per round trip (client + server utime + stime over the client's
// measured span, from /proc) of B over A, min / median / max of the rounds.
// A and B are bench child bundles of two checkouts, each built in its checkout with
//   node -e "require('esbuild').buildSync({entryPoints:['ts/bench/child.ts'],outfile:'/tmp/A.mjs',
//     bundle:true,platform:'node',format:'esm',target:'node20',packages:'external'})"
// usage: node scripts/rr-pair.mjs A.mjs B.mjs [rounds=8] [size=1024] [conns=1000] [seconds=4] [mode=uring]
// env: URING_ZC_LIB (or LIB_A / LIB_B) the libzc.so of each build; ENV_A / ENV_B "K=V,K=V" extra
// environment per build; SPLIT=1 puts each client on the other vCPU than its server (both pairs
// still share the two vCPUs: the cross-CPU wakeups of the bench, paired); MODE_A / MODE_B a mode per build (default: the mode argument), e.g.
// node-net against uring of one bundle. Needs taskset (util-linux).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
const [A, B, rounds = '8', size = '1024', conns = '1000', seconds = '4', mode = 'uring'] = process.argv.slice(2);
if (!A || !B) throw new Error('usage: node scripts/rr-pair.mjs A.mjs B.mjs [rounds] [size] [conns] [seconds] [mode]');
const extra = (s) => Object.fromEntries((s || '').split(',').filter(Boolean).map((kv) => kv.split('=')));
const envs = {
  A: { ...process.env, URING_ZC_LIB: process.env.LIB_A || process.env.URING_ZC_LIB, URING_ZC_BENCH_DEFER_TASKRUN: '0', ...extra(process.env.ENV_A) },
  B: { ...process.env, URING_ZC_LIB: process.env.LIB_B || process.env.URING_ZC_LIB, URING_ZC_BENCH_DEFER_TASKRUN: '0', ...extra(process.env.ENV_B) },
};
const ticks = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return +f[11] + +f[12]; };
function start(cpu, bundle, env, args) {
  const c = spawn('taskset', ['-c', String(cpu), process.execPath, bundle, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const it = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  return { c, next: async () => (await it.next()).value };
}
async function pair(cpu, bundle, env, m) {
  const s = start(cpu, bundle, env, ['rr-server', m]);
  const port = (await s.next()).split(' ')[1];
  const cl = start(process.env.SPLIT === '1' ? 1 - cpu : cpu, bundle, env, ['rr-client', m, '--port', port, '--size', size, '--conns', conns, '--seconds', seconds, '--warmup', '1']);
  const marks = [];
  let line;
  while ((line = await cl.next()) === 'mark') marks.push(ticks(s.c.pid) + ticks(cl.c.pid));
  const r = JSON.parse(line);
  await new Promise((res) => { cl.c.once('exit', res); cl.c.stdin.end(); });
  await new Promise((res) => { s.c.once('exit', res); s.c.stdin.end(); });
  return { ...r, cpuUs: ((marks[1] - marks[0]) * 1e4) / r.msgs, mps: r.msgs / r.seconds };
}
const q = (a) => { const s = [...a].sort((x, y) => x - y); return `${s[0].toFixed(3)} / ${s[s.length >> 1].toFixed(3)} / ${s[s.length - 1].toFixed(3)}`; };
const cpuR = [], mpsR = [], p50R = [], p99R = [];
for (let i = 0; i < +rounds; i++) {
  const cpu = i % 2;
  const [a, b] = await Promise.all([pair(cpu, A, envs.A, process.env.MODE_A || mode), pair(cpu, B, envs.B, process.env.MODE_B || mode)]);
  cpuR.push(b.cpuUs / a.cpuUs); mpsR.push(b.mps / a.mps); p50R.push(b.p50us / a.p50us); p99R.push(b.p99us / a.p99us);
  console.log(`round ${i + 1} vcpu ${cpu}: A ${a.cpuUs.toFixed(2)} us/msg ${a.mps.toFixed(0)}/s p50 ${a.p50us.toFixed(1)} p99 ${a.p99us.toFixed(1)} | B ${b.cpuUs.toFixed(2)} us/msg ${b.mps.toFixed(0)}/s p50 ${b.p50us.toFixed(1)} p99 ${b.p99us.toFixed(1)} | B/A cpu ${(b.cpuUs / a.cpuUs).toFixed(3)} | load ${loadavg()[0].toFixed(1)}`);
}
console.log(`B/A CPU per msg min/median/max: ${q(cpuR)}; msgs/s ${q(mpsR)}; p50 ${q(p50R)}; p99 ${q(p99R)}`);
