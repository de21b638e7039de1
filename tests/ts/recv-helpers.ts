// SPDX-License-Identifier: MIT
/** Helpers of the receive suites: a fast verifiable stream pattern, zero-copy senders. */
import net from 'node:net';
import { randomFillSync } from 'node:crypto';
import type { BufferPool } from '../../ts/pool.ts';
import type { ZcSocket } from '../../ts/socket/socket.ts';

/**
 * The stream pattern: byte i is TABLE[i % PERIOD].  PERIOD is prime and
 * the table random, so a chunk that is lost, repeated or out of place
 * mismatches (any shift 0 < k < PERIOD); checks run at memcmp speed.
 */
export const PERIOD = 1048573;
const MAX_SLICE = 1 << 20;
const TABLE = (() => {
  const t = Buffer.alloc(PERIOD + MAX_SLICE);
  const seed = Buffer.alloc(PERIOD);
  randomFillSync(seed);
  seed.copy(t, 0);
  seed.copy(t, PERIOD, 0, MAX_SLICE);
  return t;
})();

/** The pattern bytes at stream offset off (len <= 1 MiB), as a view. */
export function patternSlice(off: number, len: number): Buffer {
  if (len > MAX_SLICE) throw new RangeError('slice too long');
  const o = off % PERIOD;
  return TABLE.subarray(o, o + len);
}

/** Check data against the pattern at stream offset off; returns the first bad offset or -1. */
export function checkPattern(data: Uint8Array, off: number): number {
  for (let done = 0; done < data.length; done += MAX_SLICE) {
    const n = Math.min(MAX_SLICE, data.length - done);
    const want = patternSlice(off + done, n);
    const got = Buffer.from(data.buffer, data.byteOffset + done, n);
    if (!got.equals(want)) {
      for (let k = 0; k < n; k++) if (got[k] !== want[k]) return off + done + k;
    }
  }
  return -1;
}

/**
 * Send `total` pattern bytes with zero-copy sends from pool buffers (up to
 * `depth` in flight), then shut the socket down for writing.
 */
export async function zcSend(sock: ZcSocket, pool: BufferPool, total: number, opts: { size?: number; depth?: number; end?: boolean } = {}): Promise<void> {
  const size = Math.min(opts.size ?? pool.size, pool.size);
  const depth = Math.min(opts.depth ?? 8, pool.count);
  const inflight = new Set<Promise<void>>();
  let off = 0;
  while (off < total) {
    const n = Math.min(size, total - off);
    const b = pool.acquire();
    b.write(patternSlice(off, n));
    const p: Promise<void> = sock.send(b, { mode: 'zc', length: n }).then(
      (r) => {
        inflight.delete(p);
        b.release();
        if (r.bytes !== n) throw new Error(`short send ${r.bytes} of ${n}`);
      },
      (e: unknown) => {
        inflight.delete(p);
        b.release();
        throw e;
      },
    );
    inflight.add(p);
    off += n;
    if (inflight.size >= depth) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (opts.end ?? true) sock.end();
}

/** Node net sender of the same pattern (for comparisons and resets). */
export async function netSend(port: number, total: number, opts: { reset?: boolean } = {}): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((res, rej) => {
    s.once('connect', res);
    s.once('error', rej);
  });
  let off = 0;
  const chunk = 256 * 1024;
  while (off < total) {
    const n = Math.min(chunk, total - off);
    const ok = s.write(Buffer.from(patternSlice(off, n)));
    off += n;
    if (!ok) await new Promise((r) => s.once('drain', r));
  }
  if (opts.reset) s.resetAndDestroy();
  else s.end();
  return s;
}
