// SPDX-License-Identifier: MIT
// The thread's shared ring serves many connections: every socket keeps a
// receive in flight for good, so a ring with fewer request slots than
// connections would leave their echoes waiting for slots forever.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createServer } from '../../ts/index.ts';
import { defaultRing, SHARED_RING_ENTRIES } from '../../ts/socket/backend.ts';
import { IN_VM } from './helpers.ts';

describe('the shared ring', () => {
  it(`echoes on ${IN_VM ? 600 : 1000} connections at once (more than the 512 requests of a 256-entry ring)`, async () => {
    const n = IN_VM ? 600 : 1000;
    const server = createServer({ noDelay: true, backlog: 4096 }, (s) => {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('error', () => s.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = server.address()!.port;
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < n; i++) socks.push(connect({ host: '127.0.0.1', port, noDelay: true }));
      await Promise.all(socks.map((c) => once(c, 'connect')));
      const req = Buffer.alloc(1024);
      const echoed = await Promise.all(
        socks.map(
          (c, i) =>
            new Promise<boolean>((resolve) => {
              req.fill(i & 255);
              const want = Buffer.from(req);
              const got: Buffer[] = [];
              let len = 0;
              c.on('data', (d: Buffer) => {
                got.push(d);
                len += d.length;
                if (len >= 1024) resolve(Buffer.concat(got).equals(want));
              });
              c.write(want);
            }),
        ),
      );
      expect(echoed.every(Boolean)).toBe(true);
      expect(defaultRing().options.entries).toBe(SHARED_RING_ENTRIES);
    } finally {
      for (const c of socks) c.destroy();
      server.close();
    }
  });
});
