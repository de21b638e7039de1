// SPDX-License-Identifier: MIT
// The callback form of receive (issue 9): `socket.receive(options, handler)`
// and `stream.consume(handler)` hand every chunk to handler.chunk() in
// order (checked byte for byte), then call handler.end() once: null at the
// FIN and after cancel(), the error after a reset.  chunk() returning
// false pauses the stream until resume(); next() and a second consume()
// are refused with EBUSY; a throwing handler is an uncaught exception and
// the stream goes on.  The same on the io_uring and node:net backends.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, ZcError, type Backend, type ChunkHandler, type ReceivedChunk, type ZcSocket } from '../../ts/index.ts';
import { backendPair, listening, portOf, until } from './net-helpers.ts';
import { childJson, IN_VM, runTs, scaled, sleep } from './helpers.ts';

describe.each<Backend>(['uring', 'net'])('receive(options, handler), backend %s', (backend) => {
  let ring: Ring | undefined;
  beforeAll(() => {
    if (backend === 'uring') ring = Ring.create();
  });
  afterAll(async () => {
    await ring?.close();
  });
  const pair = (): ReturnType<typeof backendPair> => backendPair(backend, ring);

  /** Sends `data` in 64 KiB sends, then closes (FIN). */
  async function sendAll(client: ZcSocket, data: Buffer): Promise<void> {
    for (let off = 0; off < data.length; off += 65536) {
      const part = data.subarray(off, Math.min(data.length, off + 65536));
      expect((await client.send(part)).bytes).toBe(part.length);
    }
    await client.close();
  }

  it('hands every chunk over in order, then end(null) once at the FIN; next() is refused', async () => {
    const { client, server, done } = await pair();
    const total = scaled(64) * 65536;
    const expected = randomBytes(total);
    let got = 0;
    let bad = -1;
    let ends: (ZcError | null)[] = [];
    let inCall = false;
    let sync = false;
    const stream = server.receive(undefined, {
      chunk: (c) => {
        if (inCall) sync = true;
        if (c.streamOffset !== got && bad < 0) bad = got;
        const d = c.data;
        if (bad < 0 && !d.equals(expected.subarray(got, got + d.length))) bad = got;
        got += d.length;
        c.release();
      },
      end: (err) => {
        ends = [...ends, err];
      },
    });
    inCall = false;
    await expect(stream.next()).rejects.toMatchObject({ code: 'EBUSY', op: 'recv.next' });
    expect(() => stream.consume({ chunk: () => undefined, end: () => undefined })).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    await sendAll(client, expected);
    await until(() => ends.length > 0);
    expect(sync).toBe(false);
    expect(bad).toBe(-1);
    expect(got).toBe(total);
    expect(stream.bytes).toBe(total);
    expect(ends).toEqual([null]);
    await stream.finished;
    await sleep(20);
    expect(ends).toEqual([null]);
    await done();
  }, 60_000);

  it('chunk() returning false pauses until resume(); nothing is lost or reordered', async () => {
    const { client, server, done } = await pair();
    const total = 4 << 20;
    const expected = randomBytes(total);
    const held: ReceivedChunk[] = [];
    let got = 0;
    let bad = -1;
    let paused = false;
    let callsWhilePaused = 0;
    let ended = false;
    const stream = server.receive(undefined, {
      chunk: (c) => {
        if (paused) callsWhilePaused++;
        if (bad < 0 && !c.data.equals(expected.subarray(got, got + c.length))) bad = got;
        got += c.length;
        held.push(c);
        if (held.length === 1) {
          paused = true;
          return false;
        }
        c.release();
        return true;
      },
      end: () => {
        ended = true;
      },
    });
    const sending = sendAll(client, expected);
    await until(() => paused);
    // Paused: the peer keeps sending (into the socket buffers) and the handler is not called.
    await sleep(200);
    expect(callsWhilePaused).toBe(0);
    expect(got).toBeLessThan(total);
    stream.resume();
    stream.resume(); // a second resume before the feed is harmless
    paused = false;
    held[0]!.release();
    await sending;
    await until(() => ended);
    expect(bad).toBe(-1);
    expect(got).toBe(total);
    await done();
  }, 60_000);

  it('a reset ends the handler with ZcError ECONNRESET, once', async () => {
    const { client, server, done } = await pair();
    server.on('error', () => {});
    const ends: (ZcError | null)[] = [];
    let text = '';
    server.receive(undefined, {
      chunk: (c) => {
        text += c.copy().toString();
        c.release();
      },
      end: (err) => ends.push(err),
    });
    await client.send(Buffer.from('hello'));
    await until(() => text === 'hello');
    client.resetAndDestroy();
    await until(() => ends.length > 0);
    expect(ends[0]).toBeInstanceOf(ZcError);
    expect(ends[0]).toMatchObject({ code: 'ECONNRESET', op: 'recv' });
    await sleep(20);
    expect(ends.length).toBe(1);
    await done();
  });

  it('cancel() ends the handler with null, once; consume() after receive() takes queued chunks first', async () => {
    const { client, server, done } = await pair();
    const stream = server.receive();
    await client.send(Buffer.from('abc'));
    await until(() => stream.queued > 0);
    const seen: string[] = [];
    const ends: (ZcError | null)[] = [];
    const h: ChunkHandler<ReceivedChunk> = {
      chunk: (c) => {
        seen.push(c.copy().toString());
        c.release();
      },
      end: (err) => ends.push(err),
    };
    stream.consume(h);
    expect(seen).toEqual([]); // handed over from a microtask, not inside consume()
    await client.send(Buffer.from('def'));
    await until(() => seen.join('') === 'abcdef');
    stream.cancel();
    expect(ends).toEqual([null]);
    stream.cancel();
    await stream.finished;
    expect(ends).toEqual([null]);
    await done();
  });

  it('refuses a handler without chunk() and end() (TypeError), and consume() while next() is pending', async () => {
    const { server, done } = await pair();
    expect(() => server.receive(undefined, {} as ChunkHandler<ReceivedChunk>)).toThrow(TypeError);
    const stream = server.receive();
    const pending = stream.next();
    expect(() => stream.consume({ chunk: () => undefined, end: () => undefined })).toThrow(expect.objectContaining({ code: 'EBUSY', op: 'recv.consume' }));
    stream.cancel();
    expect(await pending).toEqual({ value: undefined, done: true });
    await done();
  });
});

