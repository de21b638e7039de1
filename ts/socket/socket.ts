// SPDX-License-Identifier: MIT
/**
 * {@link ZcSocket}: a TCP connection as a `stream.Duplex` with the
 * `net.Socket` surface, over io_uring (or node:net where io_uring cannot be
 * used, see backend.ts), plus the Promise fast lane on the same object:
 * `send(PoolBuffer | Uint8Array) -> { bytes, zeroCopy }` and `receive()`
 * chunks.
 *
 * Lifecycle (Node meanings):
 * - `end()`: half-close.  FIN after every write and send made before it;
 *   the readable side goes on (`allowHalfOpen`; by default the socket ends
 *   its side too when the peer's FIN arrives, and closes once both ended).
 * - `destroy([err])`: close now.  Writes and sends still queued fail; what
 *   the kernel already accepted is still delivered (FIN); 'close' once
 *   every request of the socket settled.
 * - `resetAndDestroy()`: the same with RST: the kernel drops unsent data,
 *   so buffers held for a peer that does not read come back at once.
 * - `close()`: the graceful close as a Promise: end(), wait until every
 *   write and send settled, close the fd; resolves on 'close' (rejects with
 *   the error the socket was destroyed with, if any).  Also
 *   `await using sock = ...` (Symbol.asyncDispose).
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { ERRNO, SYS } from '../ffi/abi.gen.ts';
import { checkNetOptions, parseSendOptions, type SendOptionsInput } from '../config.ts';
import { Chunk, parseReceiveOptions } from '../recv.ts';
import { ZcError } from '../errors.ts';
import { PoolBuffer } from '../pool.ts';
import type { ChunkStream, ReceivedChunk, ReceiveOptionsInput } from '../recv.ts';
import { checkHandler, type ChunkHandler } from '../recv-handler.ts';
import type { Ring } from '../ring.ts';
import type { SocketAddress } from '../addr.ts';
import { abortError, onAbort } from './abort.ts';
import { chooseBackend, type BackendPreference } from './backend.ts';
import type { Backend, ConnectTarget, ReadTarget, SocketEngine, WriteEntry } from './engine.ts';
import { openPair } from './factories.ts';
import { NetEngine } from './net-engine.ts';
import { NetChunk } from './net-receive.ts';
import { releaseFile, resolveFile, type FileSource, type SendFileResult } from './send-file.ts';
import type { SendFileOptionsInput } from '../config.ts';
import type { SendCallback, SendResult } from './types.ts';
import type { SendLane } from './lane.ts';
import { UringEngine } from './uring-engine.ts';

/** Options of `new ZcSocket()` (and of connect(), with {@link SocketConnectOptions}). */
export interface SocketOptions {
  /** the ring to use (default: the thread's shared ring) */
  ring?: Ring;
  /** 'auto' (default: the process default, see setDefaultBackend), 'uring' or 'net' */
  backend?: BackendPreference;
  /** drive this open, connected stream socket (closed with the socket) */
  fd?: number;
  /** keep the writable side open after the peer's FIN (default false, as in Node) */
  allowHalfOpen?: boolean;
  /** defaults of every write and send */
  sendOptions?: SendOptionsInput;
  /** receive area used by the readable side and receive() */
  receiveOptions?: ReceiveOptionsInput;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
  /** destroy the socket (AbortError) when aborted */
  signal?: AbortSignal;
  /**
   * false (default): a TCP connection to a peer on this host (127.0.0.0/8,
   * ::1, one of this host's addresses) that uses BBR is switched to cubic
   * (reno where cubic may not be set) when it opens: loopback has no fq
   * qdisc, so BBR paces inside TCP with an hrtimer, which a copying 4 KiB
   * sender paid ~0.5 us per send for (docs/PERFORMANCE.md, issue 9 session
   * 9).  Other congestion controls and remote peers are never touched.
   * true keeps the system's congestion control.
   */
  localPacing?: boolean;
}

/** Where and how to connect. */
export interface SocketConnectOptions {
  port: number;
  /** IP literal or host name (dns.lookup); default 'localhost' */
  host?: string;
  family?: 4 | 6;
  /** TCP_NODELAY (default false, as in Node) */
  noDelay?: boolean;
  keepAlive?: boolean;
  /** ms before the first keep-alive probe (0: system default) */
  keepAliveInitialDelay?: number;
  /** idle timeout in ms (see setTimeout) */
  timeout?: number;
  /** the local IP address to connect from (as net.connect) */
  localAddress?: string;
  /** the local port to connect from (as net.connect) */
  localPort?: number;
}

