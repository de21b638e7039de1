// SPDX-License-Identifier: MIT
/**
 * Modes that send through the uring-zc TypeScript API, the way an
 * application would: one Ring, one ZcSocket, `await`-style completion.
 *
 * Loop: a window of W buffers (see window.ts), all sent at start; each
 * settled send re-sends its own buffer straight from the completion
 * callback, so W sends stay in flight and libzc links whatever is queued
 * into one ordered chain per socket.  Nothing is allocated per send by the
 * loop itself: the buffers (PoolBuffers or Uint8Arrays), the option
 * objects and the per-slot callbacks are made once.
 *
 *   send      plain SEND (mode 'copy') from Uint8Arrays
 *   zc        SEND_ZC (mode 'zc') from Uint8Arrays (pages pinned per send)
 *   zc-fixed  SEND_ZC (mode 'zc') from registered pool buffers
 *   auto      mode 'auto' from registered pool buffers (on loopback: copies)
 */
import { once } from 'node:events';
import { AUTO_ZC_THRESHOLD, connect, Ring, type PoolBuffer, type SendOptions as SendOptionsInput, type SendResult } from '../index.ts';
import { fillPattern, Meter, type BenchMode, type RunSpec, type SenderResult } from './types.ts';
import { ringSettings } from './settings.ts';
import { windowFor } from './window.ts';

type Kind = 'send' | 'zc' | 'zc-fixed' | 'auto';

const PAGE = 4096;

async function apiRun(spec: RunSpec, kind: Kind): Promise<SenderResult> {
  const window = windowFor(spec.size);
  const { deferTaskrun } = ringSettings();
  const ring = Ring.create({ entries: 256, deferTaskrun });
  try {
    const usePool = kind === 'zc-fixed' || kind === 'auto';
    const slots: Array<PoolBuffer | Uint8Array> = [];
    if (usePool) {
      const pool = ring.createPool({ count: window, size: Math.ceil(spec.size / PAGE) * PAGE });
      for (let i = 0; i < window; i++) {
        const b = pool.acquire();
        fillPattern(b.bytes);
        slots.push(b);
      }
    } else {
      const mem = new Uint8Array(window * spec.size);
      fillPattern(mem);
      for (let i = 0; i < window; i++) slots.push(mem.subarray(i * spec.size, (i + 1) * spec.size));
    }
    const opts: SendOptionsInput =
      kind === 'send' ? { mode: 'copy' } : kind === 'auto' ? { mode: 'auto' } : { mode: 'zc' };
    if (usePool) opts.length = spec.size;
    // SendResult says 'copied' for plain sends too: count only zero-copy ones.
    // 'auto' never picks zero-copy to a peer on this host (the receiver is on 127.0.0.1)
    const zcAsked = kind === 'zc' || kind === 'zc-fixed';

    // Nagle on, like node-net (Node's default) and c-zc-fixed; explicit so the
    // comparison holds whatever the API default is.  With TCP_NODELAY a
    // 65536-byte send on loopback is a 65483-byte MSS segment plus a 53-byte
    // runt pushed at once, which halved 64 KiB zero-copy throughput here.
    const sock = connect({ ring, host: '127.0.0.1', port: spec.port, noDelay: false });
    await once(sock, 'connect');
    const meter = new Meter(spec);
    let bytes = 0;
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
        const again = (r: SendResult): void => {
          bytes += r.bytes;
          sends++;
          if (r.zeroCopy === 'used') used++;
          else if (r.zeroCopy === 'copied' && zcAsked) copied++;
          if (running) running = meter.tick(bytes, sends, used, copied);
          if (running) {
            sock.send(buf, opts).then(again, fail);
          } else if (--inflight === 0) {
            resolve();
          }
        };
        inflight++;
        sock.send(buf, opts).then(again, fail);
      }
    });
    await sock.close();
    if (failure) throw failure;
    let detail = kind === 'auto' ? `window ${window}, threshold ${AUTO_ZC_THRESHOLD}` : `window ${window}`;
    if (process.env['URING_ZC_BENCH_DEBUG']) detail += ` stats ${JSON.stringify({ ...ring.stats, sends })}`;
    return { ...meter.done!, detail };
  } finally {
    ring.close();
  }
}

export const uringModes: BenchMode[] = [
  {
    name: 'send',
    describe: "our API, mode 'copy': plain SEND from a Uint8Array",
    zeroCopy: false,
    run: (spec) => apiRun(spec, 'send'),
  },
  {
    name: 'zc',
    describe: "our API, mode 'zc': SEND_ZC from a Uint8Array (pinned per send)",
    zeroCopy: true,
    run: (spec) => apiRun(spec, 'zc'),
  },
  {
    name: 'zc-fixed',
    describe: "our API, mode 'zc' from registered pool buffers (a tick's sends coalesced into SENDMSG_ZC)",
    zeroCopy: true,
    run: (spec) => apiRun(spec, 'zc-fixed'),
  },
  {
    name: 'auto',
    describe: `our API, mode 'auto' from pool buffers (zero-copy from ${AUTO_ZC_THRESHOLD / 1024}K, but never to a peer on this host: copies here)`,
    zeroCopy: true,
    run: (spec) => apiRun(spec, 'auto'),
  },
];
