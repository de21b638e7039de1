// SPDX-License-Identifier: MIT
/**
 * {@link ZcServer}: a TCP server shaped like `net.Server`, whose
 * connections are {@link ZcSocket}s.  `listen()` variants, `address()`,
 * events 'listening', 'connection', 'close', 'error'; `close()` stops
 * accepting at once and resolves (and emits 'close') when the last
 * connection is gone.  Connections can also be taken one by one with
 * `accept({ signal })`, `for await (const socket of server)` or
 * `server.connections({ signal })`: a connection goes to a waiting
 * accept()/iterator first, else to 'connection' listeners, else it waits
 * in the server's queue.
 *
 * Over io_uring the server keeps one accept request in flight (re-armed
 * whenever the kernel ends it); on the 'net' backend it is a net.Server.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { ERRNO } from '../ffi/abi.gen.ts';
import { checkNetOptions, parseSendOptions, type SendOptionsInput } from '../config.ts';
import { ZcError } from '../errors.ts';
import type { ReceiveOptionsInput } from '../recv.ts';
import type { Ring } from '../ring.ts';
import type { SocketAddress } from '../addr.ts';
import { abortError, onAbort } from './abort.ts';
import { NetAcceptor } from './accept-net.ts';
import { UringAcceptor } from './accept-uring.ts';
import { chooseBackend, type BackendPreference } from './backend.ts';
import type { Backend } from './engine.ts';
import type { ListenSpec } from './factories.ts';
import { isPipeName, portOf, ZcSocket } from './socket.ts';

/** createServer() options. */
export interface ServerOptions {
  /** the ring to use (default: the thread's shared ring) */
  ring?: Ring;
  /** 'auto' (default: the process default), 'uring' or 'net' */
  backend?: BackendPreference;
  /** connections keep their writable side after the peer's FIN (default false) */
  allowHalfOpen?: boolean;
  /** TCP_NODELAY on every connection (default false) */
  noDelay?: boolean;
  /** SO_KEEPALIVE on every connection (default false) */
  keepAlive?: boolean;
  /** ms before the first keep-alive probe (0: system default) */
  keepAliveInitialDelay?: number;
  /** SO_REUSEPORT: several servers (processes, threads) on one port (default false) */
  reusePort?: boolean;
  /** listen backlog (default 511) */
  backlog?: number;
  /** defaults of every write and send on connections */
  sendOptions?: SendOptionsInput;
  /** receive area of the connections' readable side */
  receiveOptions?: ReceiveOptionsInput;
  /** readable and writable high-water mark of connections */
  highWaterMark?: number;
  /** true: connections from this host keep the system's congestion control (see SocketOptions.localPacing) */
  localPacing?: boolean;
  /** connections come paused: nothing is read until resume(), even with 'data' listeners (as net.Server) */
  pauseOnConnect?: boolean;
}

/** server.listen(options) */
export interface ServerListenOptions {
  /** default 0: any free port */
  port?: number;
  /** default: every address ('::' dual-stack, else '0.0.0.0') */
  host?: string;
  backlog?: number;
  reusePort?: boolean;
  /** bind IPv6 only (no IPv4-mapped addresses) */
  ipv6Only?: boolean;
  /** close the server when aborted */
  signal?: AbortSignal;
}

type Waiter = { resolve: (s: ZcSocket | null) => void; reject: (e: unknown) => void };

function notRunning(op: string): ZcError {
  return new ZcError({ errno: ERRNO.EINVAL, op, hint: 'the server is not listening (listen() first, or it was closed)' });
}

export class ZcServer extends EventEmitter implements AsyncIterable<ZcSocket> {
  /** 'uring' or 'net' (the fallback) */
  readonly backend: Backend;
  /** the ring ('uring' backend), else null */
  readonly ring: Ring | null;
  readonly #options: ServerOptions;
  #uring: UringAcceptor | null = null;
  #net: NetAcceptor | null = null;
  #address: SocketAddress | null = null;
  #listening = false;
  #starting = false;
  #closing = false;
  #closed = false;
  #refed = true;
  readonly #connections = new Set<ZcSocket>();
  #queue: ZcSocket[] = [];
  #waiters: Waiter[] = [];
  /**
   * As net.Server.maxConnections: a connection arriving while this many
   * are open is closed at once and reported as a 'drop' event
   * ({ localAddress, localPort, localFamily, remoteAddress, remotePort,
   * remoteFamily }).  Undefined (the default): no limit.
   */
  maxConnections: number | undefined = undefined;

  constructor(options: ServerOptions = {}, connectionListener?: (socket: ZcSocket) => void) {
    super();
    checkNetOptions('ServerOptions', options);
    parseSendOptions(options.sendOptions); // validate now, not at the first connection
    this.#options = options;
    const choice = chooseBackend(options.backend, options.ring);
    this.backend = choice.backend;
    this.ring = choice.ring;
    if (connectionListener) this.on('connection', connectionListener);
  }

  /** true while accepting */
  get listening(): boolean {
    return this.#listening;
  }

