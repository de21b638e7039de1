// SPDX-License-Identifier: MIT
/** Helpers for suites that open ZcSockets and ZcServers: await connect and listen. */
import { once } from 'node:events';
import { connect as netConnect, createServer as netServer } from 'node:net';
import { Ring } from '../../ts/ring.ts';
import { connect, type ConnectOptions, type ZcSocket } from '../../ts/socket/socket.ts';
import { createServer, type ServerOptions, type ZcServer } from '../../ts/socket/server.ts';
import type { Backend } from '../../ts/socket/engine.ts';

/** connect() and wait for 'connect' (rejects on 'error'). */
export async function connected(options: ConnectOptions): Promise<ZcSocket> {
  const s = connect(options);
  await once(s, 'connect');
  return s;
}

/** A server listening on host (default 127.0.0.1), port 0; resolves on 'listening'. */
export async function listening(options: ServerOptions & { host?: string; port?: number } = {}): Promise<ZcServer> {
  const { host, port, ...server } = options;
  const srv = createServer(server);
  srv.listen(port ?? 0, host ?? '127.0.0.1');
  await once(srv, 'listening');
  return srv;
}

/** The port a server listens on. */
export function portOf(server: ZcServer): number {
  const a = server.address();
  if (!a) throw new Error('the server is not listening');
  return a.port;
}

/** A connected pair over loopback: a client and the accepted socket (and their server). */
export async function tcpPair(ring: Ring): Promise<{ client: ZcSocket; server: ZcSocket; listener: ZcServer }> {
  const listener = await listening({ ring });
  const [client, server] = await Promise.all([connected({ ring, host: '127.0.0.1', port: portOf(listener) }), listener.accept()]);
  return { client, server, listener };
}

/**
 * A ZcSocket on `ring` to an echo at `port` (noDelay) with a receive in
 * flight.  roundTrips(n) sends n messages, `r<k>.` numbered on from the last
 * call, each once the reply to the one before it is back, and rejects when
 * a reply is not its message; close() cancels the receive and destroys the
 * socket.  No vitest in here: fixtures run it in a child process too.
 */
export async function ringClient(
  ring: Ring,
  port: number,
): Promise<{ fd: number; roundTrips(n: number): Promise<void>; close(): void }> {
  const sock = await connected({ ring, host: '127.0.0.1', port, noDelay: true });
  let got = '';
  let wake: (() => void) | null = null;
  const stream = sock.receive({}, {
    chunk: (c) => {
      got += Buffer.from(c.data).toString();
      c.release();
      if (got.endsWith('.') && wake) wake();
    },
    end: () => undefined,
  });
  let k = 0;
  return {
    fd: sock.fd,
    roundTrips: async (n) => {
      for (let i = 0; i < n; i++, k++) {
        const m = `r${k}.`;
        got = '';
        const back = new Promise<void>((res) => (wake = res));
        sock.send(Buffer.from(m));
        await back;
        if (got !== m) throw new Error(`ringClient: sent ${m}, got ${got}`);
      }
    },
    close: () => {
      stream.cancel();
      sock.destroy();
    },
  };
}

/**
 * A connected pair on `backend` (on `ring` when given), both ends checked to
 * be on that backend; done() destroys both and closes their server.
 */
export async function backendPair(
  backend: Backend,
  ring: Ring | undefined,
): Promise<{ client: ZcSocket; server: ZcSocket; done(): Promise<void> }> {
  const opts = ring ? { ring, backend } : { backend };
  const listener = await listening(opts);
  const [client, server] = await Promise.all([connected({ ...opts, host: '127.0.0.1', port: portOf(listener) }), listener.accept()]);
  if (client.backend !== backend || server.backend !== backend) throw new Error(`backendPair: not on the ${backend} backend`);
  return {
    client,
    server,
    done: async () => {
      client.destroy();
      server.destroy();
      await listener.close();
    },
  };
}

/** Wait for a condition (polled every 5 ms; the test's own timeout bounds it). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

/**
 * n round trips of a node:net echo on this thread: every wakeup is another
 * fd's, not a ring's (what moves loopWait 'auto' to epoll).
 */
export async function netEcho(n: number): Promise<void> {
  const srv = netServer((c) => c.pipe(c));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const s = netConnect({ host: '127.0.0.1', port: typeof addr === 'object' && addr ? addr.port : 0, noDelay: true });
  await once(s, 'connect');
  for (let i = 0; i < n; i++) {
    s.write(`n${i}.`);
    let got = '';
    while (!got.endsWith('.')) got += ((await once(s, 'data')) as [Buffer])[0].toString();
    if (got !== `n${i}.`) throw new Error(`netEcho: sent n${i}., got ${got}`);
  }
  s.destroy();
  await new Promise<void>((res) => srv.close(() => res()));
}

/**
 * `r`, a ring with loopWait 'auto', once its loop sleeps in `where`: node:net
 * traffic on this thread (netEcho) moves the sleep to epoll.  Throws when the
 * ring is not 'auto' or its loop does not sleep there then.
 */
export async function sleepingIn(r: Ring, where: 'ring' | 'epoll'): Promise<Ring> {
  if (r.loopWait !== 'auto') throw new Error(`sleepingIn: the ring's loopWait is ${r.loopWait}, not auto`);
  if (where === 'epoll') await netEcho(64);
  if (r.loopSleep !== where) throw new Error(`sleepingIn: the loop sleeps in ${r.loopSleep}, not ${where}`);
  return r;
}

/**
 * Leaves this thread's loop sleep free for the next ring that asks for it.
 * With vitest's --no-isolate (the VM suites) one process runs many files,
 * and a ring an earlier file left open (the sockets' shared ring lives for
 * the thread) may hold the sleep: a later 'auto' ring then reads 'epoll'.
 * A ring with loopWait 'ring' takes the sleep over, and closing it leaves
 * the sleep to no one.
 */
export async function freeLoopSleep(): Promise<void> {
  await Ring.create({ entries: 8, loopWait: 'ring' }).close();
}
