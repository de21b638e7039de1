// SPDX-License-Identifier: MIT
/**
 * Baseline: Node's own net module.  One preallocated Buffer written again
 * and again with socket.write(); when write() returns false we wait for
 * 'drain' (proper backpressure, the way a Node program should write), and
 * we yield to the event loop about every millisecond otherwise.  Bytes
 * count once the kernel accepted them (written - socket.writableLength).
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { fillPattern, Meter, type BenchMode, type RunSpec, type SenderResult } from './types.ts';
import { windowFor } from './window.ts';

/** A stream socket as the write loop needs it (net.Socket and ZcSocket both are). */
export interface WritableSocket {
  write(b: Buffer): boolean;
  end(): unknown;
  readonly writableLength: number;
  readonly closed: boolean;
  on(ev: 'error', f: (e: Error) => void): unknown;
  once(ev: 'drain', f: () => void): unknown;
}

/**
 * The write loop of node-net (and of our Duplex, bench duplex mode).
 * `buffers`: how many distinct Buffers of spec.size it writes in turn
 * (1: the same one every time, whose bytes stay in the CPU cache).
 */
export async function writeLoop(
  sock: WritableSocket & NodeJS.EventEmitter, spec: RunSpec, buffers = 1,
): Promise<SenderResult> {
  const mem = Buffer.allocUnsafe(spec.size * buffers);
  fillPattern(mem);
  const bufs: Buffer[] = [];
  for (let i = 0; i < buffers; i++) bufs.push(mem.subarray(i * spec.size, (i + 1) * spec.size));
  let next = 0;
  const meter = new Meter(spec);
  let written = 0;
  let writes = 0;
  let failure: Error | null = null;
  sock.on('error', (e) => {
    failure = e;
  });

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      const yieldAt = performance.now() + 1;
      for (;;) {
        const accepted = written - sock.writableLength;
        if (failure || !meter.tick(accepted, Math.floor(accepted / spec.size), 0, 0)) {
          resolve();
          return;
        }
        written += spec.size;
        writes++;
        const buf = bufs[next]!;
        next = next + 1 === buffers ? 0 : next + 1;
        if (!sock.write(buf)) {
          sock.once('drain', pump);
          return;
        }
        if ((writes & 15) === 0 && performance.now() >= yieldAt) {
          setImmediate(pump);
          return;
        }
      }
    };
    pump();
  });
  sock.end();
  if (!sock.closed) await once(sock, 'close');
  if (failure) throw failure;
  return meter.done!;
}

/** A node:net connection to the sink, written by writeLoop from `buffers` Buffers. */
async function netRun(spec: RunSpec, buffers: number): Promise<SenderResult> {
  const sock: Socket = connect({ host: '127.0.0.1', port: spec.port });
  await once(sock, 'connect');
  return writeLoop(sock, spec, buffers);
}

export const nodeNet: BenchMode = {
  name: 'node-net',
  describe: "Node net socket.write() with 'drain' backpressure (baseline)",
  zeroCopy: false,
  run: (spec) => netRun(spec, 1),
};

/**
 * node-net writing from as many distinct buffers as the io_uring modes keep
 * in flight (windowFor: about 1 MiB), so its copies read as much memory as
 * theirs do.  node-net re-sends one Buffer that stays in the CPU cache (a
 * real advantage of Node's API: write() copies at once, so the Buffer may be
 * reused); an io_uring sender cannot reuse a buffer before its send settles.
 */
export const nodeNetWindow: BenchMode = {
  name: 'node-net-window',
  describe: "diagnostic: node-net writing in turn from the io_uring modes' window of buffers (same bytes read per copy)",
  zeroCopy: false,
  run: (spec) => netRun(spec, windowFor(spec.size)),
};
