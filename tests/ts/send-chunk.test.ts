// SPDX-License-Identifier: MIT
// send(chunk): the ownership-passing send of a received chunk.  The send
// takes the chunk (it counts as released at once: data, copy() and
// release() throw naming the handoff), sends its bytes from the receive
// area, and gives the memory back to the kernel when the send is over,
// on every path (sent, failed, canceled by a destroy or a ring close),
// exactly once.  Real loopback TCP, a node:net peer, bytes verified.
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Ring, ZcConfigError, ZcError, ZcOwnershipError, type ZcSocket } from '../../ts/index.ts';
import type { Chunk, ReceivedChunk, Receiver, RecvStream } from '../../ts/recv.ts';
import { setIntOption } from '../../ts/socket/sockopt.ts';
import { fillPattern, IN_VM } from './helpers.ts';
import { backendPair, listening, portOf, tcpPair, until } from './net-helpers.ts';

/** A small area: 16 buffers of 4 KiB, so every test goes through it many times over. */
const AREA = { mode: 'bufring', areaSize: 65536, bufferSize: 4096 } as const;

const rings: Ring[] = [];
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const r of rings.splice(0)) await r.close();
});
function ring(): Ring {
  const r = Ring.create({ entries: 256 });
  rings.push(r);
  return r;
}

/**
 * Every give-back of the receiver `rx`, checked: each chunk handed out is
 * given back once (a second release of an offset, or one never handed
 * out, is recorded as a violation).  `out` holds what is handed out.
 */
function ledger(rx: Receiver): { out: Set<number>; violations: string[]; releases: () => number; handed(c: Chunk): void } {
  const out = new Set<number>();
  const violations: string[] = [];
  let n = 0;
  const orig = rx.release.bind(rx);
  rx.release = (off: number): void => {
    n++;
    if (!out.delete(off)) violations.push(`release of offset ${off}, not held`);
    orig(off);
  };
  return {
    out,
    violations,
    releases: () => n,
    handed(c: Chunk): void {
      const off = c.address - rx.base;
      if (out.has(off)) violations.push(`offset ${off} handed out twice`);
      out.add(off);
    },
  };
}

/** A node:net client to `port` that collects everything it receives. */
async function netPeer(port: number): Promise<{ s: net.Socket; got: Buffer[]; bytes: () => number; all: () => Buffer }> {
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await once(s, 'connect');
  const got: Buffer[] = [];
  let bytes = 0;
  s.on('data', (b: Buffer) => {
    got.push(b);
    bytes += b.length;
  });
  s.on('error', () => {});
  closers.push(() => s.destroy());
  return { s, got, bytes: () => bytes, all: () => Buffer.concat(got) };
}

/** A uring server socket (accepted on `r`) and a node:net peer connected to it. */
async function serverAndPeer(r: Ring): Promise<{ server: ZcSocket; peer: Awaited<ReturnType<typeof netPeer>> }> {
  const listener = await listening({ ring: r });
  closers.push(() => listener.close());
  const accepted = listener.accept();
  const peer = await netPeer(portOf(listener));
  const server = await accepted;
  server.setNoDelay(true);
  closers.push(() => server.destroy());
  return { server, peer };
}

const receiverOf = (st: unknown): Receiver => (st as RecvStream).receiver;