it('a throwing chunk handler is an uncaught exception and the stream goes on (both backends)', async () => {
  const r = await runTs('tests/ts/fixtures/receive-handler-throw-child.ts', [], { timeoutMs: IN_VM ? 100_000 : 20_000 });
  const out = childJson<Record<string, { seen: string[]; text: string; ends: (string | null)[] }>>(r);
  for (const backend of ['uring', 'net']) {
    expect(out[backend]).toEqual({
      seen: ['uncaughtException: from chunk 1', 'uncaughtException: from end'],
      text: 'onetwothree',
      ends: [null],
    });
  }
});

it('a chunk handler that throws gives its chunk back: the receive area is not held for good (both backends)', async () => {
  const r = await runTs('tests/ts/fixtures/receive-throw-release-child.ts', [], { timeoutMs: IN_VM ? 100_000 : 30_000 });
  const j = childJson<{
    error?: string;
    uring: { chunks: number; text: string; held: number; bufferCount: number; released: boolean; thrown: string[]; ends: (string | null)[] };
    net: { text: string; released: boolean; thrown: string[]; ends: (string | null)[] };
  }>(r);
  expect(j.error).toBeUndefined();
  expect(r.code).toBe(0);
  const all = (n: number) => Array.from({ length: n }, (_, i) => `m${i};`).join('');
  const froms = (n: number) => Array.from({ length: n }, (_, i) => `from chunk ${i + 1}`);
  // 40 messages through an area of 8 buffers, every handler call throwing
  // (half before release(), half after): each chunk came back, exactly once
  // (a second release would be a ZcOwnershipError among the uncaught ones)
  expect(j.uring.bufferCount).toBe(8);
  expect(j.uring.chunks).toBe(40);
  expect(j.uring.text).toBe(all(40));
  expect(j.uring.released).toBe(true);
  expect(j.uring.held).toBe(0);
  expect(j.uring.thrown).toEqual(froms(40));
  expect(j.uring.ends).toEqual([null]);
  expect(j.net.text).toBe(all(6));
  expect(j.net.released).toBe(true);
  expect(j.net.thrown).toEqual(froms(6));
  expect(j.net.ends).toEqual([null]);
});

