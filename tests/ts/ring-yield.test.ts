// SPDX-License-Identifier: MIT
// A busy ring gives Node's event loop its turn (issue 9): a flush run from a
// microtask reaps the records already there, and their handlers queue the
// next flush; request/response traffic on one ring would keep the process
// in that microtask chain for good (no timers, no other I/O, a Promise
// chain of several steps, such as an accept loop, advancing one step per
// flush).  After a few chained flushes that have kept the loop waiting
// for CHAIN_BUDGET_MS (1 ms) the ring submits and takes the records from
// the loop's check phase instead.
import { describe, expect, it } from 'vitest';
import { Ring, type ZcSocket } from '../../ts/index.ts';
import { tcpPair } from './net-helpers.ts';
import { scaledVm } from './helpers.ts';

// long enough to be many chained flushes and well over a millisecond (75 under TCG)
const ROUNDS = scaledVm(3000, 50);

async function echo(s: ZcSocket): Promise<void> {
  for await (const chunk of s.receive()) {
    s.send(chunk.data, undefined, () => chunk.release());
  }
}

describe.each([false, true])('a busy ring yields to the event loop (deferTaskrun=%s)', (deferTaskrun) => {
  it('lets a setImmediate and a timer run during a ping-pong that never waits on its own', async () => {
    const ring = Ring.create({ deferTaskrun });
    try {
      const { client, server, listener } = await tcpPair(ring);
      client.setNoDelay(true);
      server.setNoDelay(true);
      const served = echo(server);
      const stream = client.receive();
      const msg = new Uint8Array(64).fill(7);
      let done = 0;
      let atImmediate = -1;
      let atTimer = -1;
      setImmediate(() => (atImmediate = done));
      setTimeout(() => (atTimer = done), 1);
      for (; done < ROUNDS; done++) {
        client.send(msg, undefined, (err) => {
          if (err) throw err;
        });
        let got = 0;
        while (got < msg.length) {
          const r = await stream.next();
          expect(r.done).toBe(false);
          const c = r.value!;
          expect(c.data.every((b: number) => b === 7)).toBe(true);
          got += c.length;
          c.release();
        }
        expect(got).toBe(msg.length);
      }
      // Both ran while round trips were still being made, not after the last.
      expect(atImmediate).toBeGreaterThanOrEqual(0);
      expect(atImmediate).toBeLessThan(ROUNDS);
      expect(atTimer).toBeGreaterThanOrEqual(0);
      expect(atTimer).toBeLessThan(ROUNDS);
      stream.cancel();
      await client.close();
      server.destroy();
      await served.catch(() => undefined);
      await listener.close();
    } finally {
      ring.close();
    }
  });
});
