// SPDX-License-Identifier: MIT
/**
 * `uring-zc bench` keeps its JSON contracts (scripts read them) and its
 * veth-drop path really is zero-copy: short runs of each benchmark, no
 * timing asserted.  Host only: the shapes do not depend on the kernel and
 * under TCG these runs cost minutes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { benchChild, buildHelpers } from '../../ts/bench/build.ts';
import { cpuSecondsOf, statFields } from '../../ts/bench/proc-cpu.ts';
import { Sink } from '../../ts/bench/sink.ts';
import { libraryPath } from '../../ts/ffi/libzc.ts';
import { availableParallelism, tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { IN_VM, childJson, run } from './helpers.ts';

const CLI = ['tsx', 'ts/cli/main.ts', 'bench'];
const SHORT = ['--seconds', '0.2', '--warmup', '0.1', '--rounds', '1', '--json'];
const IS_ROOT = process.getuid?.() === 0;

async function bench(args: string[]): Promise<{ out: Record<string, unknown>[]; stderr: string }> {
  const r = await run('npx', [...CLI, ...args, ...SHORT], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`bench ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return { out: childJson<Record<string, unknown>[]>(r), stderr: r.stderr };
}

function netnsNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

describe.skipIf(IN_VM)('bench JSON contracts', () => {
  it('TCP: { mode, size, mbps, cpuPct, zcUsed, zcCopied }', async () => {
    const { out } = await bench(['--mode', 'send,c-zc-fixed,node-net-window', '--size', '4K']);
    expect(out.map((e) => e['mode'])).toEqual(['send', 'c-zc-fixed', 'node-net-window']);
    for (const e of out) {
      expect(Object.keys(e).sort()).toEqual(['cpuPct', 'mbps', 'mode', 'size', 'zcCopied', 'zcUsed']);
      expect(e['size']).toBe(4096);
      expect(e['mbps']).toBeGreaterThan(0);
    }
  });

  it('--rr: { mode, size, conns, p50us, p99us, p999us, msgsPerSec, cpuPct } for every mode', async () => {
    const { out } = await bench(['--rr', '--conns', '1,3', '--size', '64']);
    expect(out.map((e) => `${e['mode']} ${e['size']} ${e['conns']}`)).toEqual([
      'node-net 64 1', 'uring 64 1', 'duplex 64 1', 'c-uring 64 1',
      'node-net 1024 3', 'uring 1024 3', 'duplex 1024 3', 'c-uring 1024 3',
    ]);
    for (const e of out) {
      expect(Object.keys(e).sort()).toEqual(['conns', 'cpuPct', 'mode', 'msgsPerSec', 'p50us', 'p999us', 'p99us', 'size']);
      expect(e['msgsPerSec']).toBeGreaterThan(0);
      expect(e['p50us']).toBeGreaterThan(0);
      expect(e['p99us'] as number).toBeGreaterThanOrEqual(e['p50us'] as number);
    }
  });

  it('--rr --mode uring-iter: the diagnostic Promise-form peers run when named', async () => {
    const { out } = await bench(['--rr', '--mode', 'uring-iter', '--conns', '1,3', '--size', '64', '--rounds', '1', '--seconds', '0.3']);
    expect(out.map((e) => `${e['mode']} ${e['size']} ${e['conns']}`)).toEqual(['uring-iter 64 1', 'uring-iter 1024 3']);
    for (const e of out) expect(e['msgsPerSec']).toBeGreaterThan(0);
  });

  it('--rr: each round starts at the next mode, so no mode always runs first', async () => {
    const r = await run('npx', [...CLI, '--rr', '--mode', 'node-net,c-uring', '--conns', '1', '--size', '64', '--rounds', '2', '--seconds', '0.2', '--warmup', '0.1'], {
      timeoutMs: 120_000,
    });
    if (r.code !== 0) throw new Error(`bench --rr exited ${r.code}: ${r.stderr.slice(-2000)}`);
    const order = [...r.stderr.matchAll(/bench --rr: \[round (\d)\/2\] (\S+) 64B x1: \d+ msg\/s/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(order).toEqual(['1 node-net', '1 c-uring', '2 c-uring', '2 node-net']);
  });

  it('TCP: each round starts at the next mode too; the JSON keeps the order given', async () => {
    const r = await run('npx', [...CLI, '--mode', 'send,c-zc-fixed', '--size', '4K', ...SHORT, '--rounds', '2'], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`bench exited ${r.code}: ${r.stderr.slice(-2000)}`);
    const order = [...r.stderr.matchAll(/bench: \[round (\d)\/2\] (\S+) 4096B: \d+ MB\/s/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(order).toEqual(['1 send', '1 c-zc-fixed', '2 c-zc-fixed', '2 send']);
    expect(childJson<Record<string, unknown>[]>(r).map((e) => e['mode'])).toEqual(['send', 'c-zc-fixed']);
  });

  it('--rr with URING_ZC_BENCH_STATS=1: the uring peers report their rings\' counters', async () => {
    const r = await run('npx', [...CLI, '--rr', '--mode', 'uring', '--conns', '3', '--loop-wait', 'ring', ...SHORT], {
      timeoutMs: 120_000,
      env: { ...process.env, URING_ZC_BENCH_STATS: '1' },
    });
    if (r.code !== 0) throw new Error(`bench --rr exited ${r.code}: ${r.stderr.slice(-2000)}`);
    for (const role of ['server', 'client']) {
      const m = new RegExp(`uring 1024B x3: rr-${role} stats: (\\{[^}]*\\})`).exec(r.stderr);
      expect(m, `rr-${role} stats line in:\n${r.stderr}`).not.toBeNull();
      const s = JSON.parse(m![1]!) as Record<string, number>;
      expect(Object.keys(s).sort()).toEqual(['backpressured', 'issued', 'kernelCqes', 'reaps', 'records', 'submits', 'wakeups']);
      // Round trips ran: a receive record and a send record per message at each end.
      expect(s['records']).toBeGreaterThan(6);
      expect(s['submits']).toBeGreaterThan(0);
      expect(s['reaps']).toBeGreaterThan(0);
      // --loop-wait reached the peers' rings (and the host's addon took the sleep)
      expect(r.stderr).toMatch(new RegExp(`uring 1024B x3: rr-${role} stats: .* loopWait ring `));
    }
  });

  it('URING_ZC_BENCH_TRACE: the rr peers record every round trip, and scripts/rr-tail.mjs reads them', async () => {
    const bundle = await benchChild();
    const dir = mkdtempSync(join(tmpdir(), 'rr-tail-'));
    try {
      const r = await run(process.execPath, ['scripts/rr-tail.mjs', bundle, '1', '64', '0.3', 'node-net,uring', dir], {
        timeoutMs: 120_000,
        env: { ...process.env, URING_ZC_LIB: libraryPath() },
      });
      if (r.code !== 0) throw new Error(`rr-tail exited ${r.code}: ${r.stderr.slice(-2000)}`);
      for (const mode of ['node-net', 'uring']) {
        const said = new RegExp(`round 1 ${mode}: (\\d+) round trips`).exec(r.stdout);
        expect(said, r.stdout).not.toBeNull();
        const msgs = Number(said![1]);
        expect(msgs).toBeGreaterThan(0);
        const c = JSON.parse(readFileSync(join(dir, `r0-${mode}.client.json`), 'utf8')) as Record<string, number[]>;
        const s = JSON.parse(readFileSync(join(dir, `r0-${mode}.server.json`), 'utf8')) as Record<string, number[]>;
        // every measured round trip, its end on the clock both peers share, and the server's
        // handler inside it (the server also handled the warm-up's requests)
        expect(c['lengths']!.length).toBe(msgs);
        expect(c['times']!.length).toBe(msgs);
        expect(s['times']!.length).toBeGreaterThan(msgs);
        const last = c['times']![msgs - 1]!;
        const inLast = s['times']!.filter((t) => t > last - c['lengths']![msgs - 1]! / 1000 && t <= last);
        expect(inLast.length, `${mode}: last round trip ${c['lengths']![msgs - 1]} us ending ${last} ms, server handlers in it ${inLast.join(', ')}`).toBe(1);
      }
      expect(r.stdout).toContain('histogram, all rounds pooled');
      expect(r.stdout).toMatch(/uring \/ node-net: per-round p99 [\d.]+ \(median [\d.]+, pooled [\d.]+\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--loop-wait: a bad value or a flag of another benchmark is a usage error naming it', async () => {
    for (const [args, msg] of [
      [['--rr', '--loop-wait', 'spin'], '--loop-wait: "spin" is not auto, epoll or ring'],
      [['--rr', '--loop-wait', 'ring', '--defer-taskrun', 'on'], 'drop --defer-taskrun on'],
      [['--udp', '--loop-wait', 'ring'], '--loop-wait: only with --rr'],
      [['--udp', '--pin', 'maybe'], '--pin: "maybe" is not on or off'],
      [['--rr', '--pin', 'on'], '--pin: only with --udp'],
      [['--sink-wait', 'busy'], '--sink-wait: "busy" is not spin or sleep'],
      [['--rr', '--sink-wait', 'spin'], '--sink-wait: only with the TCP send bench'],
    ] as const) {
      const r = await run('npx', [...CLI, ...args, ...SHORT], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain(msg);
    }
  });

  it.skipIf(!IS_ROOT || availableParallelism() < 2)('--udp --pin on: both rounds\' senders on the round\'s vCPU', async () => {
    const r = await run('npx', [...CLI, '--udp', '--pin', 'on', '--mode', 'zc-fixed,c-zc-fixed', '--size', '1400', ...SHORT, '--rounds', '2'], {
      timeoutMs: 120_000,
    });
    if (r.code !== 0) throw new Error(`bench --udp --pin on exited ${r.code}: ${r.stderr.slice(-2000)}`);
    expect(r.stderr).toContain('bench --udp: round 1/2: every sender on vCPU 0');
    expect(r.stderr).toContain('bench --udp: round 2/2: every sender on vCPU 1');
    expect(r.stderr).not.toContain('[ran on');
    // and round 2 starts at the next mode
    const order = [...r.stderr.matchAll(/bench --udp: \[round (\d)\/2\] (\S+) 1400B: \d+ MB\/s/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(order).toEqual(['1 zc-fixed', '1 c-zc-fixed', '2 c-zc-fixed', '2 zc-fixed']);
  });

  it.skipIf(!IS_ROOT)('--udp: shape, zero-copy not copied on the veth-drop path, namespaces removed', async () => {
    const { out, stderr } = await bench(['--udp', '--mode', 'node-dgram,zc-fixed,c-zc-fixed', '--size', '1400']);
    expect(out.map((e) => e['mode'])).toEqual(['node-dgram', 'zc-fixed', 'c-zc-fixed']);
    for (const e of out) {
      expect(Object.keys(e).sort()).toEqual(['cpuPct', 'mbps', 'mode', 'sendsPerSec', 'size', 'zcCopied', 'zcUsed']);
      expect(e['size']).toBe(1400);
      expect(e['sendsPerSec']).toBeGreaterThan(0);
    }
    // The point of the path: REPORT_USAGE says every zero-copy send left without a copy.
    for (const e of out.filter((x) => x['mode'] !== 'node-dgram')) {
      expect(e['zcUsed']).toBeGreaterThan(0);
      expect(e['zcCopied']).toBe(0);
    }
    // The namespaces it made (it names them) are gone; other benches may run meanwhile.
    // Unpinned by default: each progress line says where the sender's main thread ran.
    for (const m of ['node-dgram', 'zc-fixed', 'c-zc-fixed']) expect(stderr).toMatch(new RegExp(`bench --udp: ${m} 1400B: .* \\[ran on vCPU \\d+ \\d+%`));
    // The Node modes warm before round 1 (the C sender is a fresh process per run), before any measured run.
    for (const m of ['node-dgram', 'zc-fixed']) {
      const warm = new RegExp(`bench --udp: warmed ${m} 1400B: [1-6] unmeasured run\\(s\\)`).exec(stderr);
      expect(warm, stderr.slice(0, 2000)).not.toBeNull();
      expect(warm!.index).toBeLessThan(stderr.indexOf('bench --udp: node-dgram 1400B: '));
    }
    expect(stderr).not.toContain('warmed c-zc-fixed');
    const made = /network namespace (\S+) \(peer (\S+)\)/.exec(stderr);
    expect(made).not.toBeNull();
    expect(netnsNames().filter((n) => n === made![1] || n === made![2])).toEqual([]);
  });
});

describe('bench (TCP) receiver, zc_sink', () => {
  for (const spin of [true, false]) {
    it(`${spin ? '--sink-wait spin' : '--sink-wait sleep'}: counts every byte of each connection, ${spin ? 'polls on an idle one and sleeps between them' : 'sleeps on an idle one and between them'}`, async () => {
      const sink = await Sink.start(`${buildHelpers()}/zc_sink`, { spin });
      try {
        for (const total of [3 << 20, 12345]) {
          const sock = createConnection({ host: '127.0.0.1', port: sink.port });
          await once(sock, 'connect');
          const chunk = Buffer.alloc(64 * 1024, 7);
          for (let left = total; left > 0; left -= chunk.length) {
            if (!sock.write(chunk.subarray(0, Math.min(left, chunk.length)))) await once(sock, 'drain');
          }
          sock.end();
          const c = await sink.nextConnection();
          expect(c.bytes).toBe(total);
          sock.destroy();
        }
        // on an open connection with nothing to read, --spin polls (its CPU time grows) where
        // the sleeping receiver blocks in recv (state S)
        const idle = createConnection({ host: '127.0.0.1', port: sink.port });
        await once(idle, 'connect');
        const cpu0 = cpuSecondsOf(sink.pid);
        let used = 0;
        let idleState = '';
        for (let i = 0; i < 250; i++) {
          await new Promise((r) => setTimeout(r, 20));
          used = cpuSecondsOf(sink.pid) - cpu0;
          idleState = statFields(sink.pid)[0]!;
          if (spin ? used >= 0.05 : idleState === 'S') break;
        }
        if (spin) expect(used).toBeGreaterThanOrEqual(0.05);
        else expect(idleState).toBe('S');
        idle.end();
        expect((await sink.nextConnection()).bytes).toBe(0);
        idle.destroy();
        // between connections it waits in poll(): asleep, not spinning (state S in /proc/PID/stat,
        // once it is past printing the last report)
        let state = '';
        for (let i = 0; i < 100 && state !== 'S'; i++) {
          await new Promise((r) => setTimeout(r, 20));
          state = statFields(sink.pid)[0]!;
        }
        expect(state).toBe('S');
      } finally {
        await sink.stop();
      }
    });
  }
});