/** connect() / createConnection() options. */
export type ConnectOptions = SocketOptions & SocketConnectOptions;

type WriteCb = (err?: Error | null) => void;

/** The fields of a Writable's `_writableState` the fast lane reads. */
interface WritableStateView {
  destroyed: boolean;
  /** end() was called */
  ending: boolean;
  /** bytes buffered or being written */
  length: number;
  corked: number;
}

/** Family as node:net reports it. */
function familyName(a: SocketAddress | null): 'IPv4' | 'IPv6' | undefined {
  return a ? (a.family === 6 ? 'IPv6' : 'IPv4') : undefined;
}

export class ZcSocket extends Duplex {
  /** 'uring' or 'net' (the fallback) */
  readonly backend: Backend;
  /** the ring ('uring' backend), else null */
  readonly ring: Ring | null;
  /** true while connect() has not finished */
  connecting = false;
  /** bytes received */
  bytesRead = 0;
  readonly #engine: SocketEngine;
  #written = 0;
  #reset = false;
  /** what setTimeout() set last (undefined: never called) */
  #timeoutMs: number | undefined = undefined;
  #timer: NodeJS.Timeout | null = null;
  #refed = true;
  #peer: SocketAddress | null = null;
  #reading = false;
  /** the peer's FIN reached the readable side */
  #peerEnded = false;
  #connecting: Promise<void> | null = null;
  /** Duplex chunks standing for a PoolBuffer write or a send() queued behind writes */
  readonly #entries = new WeakMap<object, WriteEntry>();
  /** the Writable's state object (stream internals, stable since Node 10) */
  readonly #ws: WritableStateView;
  #tickCorked = false;
  readonly #uncorkTick = (): void => {
    this.#tickCorked = false;
    this.uncork();
  };
  /** the uring engine's send lane once connected: send()'s direct path */
  #lane: SendLane | null = null;
  /** setNoDelay() / setKeepAlive() called before the socket was open (before or during connect) */
  #pendingNoDelay: boolean | null = null;
  #pendingKeepAlive: [boolean, number] | null = null;

  constructor(options: SocketOptions = {}) {
    super(duplexOptions(options)); // validates options first (ZcConfigError)
    this.#ws = (this as unknown as { _writableState: WritableStateView })._writableState;
    const defaults = parseSendOptions(options.sendOptions);
    if (options.receiveOptions) parseReceiveOptions(options.receiveOptions);
    const choice = chooseBackend(options.backend, options.ring);
    this.backend = choice.backend;
    this.ring = choice.ring;
    this.#engine = choice.ring
      ? new UringEngine(choice.ring, defaults, options.receiveOptions, () => this.destroy(), options.localPacing ?? false)
      : new NetEngine((e) => this.destroy(e ?? undefined));
    if (options.fd !== undefined) this.#opened(options.fd);
    if (options.signal) {
      const signal = options.signal;
      if (signal.aborted) this.destroy(abortError(signal));
      else {
        const stop = onAbort(signal, () => this.destroy(abortError(signal)));
        this.once('close', stop);
      }
    }
  }

  /**
   * A connected pair of AF_UNIX stream sockets (socketpair(2)), both driven
   * by the ring.  AF_UNIX has no zero-copy: 'zc' sends fail with
   * EOPNOTSUPP, 'copy' and 'auto' work.
   */
  static pair(options: Omit<SocketOptions, 'fd' | 'backend'> = {}): [ZcSocket, ZcSocket] {
    checkNetOptions('PairOptions', options);
    const a = new ZcSocket({ ...options, backend: 'uring' });
    const ring = a.ring as Ring;
    let fds: [number, number];
    try {
      fds = openPair(ring, SYS.SOCK_STREAM);
    } catch (e) {
      a.destroy();
      throw e;
    }
    a.#opened(fds[0]);
    return [a, new ZcSocket({ ...options, ring, backend: 'uring', fd: fds[1] })];
  }

  /** @internal wrap a connection a net.Server accepted (the 'net' backend) */
  static fromNet(inner: net.Socket, options: SocketOptions): ZcSocket {
    const s = new ZcSocket({ ...options, backend: 'net' });
    (s.#engine as NetEngine).adopt(inner);
    return s;
  }

  /** Drive a connected fd (accepted, adopted, socketpair). */
  #opened(fd: number): void {
    this.#engine.attach(fd);
    this.#lane = this.#engine instanceof UringEngine ? this.#engine.lane : null;
  }

  // ------------------------------------------------------------ connect

  /**
   * Connect (net-style: `connect(options[, cb])` or `connect(port[, host][, cb])`).
   * Emits 'connect' and 'ready', or 'error' and 'close'.
   */
  connect(options: SocketConnectOptions, cb?: () => void): this;
  connect(port: number, host?: string, cb?: () => void): this;
  connect(port: number, cb?: () => void): this;
  connect(a: SocketConnectOptions | number, b?: string | (() => void), c?: () => void): this {
    const [o, cb] = connectArgs(a, b, c);
    checkNetOptions('ConnectOptions', o);
    if (this.connecting || this.#engine.fd >= 0 || this.destroyed) {
      throw new ZcError({ errno: ERRNO.EISCONN, op: 'connect', hint: 'the socket is connected, connecting or destroyed' });
    }
    if (cb) this.once('connect', cb);
    if (o.timeout !== undefined) this.setTimeout(o.timeout);
    this.connecting = true;
    const target: ConnectTarget = {
      host: o.host ?? 'localhost',
      port: o.port,
      family: o.family,
      noDelay: o.noDelay ?? false,
      keepAlive: o.keepAlive ?? false,
      keepAliveInitialDelay: o.keepAliveInitialDelay ?? 0,
      ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
      ...(o.localPort !== undefined ? { localPort: o.localPort } : {}),
    };
    this.#connecting = this.#engine.connect(target).then(
      () => {
        this.connecting = false;
        this.#connecting = null;
        this.#lane = this.#engine instanceof UringEngine ? this.#engine.lane : null;
        if (this.destroyed) return;
        this.#applyPending();
        this.#touch();
        this.emit('connect');
        this.emit('ready');
        if (this.#reading) this.#engine.read(this.#target);
      },
      (e: unknown) => {
        this.connecting = false;
        this.#connecting = null;
        if (!this.destroyed) this.destroy(e as Error);
      },
    );
    return this;
  }

  // ------------------------------------------------------------ Duplex

  override _read(): void {
    this.#reading = true;
    if (this.connecting || !this.#engine.open) return; // started on connect
    this.#engine.read(this.#target);
  }

  readonly #target: ReadTarget = {
    data: (buf: Buffer): boolean => {
      this.bytesRead += buf.length;
      this.#touch();
      return this.push(buf);
    },
    end: (err): void => {
      if (this.destroyed) return;
      if (err) this.destroy(err);
      else {
        this.#peerEnded = true;
        // As net.Socket does: read(0) lets 'end' come even if nothing consumes.
        this.push(null);
        this.read(0);
      }
    },
  };

  override _writev(chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: WriteCb): void {
    if (this.connecting) {
      this.#afterConnect(() => this._writev(chunks, cb), cb);
      return;
    }
    const entries = chunks.map(({ chunk }) => this.#entryOf(chunk as Buffer));
    this.#engine.writev(entries, (err, bytes) => {
      this.#written += bytes;
      this.#touch();
      cb(err as Error | null);
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: WriteCb): void {
    if (this.connecting || this.#entries.has(chunk)) {
      this._writev([{ chunk, encoding: 'binary' }], cb);
      return;
    }
    // A plain Buffer alone (one write in this tick): no entry, no batch.
    this.#engine.writeOne(chunk, (err, bytes) => {
      if (!err) this.#written += bytes; // as _writev: a failed write counts nothing
      this.#touch();
      cb(err as Error | null);
    });
  }

  override _final(cb: WriteCb): void {
    if (this.connecting) {
      this.#afterConnect(() => this._final(cb), cb);
      return;
    }
    if (!this.#engine.open) {
      cb();
      return;
    }
    this.#engine.shutdown().then(
      () => {
        // Read on after our FIN, as net.Socket always reads: the peer's FIN
        // ends the readable side, and the socket closes (unless receive()
        // owns the receiving or allowHalfOpen keeps it open).
        if (!this.#reading && !this.destroyed) this.read(0);
        cb();
      },
      (e: unknown) => cb(e as Error),
    );
  }

  /**
   * 'close' carries `hadError` as net.Socket's: true when the socket was
   * destroyed with an error (the 'error' event came first).
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close' && args.length === 0) return super.emit('close', this.errored !== null);
    return super.emit(event, ...args);
  }

  override _destroy(err: Error | null, cb: WriteCb): void {
    this.#clearTimer();
    const connecting = this.#connecting;
    if (connecting) this.#engine.abortConnect();
    void (async () => {
      if (connecting) await connecting;
      await this.#engine.close(this.#reset);
    })().then(
      () => cb(err),
      (e: unknown) => cb(err ?? (e as Error)),
    );
  }

  /** Run `fn` once connected, or fail `cb` if the socket closes first. */
  #afterConnect(fn: () => void, cb: WriteCb): void {
    const onClose = (): void => cb(new ZcError({ errno: ERRNO.ECANCELED, op: 'write', hint: 'the socket closed before it connected' }));
    this.once('connect', () => {
      this.off('close', onClose);
      fn();
    });
    this.once('close', onClose);
  }

  /** What the engine sends for one Duplex chunk. */
  #entryOf(chunk: Buffer): WriteEntry {
    return this.#entries.get(chunk) ?? { data: chunk, options: undefined, lent: false, taken: false };
  }

  /**
   * Write data (Buffer, Uint8Array, string, or a PoolBuffer: zero-copy
   * from registered memory, lent to the kernel until the write callback
   * runs).  Returns false when the buffered bytes reach the high-water
   * mark: wait for 'drain'.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | WriteCb, cb?: WriteCb): boolean {
    if (this.#peerEnded && this.#ws.ending && !this.allowHalfOpen) return this.#writeAfterFin(typeof encoding === 'function' ? encoding : cb);
    // The writes of one tick reach _writev together (one request), as if
    // the caller had corked: without it the first would go alone and the
    // rest wait a ring round trip behind it.
    if (!this.#tickCorked) {
      this.#tickCorked = true;
      this.cork();
      queueMicrotask(this.#uncorkTick);
    }
    if (chunk instanceof PoolBuffer) {
      const done = typeof encoding === 'function' ? encoding : cb;
      return this.#writeEntry(chunk, undefined, done, null);
    }
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  /**
   * A write after the peer's FIN ended this side too (allowHalfOpen off):
   * EPIPE, the socket destroyed with it, as net.Socket's writeAfterFIN
   * (not the stream's ERR_STREAM_WRITE_AFTER_END).
   */
  #writeAfterFin(cb: WriteCb | undefined): false {
    const err = new ZcError({
      errno: ERRNO.EPIPE,
      op: 'write',
      hint: 'the peer ended the connection, and without allowHalfOpen this socket ended its side too',
    });
    if (cb) process.nextTick(cb, err);
    this.destroy(err);
    return false;
  }

  /**
   * Queue a PoolBuffer (or a send() behind buffered writes) as a Duplex
   * chunk: a Buffer over the same bytes stands in for it in the write
   * queue, the engine sends the entry.
   */
  #writeEntry(
    data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, cb: WriteCb | undefined, settle: WriteEntry['settle'] | null,
  ): boolean {
    let view: Buffer;
    let pb: PoolBuffer | null = null;
    let chunk: Chunk | null = null;
    if (data instanceof Chunk) {
      // send(chunk) behind writes: taken now, as on the direct path
      const o = options ?? {};
      const off = o.offset ?? 0;
      const len = o.length ?? data.length - off;
      if (off < 0 || off > data.length || len < 0 || off + len > data.length) {
        throw new RangeError(`send: offset ${off} / length ${len} outside the ${data.length}-byte chunk`);
      }
      view = data.data.subarray(off, off + len); // throws if released
      data.take(this.ring, 'send'); // throws for a chunk of another ring
      chunk = data;
    } else if (data instanceof PoolBuffer) {
      const o = options ?? {};
      const off = o.offset ?? 0;
      const bytes = data.bytes; // throws while in flight or released
      const len = o.length ?? data.size - off;
      if (off < 0 || off > data.size || len < 0 || off + len > data.size) {
        throw new RangeError(`write: offset ${off} / length ${len} outside the ${data.size}-byte buffer`);
      }
      view = Buffer.from(bytes.buffer, bytes.byteOffset + off, len);
      data.lend('write');
      pb = data;
    } else {
      const off = options?.offset ?? 0;
      const len = options?.length ?? data.length - off;
      view = Buffer.from(data.buffer, data.byteOffset + off, len);
    }
    const entry: WriteEntry = {
      data,
      options,
      lent: pb !== null || chunk !== null,
      taken: false,
      ...(settle ? { settle } : {}),
    };
    this.#entries.set(view, entry);
    return super.write(view, (err?: Error | null) => {
      // Dropped before the engine took it (destroyed): give it back.
      if (!entry.taken) {
        pb?.unlend();
        chunk?.sent();
        entry.settle?.(null, err ?? new ZcError({ errno: ERRNO.ECANCELED, op: 'send', hint: 'the socket was destroyed' }));
      }
      cb?.(err);
    });
  }

  // ------------------------------------------------------------ fast lane

  /**
   * Send bytes and learn when the kernel let go of them: resolves
   * `{ bytes, zeroCopy }` (see SendOptions for the modes; a PoolBuffer is
   * registered memory, zero-copy without pinning per send).  Ordered with
   * writes: a send made while writes are buffered goes after them.  Throws
   * at once: ZcOwnershipError (buffer in flight or released), ZcConfigError
   * (options), ZcError EBADF (destroyed) / EPIPE (ended); rejects with
   * ZcError for kernel errors (EPIPE, ECONNRESET, ECANCELED when the socket
   * was destroyed meanwhile).  `signal`: aborting destroys the socket with
   * an AbortError (a stream cannot drop one send from the middle).
   *
   * With a `callback`, no Promise is made: `callback(err, bytes, zeroCopy)`
   * runs once, never synchronously, with `err` null when the whole length
   * left (for code that sends millions of messages; the Promise form is
   * built on the same path).  It throws at once in the same cases.
   *
   * **Sending a received chunk** (`send(chunk[, options][, callback])`,
   * `chunk` from this socket's or another socket's `receive()`): the send
   * takes the chunk, as a buffer is moved into a tokio-uring write.  Once
   * send() returned, the chunk counts as released to the caller
   * (`released` true; `data`, `copy()` and `release()` throw
   * ZcOwnershipError "the chunk was handed to send()"; `using` leaves it
   * alone), and the library gives its memory back to the kernel when the
   * send is over, whatever its outcome (sent, failed, canceled by a
   * destroy or a ring close), exactly once; the echo of a request is
   * `s.send(c, undefined, done)` with nothing to release afterwards.  The
   * bytes are sent from the receive area by address (no Buffer view is
   * made).  `offset`/`length` cut the chunk as they cut a Uint8Array (the
   * whole chunk still goes back when the send is over).  When send()
   * throws (a released or already handed chunk, a chunk of another ring's
   * receive area, bad options, the socket closed or ended), the chunk is
   * not taken and stays the caller's to release.  A view read from
   * `chunk.data` before the send keeps pointing at memory the kernel
   * reuses once the send is over: do not keep it.  On the 'net' backend
   * a chunk of that backend is sent as its Buffer; a chunk of a ring's
   * area cannot be sent there (ZcOwnershipError).
   */
  send(data: Uint8Array | PoolBuffer | ReceivedChunk, options?: SendOptionsInput & { signal?: AbortSignal }): Promise<SendResult>;
  send(
    data: Uint8Array | PoolBuffer | ReceivedChunk, options: (SendOptionsInput & { signal?: AbortSignal }) | undefined, callback: SendCallback,
  ): void;
  send(
    input: Uint8Array | PoolBuffer | ReceivedChunk, options?: SendOptionsInput & { signal?: AbortSignal }, callback?: SendCallback,
  ): Promise<SendResult> | void {
    // The Writable's own state, read directly: the public getters cost
    // measurably on the fast lane (docs/PERFORMANCE.md).
    const ws = this.#ws;
    if (ws.destroyed) throw new ZcError({ errno: ERRNO.EBADF, op: 'send', hint: 'the socket is closed (destroyed)' });
    if (ws.ending) throw new ZcError({ errno: ERRNO.EPIPE, op: 'send', hint: 'the socket was ended (end() called): no more data can be sent' });
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('send: callback must be a function');
    if (input instanceof NetChunk) {
      // A chunk of the 'net' backend is garbage-collected memory: its
      // Buffer is what goes, and the chunk is taken once the send started.
      const r = this.send(input.data, options, callback as SendCallback);
      input.take('send');
      return r;
    }
    const data = input as Uint8Array | PoolBuffer | Chunk;
    // The direct path: nothing buffered ahead, no signal.
    const lane = this.#lane;
    if (lane !== null && lane.fd >= 0 && ws.length === 0 && ws.corked === 0 && options?.signal === undefined) {
      if (callback) {
        lane.sendCallback(data, options, null, 'send', callback);
        return;
      }
      return lane.send(data, options, null, 'send');
    }
    let opts: SendOptionsInput | undefined = options;
    if (options?.signal) {
      const { signal, ...rest } = options;
      opts = rest;
      if (callback) {
        if (signal.aborted) {
          this.#giveBack(data);
          const e = abortError(signal);
          queueMicrotask(() => callback(e, 0, 'unknown'));
          return;
        }
        const stop = onAbort(signal, () => this.destroy(abortError(signal)));
        this.#sendCallback(data, opts, (err, bytes, zeroCopy) => {
          stop();
          callback(err, bytes, zeroCopy);
        });
        return;
      }
      if (signal.aborted) {
        this.#giveBack(data);
        return Promise.reject(abortError(signal));
      }
      const p = this.#send(data, opts);
      const stop = onAbort(signal, () => this.destroy(abortError(signal)));
      p.then(stop, stop);
      return p;
    }
    if (callback) {
      this.#sendCallback(data, opts, callback);
      return;
    }
    return this.#send(data, opts);
  }

  /** A send that ends before it started (an aborted signal): a chunk is taken and given back at once. */
  #giveBack(data: Uint8Array | PoolBuffer | Chunk): void {
    if (data instanceof Chunk) {
      data.take(this.ring, 'send'); // throws if released or of another ring, as a send would
      data.sent();
    }
  }

  #sendCallback(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, cb: SendCallback): void {
    // Writes still buffered in the Duplex (or a connect in progress) go first.
    const ws = this.#ws;
    if (this.connecting || ws.length > 0 || ws.corked > 0) {
      this.#writeEntry(data, options, undefined, (r, err) =>
        r ? cb(null, r.bytes, r.zeroCopy) : cb(err as Error, (err as ZcError).bytesSent ?? 0, 'unknown'),
      );
      return;
    }
    this.#engine.sendCallback(data, options, 'send', cb);
  }

  #send(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined): Promise<SendResult> {
    // Writes still buffered in the Duplex (or a connect in progress) go first.
    const ws = this.#ws;
    if (this.connecting || ws.length > 0 || ws.corked > 0) {
      return new Promise<SendResult>((resolve, reject) => {
        this.#writeEntry(data, options, undefined, (r, err) => (r ? resolve(r) : reject(err)));
      });
    }
    const p = this.#engine.send(data, options, 'send');
    return p;
  }

  /**
   * Send a file range (a path, an open fd or a FileHandle; `offset`,
   * `length` as numbers or bigints) without its bytes passing through
   * JavaScript: see send-file.ts.  Ordered with writes and sends.
   * Resolves `{ bytes, method, ... }` once the whole range was handed to
   * the socket; rejects with ZcError (`bytesSent` set) when it was not,
   * ENODATA if the file shrank meanwhile.  Throws at once: ZcConfigError
   * (options, a range past the end of the file), the error of opening the
   * path, ZcError EBADF / EPIPE (destroyed / ended).  `signal`: aborting
   * cancels the transfer (AbortError with `bytesSent`; the stream then
   * holds part of the range, so usually destroy the socket).
   */
  sendFile(file: FileSource, options?: SendFileOptionsInput): Promise<SendFileResult> {
    if (this.destroyed) throw new ZcError({ errno: ERRNO.EBADF, op: 'sendFile', hint: 'the socket is closed (destroyed)' });
    if (this.writableEnded) throw new ZcError({ errno: ERRNO.EPIPE, op: 'sendFile', hint: 'the socket was ended (end() called): no more data can be sent' });
    const spec = resolveFile(file, options, this.#engine.ring);
    if (spec.signal?.aborted) {
      releaseFile(spec);
      return Promise.reject(abortError(spec.signal));
    }
    if (this.connecting || this.writableLength > 0 || this.writableCorked > 0) {
      // Writes still buffered go first: take a place in the write queue.
      return new Promise<SendFileResult>((resolve, reject) => {
        const view = Buffer.alloc(0);
        const entry: WriteEntry = {
          data: view,
          options: undefined,
          lent: false,
          taken: false,
          file: { spec, settle: (r, err) => (r ? resolve(r) : reject(err)) },
        };
        this.#entries.set(view, entry);
        super.write(view, (err?: Error | null) => {
          if (!entry.taken) {
            releaseFile(spec);
            reject(err ?? new ZcError({ errno: ERRNO.ECANCELED, op: 'sendFile', hint: 'the socket was destroyed' }));
          }
        });
      });
    }
    return this.#engine.sendFile(spec);
  }

  /**
   * Receive as chunks, in order: on the 'uring' backend a {@link RecvStream}
   * of views into registered memory (the zero-copy receive: see recv.ts),
   * on the 'net' backend Buffers node:net read (`mode: 'net'`); the same
   * end, error, cancel and release rules on both.  The Duplex side
   * ('data', pipe) must not be used with it.  Throws EBUSY while another
   * receive() of the socket runs.  `signal`: aborting cancels the receive
   * (the iterator ends; a handler gets end(null)).
   *
   * With `handler`, the callback form: each chunk goes to `handler.chunk(c)`
   * as it arrives, then `handler.end(err)` once; no Promise per chunk (see
   * {@link ChunkStream.consume}, which this calls).
   */
  receive(options?: ReceiveOptionsInput & { signal?: AbortSignal }): ChunkStream;
  receive(options: (ReceiveOptionsInput & { signal?: AbortSignal }) | undefined, handler: ChunkHandler<ReceivedChunk>): ChunkStream;
  receive(options?: ReceiveOptionsInput & { signal?: AbortSignal }, handler?: ChunkHandler<ReceivedChunk>): ChunkStream {
    if (handler !== undefined) checkHandler(handler);
    if (this.destroyed) throw new ZcError({ errno: ERRNO.EBADF, op: 'receive', hint: 'the socket is closed (destroyed)' });
    const signal = options?.signal;
    let opts: ReceiveOptionsInput | undefined = options;
    if (signal) {
      const { signal: _s, ...rest } = options as ReceiveOptionsInput & { signal: AbortSignal };
      opts = rest;
    }
    const s = this.#engine.receive(opts);
    // An aborted signal cancels before consume(): the handler's end(null)
    // then comes from consume()'s microtask, after this returned the stream.
    if (signal?.aborted) s.cancel();
    if (handler !== undefined) s.consume(handler);
    if (signal && !signal.aborted) {
      const stop = onAbort(signal, () => s.cancel());
      void s.finished.then(stop);
    }
    return s;
  }

  /** Sends and writes handed to the kernel and not settled yet. */
  get inFlight(): number {
    return this.#engine.inFlight;
  }

  /** Resolves when every send and write made so far has settled. */
  settled(): Promise<void> {
    return this.#engine.settled();
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * As net.Socket.destroySoon (http calls it): end(), then destroy() once
   * every write finished (at once if they already have).
   */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Close with RST now (SO_LINGER 0): unsent data is dropped. */
  resetAndDestroy(): this {
    if (!this.destroyed) this.#reset = true;
    return this.destroy();
  }

  /**
   * The graceful close: end(), wait until every write and send settled,
   * close the fd.  Resolves on 'close'; rejects with the error the socket
   * was destroyed with.  Safe to call any time, any number of times.
   */
  close(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        const e = this.errored;
        if (e) reject(e);
        else resolve();
      };
      if (this.closed) {
        finish();
        return;
      }
      // The error is reported by this Promise: no crash for want of a listener.
      const swallow = (): void => {};
      this.on('error', swallow);
      this.once('close', () => {
        this.off('error', swallow);
        finish();
      });
      if (this.destroyed) return;
      const destroy = (): void => {
        void this.#engine.settled().then(() => this.destroy());
      };
      if (this.writableFinished) destroy();
      else {
        this.once('finish', destroy);
        if (!this.writableEnded) this.end();
      }
    });
  }

  override async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------ net.Socket surface

  /** The fd (-1 when not connected or on the 'net' backend). */
  get fd(): number {
    return this.#engine.fd;
  }

  /** true until connected (as net.Socket.pending) */
  get pending(): boolean {
    return this.connecting || !this.#engine.open;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  /**
   * Bytes sent (writes, send()s and sendFile()s the kernel took) plus
   * bytes of writes still buffered, as net.Socket.bytesWritten.
   */
  get bytesWritten(): number {
    return this.#written + this.#engine.bytesSent + this.writableLength;
  }

  /** TCP_NODELAY; called before or while connecting (as http's client does), applied once connected, as in Node. */
  setNoDelay(noDelay = true): this {
    if (this.#engine.open) this.#engine.setNoDelay(noDelay);
    else if (!this.destroyed) this.#pendingNoDelay = noDelay; // before or during connect
    return this;
  }

  /** SO_KEEPALIVE (and the idle time in ms); called before or while connecting, applied once connected, as in Node. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    if (this.#engine.open) this.#engine.setKeepAlive(enable, initialDelay);
    else if (!this.destroyed) this.#pendingKeepAlive = [enable, initialDelay]; // before or during connect
    return this;
  }

  /** Options set while connecting, applied now that the socket is open. */
  #applyPending(): void {
    if (this.#pendingNoDelay !== null) this.#engine.setNoDelay(this.#pendingNoDelay);
    if (this.#pendingKeepAlive !== null) this.#engine.setKeepAlive(...this.#pendingKeepAlive);
    this.#pendingNoDelay = null;
    this.#pendingKeepAlive = null;
  }

  /** Emit 'timeout' after `ms` of inactivity (0 disables); as net.Socket.setTimeout. */
  setTimeout(ms: number, cb?: () => void): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`setTimeout: ms must be a finite number >= 0, not ${ms}`);
    this.#timeoutMs = ms;
    if (cb) {
      if (ms === 0) this.off('timeout', cb);
      else this.once('timeout', cb);
    }
    this.#clearTimer();
    if (ms > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), ms);
      if (!this.#refed) this.#timer.unref();
    }
    return this;
  }

  /** the idle timeout in ms as setTimeout() set it (0: off), undefined before any call, as net.Socket.timeout */
  get timeout(): number | undefined {
    return this.#timeoutMs;
  }

  #touch(): void {
    this.#timer?.refresh();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Keep the process alive while open (the default). */
  ref(): this {
    this.#refed = true;
    this.#timer?.ref();
    this.#engine.ref(true);
    return this;
  }

  /** Let the process exit while this socket only waits for data. */
  unref(): this {
    this.#refed = false;
    this.#timer?.unref();
    this.#engine.ref(false);
    return this;
  }

  /** { address, family, port } of the local end, as net.Socket.address(); {} when closed */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const a = this.#engine.local();
    return a ? { address: a.address, family: familyName(a) as string, port: a.port } : {};
  }

  #remote(): SocketAddress | null {
    this.#peer ??= this.#engine.peer();
    return this.#peer;
  }

  get remoteAddress(): string | undefined {
    return this.#remote()?.address;
  }

  get remotePort(): number | undefined {
    return this.#remote()?.port;
  }

  get remoteFamily(): string | undefined {
    return familyName(this.#remote());
  }

  get localAddress(): string | undefined {
    return this.#engine.local()?.address;
  }

  get localPort(): number | undefined {
    return this.#engine.local()?.port;
  }

  get localFamily(): string | undefined {
    return familyName(this.#engine.local());
  }
}

/** A port given as a numeric string (`process.env.PORT`) as a number, like Node. */
export function portOf(p: unknown): unknown {
  // As net's validatePort: any string whose number is an unsigned integer
  // (' 80', '0x50', '8e1'); the options' schema then checks the range.
  if (typeof p !== 'string' || p.trim() === '') return p;
  const n = Number(p);
  return n === n >>> 0 ? n : p;
}

/** net's isPipeName: a string argument that is no number >= 0 is an IPC path. */
export function isPipeName(s: unknown): s is string {
  return typeof s === 'string' && !(Number(s) >= 0);
}

/** Options of the Duplex under a socket; validates the socket options first. */
function duplexOptions(options: SocketOptions): ConstructorParameters<typeof Duplex>[0] {
  checkNetOptions('SocketOptions', options);
  return {
    allowHalfOpen: options.allowHalfOpen ?? false,
    readableHighWaterMark: options.readableHighWaterMark,
    writableHighWaterMark: options.writableHighWaterMark,
    emitClose: true,
    autoDestroy: true,
    decodeStrings: true,
  };
}

function connectArgs(
  a: SocketConnectOptions | number, b?: string | (() => void), c?: () => void,
): [SocketConnectOptions, (() => void) | undefined] {
  if (a === null || (typeof a !== 'object' && typeof a !== 'number' && typeof a !== 'string')) {
    checkNetOptions('ConnectOptions', a); // throws: names the bad value
  }
  if (typeof a === 'object' && a !== null) return [{ ...a, port: portOf(a.port) as number }, typeof b === 'function' ? b : c];
  // net.connect(path): a string that is no port number (net's isPipeName)
  // is an IPC path, which checkNetOptions refuses naming `path`.
  const first: unknown = a;
  if (isPipeName(first)) {
    return [{ path: first } as unknown as SocketConnectOptions, typeof b === 'function' ? b : c];
  }
  if (typeof b === 'function') return [{ port: portOf(a) as number }, b];
  return [{ port: portOf(a) as number, ...(b !== undefined ? { host: b } : {}) }, c];
}

/**
 * Open a TCP connection, as net.connect: `connect(options[, cb])` or
 * `connect(port[, host][, cb])`.  Returns the socket at once; 'connect'
 * follows (or 'error').
 */
export function connect(options: ConnectOptions, cb?: () => void): ZcSocket;
export function connect(port: number, host?: string, cb?: () => void): ZcSocket;
export function connect(port: number, cb?: () => void): ZcSocket;
export function connect(a: ConnectOptions | number, b?: string | (() => void), c?: () => void): ZcSocket {
  const [o, cb] = connectArgs(a, b, c);
  const s = new ZcSocket(typeof a === 'object' ? (a as SocketOptions) : {});
  return s.connect(o, cb);
}

/** Same as {@link connect} (net.createConnection). */
export const createConnection = connect;