  /**
   * Start accepting: `listen(port[, host][, backlog][, cb])` or
   * `listen(options[, cb])`.  Emits 'listening' (cb is added to it) or
   * 'error' (EADDRINUSE...).  Returns the server.
   */
  listen(port?: number, host?: string, backlog?: number, cb?: () => void): this;
  listen(port: number, host: string, cb?: () => void): this;
  listen(port: number, cb?: () => void): this;
  listen(options: ServerListenOptions, cb?: () => void): this;
  listen(cb?: () => void): this;
  listen(...args: unknown[]): this {
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
    let o: ServerListenOptions;
    if (typeof args[0] === 'object' && args[0] !== null) o = { ...(args[0] as ServerListenOptions) };
    else if (isPipeName(args[0])) o = { path: args[0] } as ServerListenOptions; // an IPC path: refused below
    else {
      o = {};
      if (args[0] !== undefined && args[0] !== null) o.port = args[0] as number;
      if (typeof args[1] === 'string') o.host = args[1];
      else if (args[1] !== undefined) o.backlog = args[1] as number; // listen(port, backlog)
      if (args[2] !== undefined) o.backlog = args[2] as number; // checked below: an integer
    }
    o.port = portOf(o.port) as number | undefined;
    checkNetOptions('ListenOptions', o);
    if (this.#listening || this.#starting) {
      throw new ZcError({ errno: ERRNO.EINVAL, op: 'listen', hint: 'the server is already listening' });
    }
    if (this.#closing || this.#closed) {
      throw new ZcError({ errno: ERRNO.EINVAL, op: 'listen', hint: 'the server was closed: create a new one' });
    }
    const spec: ListenSpec = {
      port: o.port ?? 0,
      ...(o.host !== undefined ? { host: o.host } : {}),
      backlog: o.backlog ?? this.#options.backlog ?? 511,
      reusePort: o.reusePort ?? this.#options.reusePort ?? false,
      ipv6Only: o.ipv6Only ?? false,
    };
    if (cb) this.once('listening', cb);
    if (o.signal) {
      const signal = o.signal;
      if (signal.aborted) {
        queueMicrotask(() => void this.close());
        return this;
      }
      const stop = onAbort(signal, () => void this.close());
      this.once('close', stop);
    }
    this.#starting = true;
    const started = this.ring ? this.#listenUring(this.ring, spec) : this.#listenNet(spec);
    started.then(
      (addr) => {
        this.#starting = false;
        if (this.#closing) return;
        this.#address = addr;
        this.#listening = true;
        this.emit('listening');
      },
      (e: unknown) => {
        this.#starting = false;
        if (!this.#closing) this.emit('error', e);
      },
    );
    return this;
  }

  #listenUring(ring: Ring, spec: ListenSpec): Promise<SocketAddress> {
    const acc = new UringAcceptor(ring, {
      connection: (fd) => this.#add(new ZcSocket({ ...this.#socketOptions(), ring, backend: 'uring', fd })),
      error: (e) => this.emit('error', e),
      ringClosed: () => {
        this.#listening = false;
        void this.close();
      },
    });
    this.#uring = acc;
    if (!this.#refed) acc.ref(false);
    return acc.listen(spec);
  }

  #listenNet(spec: ListenSpec): Promise<SocketAddress> {
    const acc = new NetAcceptor({
      connection: (s: net.Socket) => this.#add(ZcSocket.fromNet(s, this.#socketOptions())),
      error: (e) => this.emit('error', e),
    });
    this.#net = acc;
    if (!this.#refed) acc.ref(false);
    return acc.listen(spec);
  }

  #socketOptions(): ConstructorParameters<typeof ZcSocket>[0] & object {
    const o = this.#options;
    return {
      allowHalfOpen: o.allowHalfOpen ?? false,
      ...(o.sendOptions ? { sendOptions: o.sendOptions } : {}),
      ...(o.receiveOptions ? { receiveOptions: o.receiveOptions } : {}),
      ...(o.localPacing !== undefined ? { localPacing: o.localPacing } : {}),
      ...(o.highWaterMark !== undefined ? { readableHighWaterMark: o.highWaterMark, writableHighWaterMark: o.highWaterMark } : {}),
    };
  }

  /** A new connection: to a waiting accept(), else 'connection' listeners, else the queue. */
  #add(s: ZcSocket): void {
    const max = this.maxConnections;
    if (max !== undefined && max !== null && this.#connections.size >= max) {
      this.emit('drop', {
        localAddress: s.localAddress,
        localPort: s.localPort,
        localFamily: s.localFamily,
        remoteAddress: s.remoteAddress,
        remotePort: s.remotePort,
        remoteFamily: s.remoteFamily,
      });
      s.destroy();
      return;
    }
    const o = this.#options;
    if (o.noDelay) s.setNoDelay(true);
    if (o.keepAlive) s.setKeepAlive(true, o.keepAliveInitialDelay ?? 0);
    if (o.pauseOnConnect) s.pause();
    this.#connections.add(s);
    s.once('close', () => {
      this.#connections.delete(s);
      this.#maybeClosed();
    });
    const w = this.#waiters.shift();
    if (w) w.resolve(s);
    else if (this.listenerCount('connection') > 0) this.emit('connection', s);
    else this.#queue.push(s);
  }