it('a chunk handler that hands c.data on and throws keeps the chunk: the write reads its bytes, not a later message', async () => {
  const r = await runTs('tests/ts/fixtures/receive-throw-view-child.ts', [], { timeoutMs: IN_VM ? 100_000 : 30_000 });
  type Run = { error?: string; releasedAfterThrow: boolean; heldAfterThrow: number; tailIntact: boolean; tailKinds: string; later: string[]; thrown: string[] };
  const j = childJson<{ net: Run; ring: Run; read: Run }>(r);
  expect(r.code).toBe(0);
  // c.data given to a node:net write and to a ZcSocket send, released from
  // their callbacks, then a throw; three later messages come through the
  // area's two buffers: the chunk was not released under the write, the
  // peer reads the chunk's 'A's (before: the later 'C's, and the callback's
  // release() failed with ZcOwnershipError)
  for (const t of [j.net, j.ring]) {
    expect(t.error).toBeUndefined();
    expect({ released: t.releasedAfterThrow, held: t.heldAfterThrow }).toEqual({ released: false, held: 1 });
    expect({ tailIntact: t.tailIntact, tailKinds: t.tailKinds }).toEqual({ tailIntact: true, tailKinds: 'A' });
    expect(t.later).toEqual(['Bx4096', 'Cx4096', 'Dx4096']);
    expect(t.thrown).toEqual(['after handing the bytes on']);
  }
  // a handler that read c.data and threw: its chunk stays its own (held)
  // until released
  expect(j.read.error).toBeUndefined();
  expect({ released: j.read.releasedAfterThrow, held: j.read.heldAfterThrow }).toEqual({ released: false, held: 1 });
  expect(j.read.later).toEqual(['Bx4096']);
  expect(j.read.thrown).toEqual(['after reading the bytes']);
});

it('a reply sent from a chunk handler and from a microtask it queued leaves as one send (one tick, coalesced)', async () => {
  // README: sends made in one tick on a stream socket leave together.  A
  // wakeup's handler send and the send of a microtask the handler queued are
  // one tick: one request, one segment (split in two without TCP_NODELAY,
  // the second waits for the peer's delayed ACK, ~40 ms per round trip).
  // The client is node:net, so every record of the server's ring comes
  // with a wakeup; counted in requests the ring issued: one per reply.
  const ring = Ring.create();
  const listener = await listening({ ring });
  const conn = connect({ host: '127.0.0.1', port: portOf(listener) });
  let accepted: ZcSocket | undefined;
  try {
    const server = await listener.accept();
    accepted = server;
    const size = 64;
    const rounds = 20;
    server.receive(undefined, {
      chunk: (c) => {
        const d = c.copy();
        c.release();
        queueMicrotask(() => server.send(d.subarray(16), undefined, () => undefined));
        server.send(d.subarray(0, 16), undefined, () => undefined);
      },
      end: () => undefined,
    });
    await once(conn, 'connect');
    let back: Buffer[] = [];
    let got = 0;
    let wake: (() => void) | null = null;
    conn.on('data', (d: Buffer) => {
      back.push(d);
      got += d.length;
      if (got >= size) wake?.();
    });
    const before = ring.stats.issued;
    let bad = -1;
    for (let i = 0; i < rounds; i++) {
      const req = randomBytes(size);
      const echoed = new Promise<void>((r) => (wake = r));
      conn.write(req);
      await echoed;
      if (bad < 0 && !Buffer.concat(back).equals(req)) bad = i;
      back = [];
      got = 0;
    }
    expect(bad).toBe(-1);
    expect(ring.stats.issued - before).toBe(rounds);
  } finally {
    // destroyed here, so a failed expect() reports instead of listener.close() waiting for it
    accepted?.destroy();
    conn.destroy();
    await listener.close();
    await ring.close();
  }
}, 60_000);
