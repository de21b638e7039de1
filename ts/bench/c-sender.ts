// SPDX-License-Identifier: MIT
/**
 * c-zc-fixed: the same SEND_ZC-from-registered-buffers loop written in C
 * directly on liburing (libzc/bench/c_zc_fixed.c), run as a child
 * process.  Its CPU figure is the child's own getrusage() over the
 * measured span, so process start-up and buffer set-up are excluded.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { BenchEnv, BenchMode, RunSpec, SenderResult } from './types.ts';
import { ringSettings } from './settings.ts';
import { windowFor } from './window.ts';
import { LIMITS } from '../ffi/abi.gen.ts';
import { COALESCE_MAX_BATCH } from '../socket/coalescer.ts';

interface CReport {
  bytes: number;
  seconds: number;
  sends: number;
  zcUsed: number;
  zcCopied: number;
  utime: number;
  stime: number;
}

/**
 * Run c_zc_fixed with args; `wrap` prefixes the command (e.g. `ip netns
 * exec NS`, which execs it in place); `started` is told the child's pid.
 */
export function runC(env: BenchEnv, args: string[], wrap: string[] = [], started?: (pid: number) => void): Promise<CReport> {
  const bin = join(env.binDir, 'c_zc_fixed');
  const [cmd, ...rest] = [...wrap, bin, ...args] as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (started && child.pid !== undefined) started(child.pid);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new Error(`${bin}: ${e.message}`)));
    child.on('exit', (code, sig) => {
      if (code !== 0) {
        reject(new Error(`${bin} ${args.join(' ')} failed (${sig ?? code}): ${err.trim()}`));
        return;
      }
      try {
        resolve(JSON.parse(out) as CReport);
      } catch {
        reject(new Error(`${bin}: unparsable output ${JSON.stringify(out)}`));
      }
    });
  });
}

type CKind = 'zc-fixed' | 'send' | 'zc-vec';

function cMode(name: string, cmode: CKind, describe: string): BenchMode {
  return {
    name,
    describe,
    zeroCopy: cmode !== 'send',
    run: (spec, env) => runCMode(spec, env, cmode),
  };
}

async function runCMode(spec: RunSpec, env: BenchEnv, cmode: CKind): Promise<SenderResult> {
    const window = windowFor(spec.size);
    // zc-vec: batches the way ZcSocket coalesces (at most ZC_MAX_IOV
    // buffers and COALESCE_MAX_BATCH bytes per SENDMSG_ZC), which also
    // keeps at least 4 of them in a 1 MiB window.
    const batch = Math.max(1, Math.min(LIMITS.ZC_MAX_IOV, Math.floor(COALESCE_MAX_BATCH / spec.size)));
    const r = await runC(env, [
      '--port', String(spec.port),
      '--size', String(spec.size),
      '--seconds', String(spec.seconds),
      '--warmup', String(spec.warmupSeconds),
      '--window', String(window),
      '--mode', cmode,
      ...(cmode === 'zc-vec' ? ['--batch', String(batch)] : []),
      ...(ringSettings().deferTaskrun ? [] : ['--no-defer']),
    ]);
    return {
      bytes: r.bytes,
      seconds: r.seconds,
      cpuSeconds: r.utime + r.stime,
      sysSeconds: r.stime,
      sends: r.sends,
      zcUsed: r.zcUsed,
      zcCopied: r.zcCopied,
      detail: cmode === 'zc-vec' ? `window ${window}, ${batch} buffers per SENDMSG_ZC` : `window ${window}`,
    };
}

export const cZcFixed = cMode(
  'c-zc-fixed',
  'zc-fixed',
  'C on liburing directly: SEND_ZC from registered buffers (TS overhead reference)',
);
export const cSend = cMode('c-send', 'send', 'diagnostic: C on liburing directly, plain SEND');
export const cZcVec = cMode(
  'c-zc-vec',
  'zc-vec',
  'C on liburing directly: SENDMSG_ZC of up to 16 registered buffers / 256 KiB, as ZcSocket coalesces (zc counts per request)',
);