describe.each(['callback', 'promise'] as const)('send(chunk) echo (%s form)', (form) => {
  it('echoes every byte through send(chunk), many messages and sizes, well past the area, coalesced sends included', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    let settled = 0;
    let failed: unknown = null;
    let led!: ReturnType<typeof ledger>;
    // sends that went as one coalesced request (CoalescedSend) through the ring
    let coalesced = 0;
    const enq = r.enqueueBatched.bind(r);
    r.enqueueBatched = ((req: { constructor: { name: string } }) => {
      if (req.constructor.name === 'CoalescedSend') coalesced++;
      return enq(req as never);
    }) as typeof r.enqueueBatched;
    const st = server.receive(AREA, {
      chunk: (c) => {
        led.handed(c as Chunk);
        if (form === 'callback') {
          server.send(c, undefined, (err) => {
            if (err) failed ??= err;
            settled++;
          });
        } else {
          server.send(c).then(
            (res) => {
              if (res.bytes !== c.length) failed ??= new Error(`resolved ${res.bytes} of ${c.length}`);
              settled++;
            },
            (e: unknown) => {
              failed ??= e;
              settled++;
            },
          );
        }
      },
      end: () => {},
    });
    const rx = receiverOf(st);
    led = ledger(rx);
    // 1 MiB in the VMs, 4 MiB on the host: 16-64x the 64 KiB area.
    const total = IN_VM ? 1 << 20 : 4 << 20;
    const stream = Buffer.alloc(total);
    fillPattern(stream, 0);
    const sizes = [1, 100, 4096, 10_000, 65536, 7, 3000, 20_000];
    let off = 0;
    let i = 0;
    while (off < total) {
      // bursts of writes: several chunks per server wakeup, whose sends coalesce
      const burst = Math.min(total - off, sizes[i++ % sizes.length]! * 3);
      peer.s.write(stream.subarray(off, off + burst));
      off += burst;
      if (i % 4 === 0) await until(() => peer.bytes() >= off - 70_000);
    }
    await until(() => peer.bytes() >= total);
    expect(peer.all().equals(stream)).toBe(true);
    await until(() => settled === st.chunks);
    await server.settled();
    expect(failed).toBe(null);
    expect(st.chunks).toBeGreaterThan(total / 4096 - 1);
    expect(led.violations).toEqual([]);
    expect(led.releases()).toBe(st.chunks); // each chunk given back once
    expect(led.out.size).toBe(0);
    expect(rx.info().held).toBe(0);
    expect(coalesced).toBeGreaterThan(0);
  });
});

describe('send(chunk) behind a full ring', () => {
  it('sends that waited in JS for a request slot are issued from the chunk\'s address: bytes verified', async () => {
    const r = Ring.create({ entries: 4, maxRequests: 8 });
    rings.push(r);
    const { server, peer } = await serverAndPeer(r);
    peer.s.pause(); // the echo backs up, sends stay in flight and the ring fills
    setIntOption(r, server.fd, 1, 7, 4096); // SOL_SOCKET, SO_SNDBUF: small, so sends wait in the kernel early
    let failed: unknown = null;
    let settled = 0;
    let led!: ReturnType<typeof ledger>;
    const st = server.receive({ mode: 'bufring', areaSize: 1 << 20, bufferSize: 4096 }, {
      chunk: (c) => {
        led.handed(c as Chunk);
        server.send(c, undefined, (err) => {
          if (err) failed ??= err;
          settled++;
        });
      },
      end: () => {},
    });
    led = ledger(receiverOf(st));
    const total = 2 << 20;
    const stream = Buffer.alloc(total);
    fillPattern(stream, 0);
    for (let off = 0; off < total; off += 3000) peer.s.write(stream.subarray(off, Math.min(total, off + 3000)));
    await until(() => r.stats.backpressured > 0 || st.bytes >= total);
    peer.s.resume();
    await until(() => peer.bytes() >= total);
    expect(peer.all().equals(stream)).toBe(true);
    await until(() => settled === st.chunks);
    expect(failed).toBe(null);
    expect(r.stats.backpressured).toBeGreaterThan(0);
    expect(led.violations).toEqual([]);
    expect(led.out.size).toBe(0);
  });
});

