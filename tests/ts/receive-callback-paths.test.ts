// SPDX-License-Identifier: MIT
// The callback form of receive on every path that ends it: handler.end()
// is called exactly once, never from inside receive()/consume() (always
// after the caller has the stream), and no chunk reaches chunk() after a
// cancel().  Paths: an AbortSignal (already aborted, and aborted later),
// cancel() from inside chunk() with chunks still queued, the socket's
// destroy(), the ring's close(), consume() after the stream ended.  Both
// backends (the ring's close on io_uring only).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, type Backend, type ChunkHandler, type ReceivedChunk, type ZcError } from '../../ts/index.ts';
import { backendPair, until } from './net-helpers.ts';
import { sleep } from './helpers.ts';

type Log = { text: string; ends: (string | null)[]; handler: ChunkHandler<ReceivedChunk> };

function logger(onChunk?: (c: ReceivedChunk, log: Log) => boolean | void): Log {
  const log: Log = {
    text: '',
    ends: [],
    handler: {
      chunk: (c) => {
        log.text += c.copy().toString();
        const r = onChunk?.(c, log);
        if (!c.released) c.release();
        return r;
      },
      end: (err: ZcError | null) => {
        log.ends.push(err === null ? null : err.code);
      },
    },
  };
  return log;
}

describe.each<Backend>(['uring', 'net'])('receive handler end paths, backend %s', (backend) => {
  let ring: Ring | undefined;
  beforeAll(() => {
    if (backend === 'uring') ring = Ring.create();
  });
  afterAll(async () => {
    await ring?.close();
  });

  it('an already aborted signal ends the handler after receive() returned, once', async () => {
    const { server, done } = await backendPair(backend, ring);
    let returned = false;
    const inside: boolean[] = [];
    const log = logger();
    const end = log.handler.end;
    log.handler.end = (err) => {
      inside.push(!returned);
      end(err);
    };
    const stream = server.receive({ signal: AbortSignal.abort() }, log.handler);
    returned = true;
    await stream.finished;
    await sleep(20);
    expect(log.ends).toEqual([null]);
    expect(inside).toEqual([false]);
    await done();
  });

  it('a later abort ends the handler with null, once', async () => {
    const { client, server, done } = await backendPair(backend, ring);
    const ac = new AbortController();
    const log = logger();
    const stream = server.receive({ signal: ac.signal }, log.handler);
    await client.send(Buffer.from('abc'));
    await until(() => log.text === 'abc');
    ac.abort();
    await stream.finished;
    await sleep(20);
    expect(log.ends).toEqual([null]);
    await done();
  });

  it('cancel() inside chunk() with chunks queued: none handed over after it, end(null) once', async () => {
    const { client, server, done } = await backendPair(backend, ring);
    const stream = server.receive();
    for (const s of ['a', 'b', 'c']) {
      await client.send(Buffer.from(s));
      await until(() => stream.bytes >= 1 && stream.queued >= 1 && stream.bytes === 'abc'.indexOf(s) + 1);
    }
    const log = logger(() => {
      stream.cancel();
    });
    stream.consume(log.handler);
    await until(() => log.ends.length > 0);
    await client.send(Buffer.from('d'));
    await sleep(50);
    expect(log.text).toBe('a');
    expect(log.ends).toEqual([null]);
    expect(stream.queued).toBe(0);
    await done();
  });

  it("the socket's destroy() ends the handler, once", async () => {
    const { client, server, done } = await backendPair(backend, ring);
    const log = logger();
    const stream = server.receive(undefined, log.handler);
    await client.send(Buffer.from('xyz'));
    await until(() => log.text === 'xyz');
    server.destroy();
    await stream.finished;
    await until(() => log.ends.length > 0);
    await sleep(20);
    expect(log.ends).toEqual([null]);
    await done();
  });

  it('consume() after the stream ended calls end() once, from a microtask', async () => {
    const { client, server, done } = await backendPair(backend, ring);
    const stream = server.receive();
    await client.send(Buffer.from('hi'));
    await client.close();
    await stream.finished;
    await until(() => stream.queued > 0 || stream.done);
    const log = logger();
    stream.consume(log.handler);
    expect(log.ends).toEqual([]);
    await until(() => log.ends.length > 0);
    await sleep(20);
    expect(log.text).toBe('hi');
    expect(log.ends).toEqual([null]);
    await done();
  });

  it.runIf(backend === 'uring')("the ring's close() ends the handler with ECANCELED, once", async () => {
    const own = Ring.create();
    const { client, server, done } = await backendPair('uring', own);
    const log = logger();
    server.on('error', () => {});
    client.on('error', () => {});
    server.receive(undefined, log.handler);
    await client.send(Buffer.from('q'));
    await until(() => log.text === 'q');
    await own.close();
    await until(() => log.ends.length > 0);
    await sleep(20);
    expect(log.ends.length).toBe(1);
    await done();
  });
});
