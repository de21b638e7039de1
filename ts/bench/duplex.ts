// SPDX-License-Identifier: MIT
/**
 * Our ZcSocket as a stream.Duplex, driven exactly like node-net (the same
 * write loop: socket.write() of one Buffer with 'drain' backpressure): the
 * price of the Node-shaped API over the Promise sends of mode `send`.
 */
import { once } from 'node:events';
import { connect, Ring } from '../index.ts';
import { writeLoop } from './node-net.ts';
import type { BenchMode, RunSpec, SenderResult } from './types.ts';

export const duplexMode: BenchMode = {
  name: 'duplex',
  describe: "our ZcSocket (stream.Duplex): socket.write() with 'drain', the node-net loop",
  zeroCopy: false,
  async run(spec: RunSpec): Promise<SenderResult> {
    const ring = Ring.create();
    try {
      const sock = connect({ ring, host: '127.0.0.1', port: spec.port });
      await once(sock, 'connect');
      return await writeLoop(sock, spec);
    } finally {
      await ring.close();
    }
  },
};