  /**
   * The next connection (from the same queue as the async iterator).
   * Rejects when the server closes first, or with an AbortError.
   */
  accept(options: { signal?: AbortSignal } = {}): Promise<ZcSocket> {
    const running = !this.#closing && !this.#closed;
    return this.#next(options.signal).then((s) => {
      if (s) return s;
      // waiting when the server closed: canceled, as any request a close ends
      if (running) {
        throw new ZcError({ errno: ERRNO.ECANCELED, op: 'accept', hint: 'the server was closed while accept() waited' });
      }
      throw notRunning('accept');
    });
  }

  #next(signal?: AbortSignal): Promise<ZcSocket | null> {
    const q = this.#queue.shift();
    if (q) return Promise.resolve(q);
    if (this.#closing || this.#closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<ZcSocket | null>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      this.#waiters.push(w);
      if (signal) {
        const stop = onAbort(signal, () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(abortError(signal));
        });
        const done = w.resolve;
        w.resolve = (s) => {
          stop();
          done(s);
        };
      }
    });
  }

  /**
   * Connections as they come: `for await (const socket of
   * server.connections({ signal }))` (from the same queue as accept()).
   * Ends when the server closes; once `signal` is aborted it throws an
   * AbortError (as `events.on()` does) and the server goes on accepting.
   * Leaving the loop stops this iterator only.
   */
  connections(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<ZcSocket> {
    const signal = options.signal;
    let done = false;
    const end = (): IteratorResult<ZcSocket> => {
      done = true;
      return { value: undefined, done: true };
    };
    const it: AsyncIterableIterator<ZcSocket> = {
      next: async (): Promise<IteratorResult<ZcSocket>> => {
        if (done) return end();
        if (signal?.aborted) {
          done = true;
          throw abortError(signal);
        }
        let s: ZcSocket | null;
        try {
          s = await this.#next(signal);
        } catch (e) {
          done = true;
          throw e;
        }
        return s ? { value: s, done: false } : end();
      },
      return: async (): Promise<IteratorResult<ZcSocket>> => end(),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** `for await (const socket of server)`: {@link connections} without a signal. */
  [Symbol.asyncIterator](): AsyncIterator<ZcSocket> {
    return this.connections();
  }

  /** { address, family, port } bound, as net.Server.address(); null when not listening */
  address(): { address: string; family: string; port: number } | null {
    const a = this.#address;
    if (!a || !this.#listening) return null;
    return { address: a.address, family: a.family === 6 ? 'IPv6' : 'IPv4', port: a.port };
  }

  /** Open connections (as net.Server.getConnections). */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.#connections.size;
    queueMicrotask(() => cb(null, n));
    return this;
  }

  /**
   * Stop accepting now; resolves and emits 'close' when the last
   * connection is gone (connections are not closed: end or destroy them,
   * as with net.Server).  Connections accepted but never taken are
   * destroyed.  `cb` is called on 'close' (with an error if the server was
   * not listening, as in Node).  Never rejects; idempotent.
   */
  close(cb?: (err?: Error) => void): Promise<void> {
    const wasRunning = this.#listening || this.#starting;
    if (cb) {
      // Closed already: no 'close' comes again, so cb runs now (with the error, as in Node).
      if (this.#closed) process.nextTick(cb, notRunning('close'));
      else this.once('close', () => cb(wasRunning ? undefined : notRunning('close')));
    }
    const closed = new Promise<void>((resolve) => {
      if (this.#closed) resolve();
      else this.once('close', () => resolve());
    });
    if (this.#closing || this.#closed) return closed;
    this.#closing = true;
    this.#listening = false;
    for (const w of this.#waiters.splice(0)) w.resolve(null);
    for (const s of this.#queue.splice(0)) s.destroy();
    const stopped = this.#uring?.close() ?? this.#net?.close() ?? Promise.resolve();
    void stopped.then(() => {
      this.#uring = null;
      this.#net = null;
      this.#maybeClosed();
    });
    return closed;
  }

  #maybeClosed(): void {
    if (!this.#closing || this.#closed || this.#uring || this.#net || this.#connections.size > 0) return;
    this.#closed = true;
    this.emit('close');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Keep the process alive while listening (the default). */
  ref(): this {
    this.#refed = true;
    this.#uring?.ref(true);
    this.#net?.ref(true);
    return this;
  }

  /** Let the process exit while this server only waits for connections. */
  unref(): this {
    this.#refed = false;
    this.#uring?.ref(false);
    this.#net?.ref(false);
    return this;
  }
}

/** A new server, as net.createServer([options][, connectionListener]). */
export function createServer(connectionListener?: (socket: ZcSocket) => void): ZcServer;
export function createServer(options?: ServerOptions, connectionListener?: (socket: ZcSocket) => void): ZcServer;
export function createServer(
  a?: ServerOptions | ((socket: ZcSocket) => void), b?: (socket: ZcSocket) => void,
): ZcServer {
  if (typeof a === 'function') return new ZcServer({}, a);
  return new ZcServer(a ?? {}, b);
}
