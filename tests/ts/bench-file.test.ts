// SPDX-License-Identifier: MIT
/**
 * `uring-zc bench --file --json` keeps its contract: one entry per server
 * and case, `{ server, file, conns, mbps, rps, cpuPct }`, every server
 * served every request (no wrk errors).  A one-second run of the 1 MiB
 * case; no timing asserted.  Host only (as the other bench contracts);
 * skipped, saying so, where wrk or nginx is missing.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { IN_VM, childJson, run } from './helpers.ts';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['wrk', 'nginx'].filter((c) => !has(c));

describe.skipIf(IN_VM || missing.length > 0)(`bench --file JSON contract${missing.length ? ` (skipped: no ${missing.join(', ')}; make setup installs them)` : ''}`, () => {
  it('{ server, file, conns, mbps, rps, cpuPct } for node, uring-zc and nginx', async () => {
    const r = await run('npx', ['tsx', 'ts/cli/main.ts', 'bench', '--file', '--size', '1M', '--seconds', '1', '--rounds', '1', '--json'], {
      timeoutMs: 180_000,
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const out = childJson<Record<string, unknown>[]>(r);
    expect(out.map((e) => `${e['server']} ${e['file']} ${e['conns']}`).sort()).toEqual(['nginx 1M 16', 'node 1M 16', 'uring-zc 1M 16']);
    for (const e of out) {
      expect(Object.keys(e).sort()).toEqual(['conns', 'cpuPct', 'file', 'mbps', 'rps', 'server']);
      expect(e['mbps']).toBeGreaterThan(0);
      expect(e['rps']).toBeGreaterThan(0);
    }
  });
});