describe('send(chunk) ownership', () => {
  it('takes the chunk: data, copy(), release() and a second send throw naming the handoff; using leaves it alone', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const st = server.receive(AREA);
    const led = ledger(receiverOf(st));
    peer.s.write('hello chunk');
    const { value } = await st.next();
    const c = value as Chunk;
    led.handed(c);
    const p = server.send(c);
    expect(c.released).toBe(true);
    expect(() => c.data).toThrow(ZcOwnershipError);
    expect(() => c.data).toThrow(/handed to send\(\)/);
    expect(() => c.copy()).toThrow(/handed to send\(\)/);
    expect(() => c.release()).toThrow(ZcOwnershipError);
    expect(() => c.release()).toThrow(/handed to send\(\)/);
    expect(() => server.send(c)).toThrow(/handed to send\(\)/);
    expect(() => server.send(c, undefined, () => {})).toThrow(ZcOwnershipError);
    c[Symbol.dispose](); // no throw, no release
    expect(await p).toEqual({ bytes: 11, zeroCopy: 'copied' });
    await until(() => peer.bytes() >= 11);
    expect(peer.all().toString()).toBe('hello chunk');
    // after the send completed: still the handoff's error, memory given back once
    expect(() => c.data).toThrow(/handed to send\(\)/);
    expect(() => c.release()).toThrow(/handed to send\(\)/);
    expect(led.releases()).toBe(1);
    expect(led.violations).toEqual([]);
    expect(receiverOf(st).info().held).toBe(0);
  });

  it('refuses a released chunk and leaves the memory alone', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const st = server.receive(AREA);
    const led = ledger(receiverOf(st));
    peer.s.write('abc');
    const c = (await st.next()).value as Chunk;
    led.handed(c);
    c.release();
    expect(() => server.send(c)).toThrow(ZcOwnershipError);
    expect(() => server.send(c)).toThrow(/released/);
    expect(() => server.send(c, undefined, () => {})).toThrow(/released/);
    await server.settled();
    expect(led.releases()).toBe(1);
    expect(led.violations).toEqual([]);
    expect(server.inFlight).toBe(0);
  });

  it('offset/length cut the chunk as a Uint8Array; bad ones throw ZcConfigError and do not take it', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const st = server.receive(AREA);
    const led = ledger(receiverOf(st));
    peer.s.write('0123456789');
    let c = (await st.next()).value as Chunk;
    while (c.length < 10) {
      // loopback may split it: gather until one chunk holds all ten (rare)
      c.release();
      peer.s.write('0123456789');
      c = (await st.next()).value as Chunk;
    }
    led.handed(c);
    expect(() => server.send(c, { offset: 11 })).toThrow(ZcConfigError);
    expect(() => server.send(c, { offset: 4, length: 7 })).toThrow(ZcConfigError);
    expect(c.released).toBe(false);
    expect(c.data.toString()).toBe('0123456789');
    expect(await server.send(c, { offset: 2, length: 5 })).toEqual({ bytes: 5, zeroCopy: 'copied' });
    await until(() => peer.bytes() >= 5);
    expect(peer.all().toString()).toBe('23456');
    expect(led.releases()).toBe(1);
    expect(led.violations).toEqual([]);
  });

  it('refuses a chunk of another ring with a clear error; the chunk stays the caller’s', async () => {
    const r1 = ring();
    const r2 = ring();
    const { server, peer } = await serverAndPeer(r1);
    const other = await tcpPair(r2);
    closers.push(() => {
      other.client.destroy();
      other.server.destroy();
      return other.listener.close();
    });
    const st = server.receive(AREA);
    peer.s.write('xyz');
    const c = (await st.next()).value as Chunk;
    expect(() => other.client.send(c)).toThrow(ZcOwnershipError);
    expect(() => other.client.send(c, undefined, () => {})).toThrow(new RegExp(`ring #${r1.id}.*ring #${r2.id}`));
    expect(c.released).toBe(false);
    expect(c.data.toString()).toBe('xyz');
    c.release();
  });

  it('after writes of the same tick: sent in order, given back once', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const st = server.receive(AREA);
    const led = ledger(receiverOf(st));
    peer.s.write('chunk');
    const c = (await st.next()).value as Chunk;
    led.handed(c);
    server.write('first:'); // buffered in the Duplex this tick: the send queues behind it
    const p = server.send(c);
    expect(() => c.data).toThrow(/handed to send\(\)/);
    server.write(':last');
    expect((await p).bytes).toBe(5);
    await until(() => peer.bytes() >= 16);
    expect(peer.all().toString()).toBe('first:chunk:last');
    expect(led.releases()).toBe(1);
    expect(led.violations).toEqual([]);
  });

  it('a send with an aborted signal gives the chunk back at once', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const st = server.receive(AREA);
    const led = ledger(receiverOf(st));
    peer.s.write('abc');
    const c = (await st.next()).value as Chunk;
    led.handed(c);
    const ac = new AbortController();
    ac.abort();
    await expect(server.send(c, { signal: ac.signal })).rejects.toThrow(/abort/i);
    expect(() => c.data).toThrow(/handed to send\(\)/);
    expect(led.releases()).toBe(1);
    expect(led.violations).toEqual([]);
  });
});

