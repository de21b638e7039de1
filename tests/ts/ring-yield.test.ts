// SPDX-License-Identifier: MIT
// A busy ring gives Node's event loop its turn (issue 9): a flush run from a
// microtask reaps the records already there, and their handlers queue the
// next flush; request/response traffic on one ring would keep the process
// in that microtask chain for good (no timers, no other I/O, a Promise
// chain of several steps, such as an accept loop, advancing one step per
// flush).  After a few chained flushes that have kept the loop waiting
// for CHAIN_BUDGET_MS (1 ms) the ring submits and takes the records in a
// later turn of the loop instead, or, when the loop has nothing due (the
// watcher's due()), from Node's tick queue.
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Ring, ZcDatagram, type ZcSocket } from '../../ts/index.ts';
import { tcpPair } from './net-helpers.ts';
import { IN_VM, scaledVm } from './helpers.ts';

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

// A sender whose sends all complete inside the flush that submits them (UDP
// to a socket of this host that never reads: the kernel drops what its
// receive buffer cannot take) is one chain of flushes for as long as it
// sends.  When a turn of the event loop would find nothing to run (no timer
// due, no immediate, no ready fd), the ring yields to Node's tick queue only;
// whatever the loop has becomes due is still served within the chain's budget.
const BUSY_CAP_MS = IN_VM ? 60_000 : 10_000; // a liveness cap, not a bound the test asserts

/**
 * Keep WINDOW datagrams of 64 B in flight through the callback API until
 * step(sent, ms) returns true (ms since the start) or BUSY_CAP_MS passed.
 */
async function busySend(ring: Ring, step: (sent: number, ms: number) => boolean): Promise<{ sent: number; capped: boolean }> {
  const sink = await ZcDatagram.open({ ring, host: '127.0.0.1', port: 0 });
  const port = sink.address()!.port;
  const tx = await ZcDatagram.open({ ring, connect: { host: '127.0.0.1', port } });
  const msg = new Uint8Array(64).fill(1);
  const t0 = performance.now();
  let sent = 0;
  let capped = false;
  let stop = false;
  let failure: Error | null = null;
  await new Promise<void>((resolve) => {
    let inflight = 0;
    const again = (err: Error | null): void => {
      inflight--;
      if (err) {
        failure ??= err;
        stop = true;
      } else {
        sent++;
        if (!stop) {
          const ms = performance.now() - t0;
          if (ms > BUSY_CAP_MS) capped = stop = true;
          else if (step(sent, ms)) stop = true;
        }
      }
      if (!stop) {
        inflight++;
        tx.send(msg, { mode: 'copy' }, again);
      } else if (inflight === 0) {
        resolve();
      }
    };
    for (let i = 0; i < 16; i++) {
      inflight++;
      tx.send(msg, { mode: 'copy' }, again);
    }
  });
  await tx.close();
  await sink.close();
  if (failure) throw failure;
  return { sent, capped };
}

