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

/** A stream socket as the write loop needs it (net.Socket and ZcSocket both are). */
export interface WritableSocket {
  write(b: Buffer): boolean;
  end(): unknown;
  readonly writableLength: number;
  readonly closed: boolean;
  on(ev: 'error', f: (e: Error) => void): unknown;
  once(ev: 'drain', f: () => void): unknown;
}

/** The write loop of node-net (and of our Duplex, bench duplex mode). */
export async function writeLoop(sock: WritableSocket & NodeJS.EventEmitter, spec: RunSpec): Promise<SenderResult> {
  const buf = Buffer.allocUnsafe(spec.size);
  fillPattern(buf);
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

export const nodeNet: BenchMode = {
  name: 'node-net',
  describe: "Node net socket.write() with 'drain' backpressure (baseline)",
  zeroCopy: false,
  async run(spec: RunSpec): Promise<SenderResult> {
    const sock: Socket = connect({ host: '127.0.0.1', port: spec.port });
    await once(sock, 'connect');
    return writeLoop(sock, spec);
  },
};