describe('send(chunk) error paths give the memory back exactly once', () => {
  it('sends to a peer that reset fail, and each chunk comes back once', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const held: Chunk[] = [];
    let ended: unknown = 'not yet';
    const st = server.receive(AREA, {
      chunk: (c) => void held.push(c as Chunk),
      end: (err) => void (ended = err),
    });
    const led = ledger(receiverOf(st));
    peer.s.write(Buffer.alloc(20_000, 7));
    await until(() => st.bytes >= 20_000);
    for (const c of held) led.handed(c);
    peer.s.resetAndDestroy();
    await until(() => ended !== 'not yet');
    const errs: (Error | null)[] = [];
    for (const c of held) {
      try {
        server.send(c, undefined, (err) => errs.push(err));
      } catch (e) {
        errs.push(e as Error); // the socket may be gone already: then nothing was taken
        c.release();
      }
    }
    await until(() => errs.length === held.length);
    expect(errs.every((e) => e !== null)).toBe(true);
    await server.settled();
    expect(led.violations).toEqual([]);
    expect(led.out.size).toBe(0);
    expect(led.releases()).toBe(held.length);
  });

  it('destroy during sends to a peer that does not read: every pending send settles and each chunk comes back once', async () => {
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    peer.s.pause(); // reads nothing: the server's echo fills the socket and its sends wait in the kernel
    let settled = 0;
    const errs: ZcError[] = [];
    let led!: ReturnType<typeof ledger>;
    let taken = 0;
    const st = server.receive(AREA, {
      chunk: (c) => {
        led.handed(c as Chunk);
        try {
          server.send(c, undefined, (err) => {
            settled++;
            if (err) errs.push(err as ZcError);
          });
          taken++;
        } catch {
          c.release(); // destroyed meanwhile: not taken
        }
      },
      end: () => {},
    });
    led = ledger(receiverOf(st));
    const junk = Buffer.alloc(64 * 1024, 1);
    const writer = setInterval(() => {
      if (!peer.s.destroyed) peer.s.write(junk);
    }, 1);
    closers.push(() => clearInterval(writer));
    // the echo backs up: sends stay in flight
    await until(() => server.inFlight > 0 && taken > 50 && server.inFlight === taken - settled && taken - settled > 0);
    const t0 = Date.now();
    while (Date.now() - t0 < 50 && server.inFlight === 0) await new Promise((res) => setTimeout(res, 5));
    clearInterval(writer);
    const pending = taken - settled;
    expect(pending).toBeGreaterThan(0);
    server.destroy();
    await once(server, 'close');
    expect(settled).toBe(taken);
    expect(errs.length).toBeGreaterThan(0); // the pending ones failed (ECANCELED / reset)
    expect(led.violations).toEqual([]);
    expect(led.out.size).toBe(0);
  });

  it('ring close with sends in flight: every send settles, no chunk given back twice', async () => {
    const r = Ring.create({ entries: 256 }); // closed by the test
    const { server, peer } = await serverAndPeer(r);
    peer.s.pause();
    let settled = 0;
    let taken = 0;
    let led!: ReturnType<typeof ledger>;
    const st = server.receive(AREA, {
      chunk: (c) => {
        led.handed(c as Chunk);
        try {
          server.send(c, undefined, () => settled++);
          taken++;
        } catch {
          c[Symbol.dispose]();
        }
      },
      end: () => {},
    });
    led = ledger(receiverOf(st));
    const junk = Buffer.alloc(64 * 1024, 2);
    const writer = setInterval(() => {
      if (!peer.s.destroyed) peer.s.write(junk);
    }, 1);
    closers.push(() => clearInterval(writer));
    await until(() => taken > 50 && taken - settled > 0);
    clearInterval(writer);
    await r.close();
    await until(() => settled === taken);
    expect(led.violations).toEqual([]);
  });
});

describe('send(chunk) on the net backend', () => {
  it('sends a net chunk as its Buffer (taken), refuses a ring chunk', async () => {
    const pair = await backendPair('net', undefined);
    closers.push(() => pair.done());
    const st = pair.server.receive();
    pair.client.write('net bytes');
    const c = (await st.next()).value as ReceivedChunk;
    const got: Buffer[] = [];
    pair.client.on('data', (b: Buffer) => got.push(b));
    expect(await pair.server.send(c)).toMatchObject({ bytes: c.length });
    expect(() => c.data).toThrow(/handed to send\(\)/);
    expect(() => c.release()).toThrow(/handed to send\(\)/);
    await until(() => Buffer.concat(got).length >= 9);
    expect(Buffer.concat(got).toString()).toBe('net bytes');
    // a chunk of a ring's receive area: the net socket has no ring to hold it
    const r = ring();
    const { server, peer } = await serverAndPeer(r);
    const rst = server.receive(AREA);
    peer.s.write('ring');
    const rc = (await rst.next()).value as Chunk;
    expect(() => pair.server.send(rc)).toThrow(ZcOwnershipError);
    expect(() => pair.server.send(rc, undefined, () => {})).toThrow(/'net' backend/);
    expect(rc.data.toString()).toBe('ring');
    rc.release();
  });
});
