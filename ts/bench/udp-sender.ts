// SPDX-License-Identifier: MIT
/**
 * The Node side of `bench --udp`: a child process that `bench` starts
 * inside its veth-drop namespace (netns.ts) and keeps for the whole run.
 * It reads one JSON run spec per line on stdin and answers each with one
 * JSON line (a SenderResult, or { error }).
 *
 *   node-dgram  Node's dgram socket.send() on a connected socket, W in flight
 *   copy        our API, send(PoolBuffer, { mode: 'copy' })
 *   zc          our API, send(Uint8Array, { mode: 'zc' }) (pages pinned per send)
 *   zc-fixed    our API, send(PoolBuffer, { mode: 'zc' }) (registered buffer)
 *   auto        our API, send(PoolBuffer, { mode: 'auto' })
 *
 * Every mode keeps W datagrams in flight: each completion sends its slot's
 * buffer again, so the loop allocates nothing per send itself.
 */
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { AUTO_ZC_THRESHOLD, Ring, ZcDatagram, type PoolBuffer, type SendOptions as SendOptionsInput, type SendResult } from '../index.ts';
import { fillPattern, Meter, type RunSpec, type SenderResult } from './types.ts';

export const UDP_NODE_MODES = ['node-dgram', 'copy', 'zc', 'zc-fixed', 'auto'] as const;
export type UdpNodeMode = (typeof UDP_NODE_MODES)[number];

export interface UdpRunSpec {
  mode: UdpNodeMode;
  size: number;
  seconds: number;
  warmupSeconds: number;
  window: number;
  host: string;
  port: number;
  deferTaskrun: boolean;
}

function meterSpec(s: UdpRunSpec): RunSpec {
  return { size: s.size, seconds: s.seconds, warmupSeconds: s.warmupSeconds, port: s.port };
}

/**
 * The byte count of a sender loop.  A `let` the callbacks share would hold
 * a double past 2^31 bytes (seconds into a run) and V8 boxes a double
 * stored into a closure's context: a 16-byte heap number per send, the
 * bench's own cost, not the sender's (docs/PERFORMANCE.md, Session 11).
 */
function byteCount(): Float64Array {
  return new Float64Array(1);
}

async function nodeDgram(s: UdpRunSpec): Promise<SenderResult> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.connect(s.port, s.host, () => {
      sock.removeListener('error', reject);
      resolve();
    });
  });
  const buf = Buffer.allocUnsafe(s.size);
  fillPattern(buf);
  const meter = new Meter(meterSpec(s));
  const bytes = byteCount();
  let sends = 0;
  let inflight = 0;
  let running = true;
  let failure: Error | null = null;
  await new Promise<void>((resolve) => {
    const again = (err: Error | null): void => {
      inflight--;
      if (err) {
        failure ??= err;
        running = false;
      } else {
        bytes[0] = bytes[0]! + s.size;
        sends++;
        if (running) running = meter.tick(bytes[0]!, sends, 0, 0);
      }
      if (running) {
        inflight++;
        sock.send(buf, again);
      } else if (inflight === 0) {
        resolve();
      }
    };
    for (let i = 0; i < s.window; i++) {
      inflight++;
      sock.send(buf, again);
    }
  });
  sock.close();
  if (failure) throw failure;
  return { ...meter.done!, detail: `window ${s.window}` };
}

async function uringUdp(s: UdpRunSpec): Promise<SenderResult> {
  const ring = Ring.create({ entries: 256, deferTaskrun: s.deferTaskrun });
  try {
    const usePool = s.mode !== 'zc';
    const slots: Array<PoolBuffer | Uint8Array> = [];
    if (usePool) {
      const pool = ring.createPool({ count: s.window, size: Math.ceil(s.size / 4096) * 4096 });
      for (let i = 0; i < s.window; i++) {
        const b = pool.acquire();
        fillPattern(b.bytes);
        slots.push(b);
      }
    } else {
      const mem = new Uint8Array(s.window * s.size);
      fillPattern(mem);
      for (let i = 0; i < s.window; i++) slots.push(mem.subarray(i * s.size, (i + 1) * s.size));
    }
    const opts: SendOptionsInput = { mode: s.mode === 'copy' ? 'copy' : s.mode === 'auto' ? 'auto' : 'zc' };
    if (usePool) opts.length = s.size;
    const zcAsked = s.mode === 'zc' || s.mode === 'zc-fixed' || (s.mode === 'auto' && s.size >= AUTO_ZC_THRESHOLD);
    const sock = await ZcDatagram.open({ ring, connect: { host: s.host, port: s.port } });
    const meter = new Meter(meterSpec(s));
    const bytes = byteCount();
    let sends = 0;
    let used = 0;
    let copied = 0;
    let inflight = 0;
    let running = true;
    let failure: unknown = null;
    await new Promise<void>((resolve) => {
      const fail = (e: unknown): void => {
        failure ??= e;
        running = false;
        if (--inflight === 0) resolve();
      };
      for (const buf of slots) {
        // The callback form: what code sending millions of datagrams uses
        // (no Promise per send); the Promise form is built on it.
        const again = (err: Error | null, n: number, zeroCopy: SendResult['zeroCopy']): void => {
          if (err) {
            fail(err);
            return;
          }
          bytes[0] = bytes[0]! + n;
          sends++;
          if (zeroCopy === 'used') used++;
          else if (zeroCopy === 'copied' && zcAsked) copied++;
          if (running) running = meter.tick(bytes[0]!, sends, used, copied);
          if (running) {
            sock.send(buf, opts, again);
          } else if (--inflight === 0) {
            resolve();
          }
        };
        inflight++;
        sock.send(buf, opts, again);
      }
    });
    await sock.close();
    if (failure) throw failure;
    const detail = s.mode === 'auto' ? `window ${s.window}, threshold ${AUTO_ZC_THRESHOLD}` : `window ${s.window}`;
    return { ...meter.done!, detail };
  } finally {
    ring.close();
  }
}

export function runUdpNode(s: UdpRunSpec): Promise<SenderResult> {
  return s.mode === 'node-dgram' ? nodeDgram(s) : uringUdp(s);
}

/** Child main: one JSON spec per stdin line, one JSON answer per stdout line. */
export async function udpSenderMain(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  process.stdout.write('ready\n');
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer: unknown;
    try {
      answer = await runUdpNode(JSON.parse(line) as UdpRunSpec);
    } catch (e) {
      answer = { error: e instanceof Error ? e.message : String(e) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
}