describe.each(['ring', 'epoll'] as const)('a busy ring whose sends complete inline (UDP, loopWait %s)', (loopWait) => {
  it('with nothing of the loop due, yields to the tick queue: a nextTick and a microtask run, no turn of the loop', async () => {
    const ring = Ring.create({ loopWait });
    try {
      const y0 = ring.chainYields;
      let now = 0;
      let tickAt = -1;
      let microAt = -1;
      let queued = -1;
      // Counted, not timed: on until the tick and the microtask ran and 20 yields came after
      // (a starved host may stall a send for a long while).
      const { sent, capped } = await busySend(ring, (n, ms) => {
        now = n;
        if (queued < 0 && ms >= 50) {
          queued = n;
          process.nextTick(() => (tickAt = now));
          void Promise.resolve().then(() => (microAt = now));
        }
        const y = ring.chainYields;
        return tickAt >= 0 && microAt >= 0 && y.loop + y.tick - y0.loop - y0.tick >= 20;
      });
      const y = ring.chainYields;
      const loop = y.loop - y0.loop;
      const tick = y.tick - y0.tick;
      const seen = JSON.stringify({ sent, capped, loop, tick, tickAt, microAt, queued, watcher: ring.watcher, sleep: ring.loopWait });
      expect(capped, seen).toBe(false);
      // both ran while the sends went on
      expect(tickAt, seen).toBeGreaterThanOrEqual(queued);
      expect(microAt, seen).toBeGreaterThanOrEqual(queued);
      if (ring.loopWait === 'ring') {
        // (in epoll the loop's turns come from an immediate, whose idle handle reads as one pending)
        expect(tick, seen).toBeGreaterThan(loop);
      }
      if (ring.watcher === 'koffi') expect(tick, seen).toBe(0); // it cannot tell: the loop has every turn
    } finally {
      await ring.close();
    }
  });

  it('a timer made during the chain fires at the first yield after it is due, timed from the loop clock of its making', async () => {
    const ring = Ring.create({ loopWait });
    try {
      let madeAt = -1;
      let firedAfter = -1;
      let immediateRan = false;
      // tick-only yields from the moment the timer was overdue (by performance.now()) to its run
      let overdueTicks = -1;
      let firedTicks = -1;
      const { capped } = await busySend(ring, (_n, ms) => {
        if (madeAt < 0 && ms >= 150) {
          madeAt = performance.now();
          setTimeout(() => {
            firedAfter = performance.now() - madeAt;
            firedTicks = ring.chainYields.tick;
          }, 50);
          setImmediate(() => (immediateRan = true));
        } else if (madeAt >= 0 && overdueTicks < 0 && performance.now() - madeAt >= 52) {
          overdueTicks = ring.chainYields.tick;
        }
        return firedAfter >= 0 && immediateRan;
      });
      const seen = JSON.stringify({ capped, firedAfter, immediateRan, overdueTicks, firedTicks });
      expect(capped, seen).toBe(false);
      // A loop clock left where the chain began (150 ms back) would have made it due at once...
      expect(firedAfter, seen).toBeGreaterThanOrEqual(40);
      // ...and one not brought up to date by the ring would leave it waiting through yields to the tick queue.
      if (overdueTicks >= 0) expect(firedTicks - overdueTicks, seen).toBeLessThanOrEqual(1);
    } finally {
      await ring.close();
    }
  });

  it("another fd's I/O (a worker's message) is served at the first yield after it came", async () => {
    const ring = Ring.create({ loopWait });
    // the worker sets posted[0] once its postMessage() returned (the message is on the main loop's eventfd by then)
    const posted = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      "const { parentPort, workerData } = require('node:worker_threads');" +
        'parentPort.on(\'message\', () => setTimeout(() => { parentPort.postMessage(\'ping\'); Atomics.store(workerData, 0, 1); }, 50));',
      { eval: true, workerData: posted },
    );
    try {
      await new Promise((r) => worker.once('online', r));
      let gotTicks = -1;
      worker.once('message', () => (gotTicks = ring.chainYields.tick));
      let asked = false;
      // tick-only yields from the moment the message was on its way (seen by a send's callback) to its handling
      let postedTicks = -1;
      const { capped } = await busySend(ring, (_n, ms) => {
        if (!asked && ms >= 50) {
          asked = true;
          worker.postMessage('go');
        } else if (postedTicks < 0 && Atomics.load(posted, 0) === 1) {
          postedTicks = ring.chainYields.tick;
        }
        return gotTicks >= 0;
      });
      const seen = JSON.stringify({ capped, postedTicks, gotTicks });
      expect(capped, seen).toBe(false);
      expect(gotTicks, seen).toBeGreaterThanOrEqual(0);
      if (postedTicks >= 0) expect(gotTicks - postedTicks, seen).toBeLessThanOrEqual(1);
    } finally {
      await worker.terminate();
      await ring.close();
    }
  });
});
