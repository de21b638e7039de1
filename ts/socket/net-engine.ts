// SPDX-License-Identifier: MIT
/**
 * The node:net engine of a {@link ZcSocket}: the fallback where io_uring
 * cannot be used.  The same socket, events and Promise sends, over a
 * net.Socket it owns (writes copied by the kernel; `zeroCopy` is always
 * 'copied').  receive() yields Buffers node:net read (net-receive.ts).
 */
import { readSync } from 'node:fs';
import net from 'node:net';
import { ERRNO } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import { PoolBuffer } from '../pool.ts';
import { Chunk, parseReceiveOptions, type ChunkStream, type ReceiveOptionsInput } from '../recv.ts';
import type { SendOptionsInput } from '../config.ts';
import type { SocketAddress } from '../addr.ts';
import type { Backend, ConnectTarget, ReadTarget, SocketEngine, WriteEntry } from './engine.ts';
import { NetChunkStream } from './net-receive.ts';
import { releaseFile, sendFileByCopy, type FileSpec, type SendFileResult } from './send-file.ts';
import type { SendCallback, SendResult } from './types.ts';

/**
 * Discard what the peer sent and nobody read (the inner socket is paused
 * until the Duplex side or receive() reads): close(2) with unread bytes
 * resets the connection and drops what we sent that the peer has not read
 * yet (see close.ts discardUnread).  libuv's fd is non-blocking: the loop
 * ends at EAGAIN.
 */
function discardUnread(s: net.Socket): void {
  const fd = (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return;
  const scratch = Buffer.allocUnsafe(64 * 1024);
  try {
    for (let i = 0; i < 1024 && readSync(fd, scratch, 0, scratch.length, null) > 0; i++);
  } catch {
    // EAGAIN: nothing more queued (or the fd is gone): close as it is
  }
}

/**
 * A failed write of the inner net.Socket as the ZcError a send rejects
 * with on the ring: the errno of node:net's error (ECONNRESET, EPIPE...),
 * ECANCELED when the socket was destroyed with the write queued, EPIPE
 * after end().  `bytesSent` stays undefined: node:net does not say how
 * much of a failed write the kernel took.
 */
function sendError(err: Error, op: string): ZcError {
  if (err instanceof ZcError) return err;
  const e = err as NodeJS.ErrnoException;
  let errno = typeof e.errno === 'number' && e.errno !== 0 ? Math.abs(e.errno) : 0;
  if (errno === 0) {
    errno = e.code === 'ERR_STREAM_WRITE_AFTER_END' ? ERRNO.EPIPE : (ERRNO as Record<string, number>)[e.code ?? ''] ?? ERRNO.ECANCELED;
  }
  const z = new ZcError({ errno, op });
  Object.defineProperty(z, 'cause', { value: err, configurable: true, writable: true });
  return z;
}

function toAddress(address: string | undefined, port: number | undefined, family: string | undefined): SocketAddress | null {
  if (address === undefined || port === undefined) return null;
  return { address, port, family: family === 'IPv6' ? 6 : 4 };
}

/** The bytes of one Uint8Array send. */
function bytesOf(data: Uint8Array, o: SendOptionsInput | undefined): Uint8Array {
  const off = o?.offset ?? 0;
  return off === 0 && o?.length === undefined ? data : data.subarray(off, off + (o?.length ?? data.length - off));
}

export class NetEngine implements SocketEngine {
  readonly backend: Backend = 'net';
  readonly ring = null;
  readonly fd = -1;
  #sock: net.Socket | null = null;
  #inFlight = 0;
  #bytesSent = 0;
  #waiters: (() => void)[] = [];
  #reading = false;
  /** the receive() stream, once called (the Duplex side then stays off) */
  #fast: NetChunkStream | null = null;
  #closed = false;
  /** writes made while a sendFile() copies, in call order (null: none running) */
  #behind: (() => void)[] | null = null;
  /** an error or unexpected close of the inner socket, reported to the owner */
  readonly #fatal: (err: Error | null) => void;

  constructor(fatal: (err: Error | null) => void) {
    this.#fatal = fatal;
  }

  get open(): boolean {
    return this.#sock !== null && !this.#closed;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get bytesSent(): number {
    return this.#bytesSent;
  }

  #own(s: net.Socket): void {
    this.#sock = s;
    s.on('error', (e) => this.#fatal(e));
    s.on('close', (hadError: boolean) => {
      if (this.#closed) return;
      // Both FINs done and the end handed to the readable side: bytes may
      // still wait there for a slow reader.  The owner closes itself once
      // they are read and 'end' is emitted, as net.Socket does; destroying
      // it now would drop them.
      if (!hadError && this.#reading && !this.#fast && s.readableEnded && s.writableFinished) return;
      this.#fatal(null);
    });
  }

  attach(fd: number): void {
    this.#own(new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true }));
  }

  /** @internal take an accepted net.Socket (server on the net backend) */
  adopt(s: net.Socket): void {
    this.#own(s);
  }

  connect(t: ConnectTarget): Promise<void> {
    const s = new net.Socket({ allowHalfOpen: true });
    this.#sock = s;
    return new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      s.once('error', onError);
      // destroyed while connecting (abortConnect): no 'error' comes
      s.once('close', () => reject(new ZcError({ errno: ERRNO.ECANCELED, op: 'connect', hint: 'the socket was destroyed while connecting' })));
      s.connect({
        host: t.host,
        port: t.port,
        ...(t.family ? { family: t.family } : {}),
        ...(t.localAddress !== undefined ? { localAddress: t.localAddress } : {}),
        ...(t.localPort !== undefined ? { localPort: t.localPort } : {}),
        noDelay: t.noDelay,
        keepAlive: t.keepAlive,
        keepAliveInitialDelay: t.keepAliveInitialDelay,
      }, () => {
        s.off('error', onError);
        this.#own(s);
        resolve();
      });
      s.pause();
    });
  }

  abortConnect(): void {
    this.#sock?.destroy();
  }

  #open(op: string): net.Socket {
    if (!this.#sock || this.#closed) throw new ZcError({ errno: ERRNO.EBADF, op, hint: 'the socket is closed' });
    return this.#sock;
  }

  /** Hand one send to the net.Socket; throws the ownership/range errors at once. */
  #write(
    s: net.Socket, data: Uint8Array | PoolBuffer | Chunk, o: SendOptionsInput | undefined, lent: boolean, op: string,
    done: (err: ZcError | null, n: number) => void, direct = false,
  ): void {
    // A chunk of a ring's receive area: this socket has no ring to hold it (throws, naming why).
    if (data instanceof Chunk) data.take(null, op);
    let view: Uint8Array;
    const pb = data instanceof PoolBuffer ? data : null;
    if (pb) {
      // a buffer write() lent already is read through the pool, not .bytes (which refuses while lent)
      const mem = lent ? pb.memory() : pb.bytes;
      if (!mem) throw new ZcError({ errno: ERRNO.EBADF, op: 'send', hint: 'the buffer was released' });
      const off = o?.offset ?? 0;
      view = mem.subarray(off, off + (o?.length ?? pb.size - off));
      if (!lent) pb.lend('send');
    } else {
      view = bytesOf(data as Uint8Array, o);
    }
    this.#inFlight++;
    this.#ordered(() =>
      s.write(view, (err) => {
        // a send() outside the Duplex writes (the socket counts those)
        if (!err && direct) this.#bytesSent += view.length;
        pb?.unlend();
        this.#settledOne();
        done(err ? sendError(err, op) : null, err ? 0 : view.length);
      }),
    );
  }

  #settledOne(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#waiters.length) for (const w of this.#waiters.splice(0)) w();
  }

  /** Run a write now, or after the sendFile() copying ahead of it. */
  #ordered(task: () => void): void {
    if (this.#behind) this.#behind.push(task);
    else task();
  }

  /** The file read and written chunk by chunk, before any later write. */
  sendFile(spec: FileSpec): Promise<SendFileResult> {
    let s: net.Socket;
    try {
      s = this.#open('sendFile');
    } catch (e) {
      releaseFile(spec);
      return Promise.reject(e);
    }
    this.#inFlight++;
    return new Promise<SendFileResult>((resolve, reject) => {
      this.#ordered(() => {
        this.#behind = [];
        const write = (b: Buffer): Promise<void> =>
          new Promise((res, rej) =>
            s.write(b, (err) => {
              if (err) rej(err);
              else {
                this.#bytesSent += b.length;
                res();
              }
            }),
          );
        sendFileByCopy(spec, write)
          .then(resolve, reject)
          .finally(() => {
            const waiting = this.#behind ?? [];
            this.#behind = null;
            this.#settledOne();
            // a later sendFile among them queues what follows it again
            for (const t of waiting) this.#ordered(t);
          });
      });
    });
  }

  writeOne(data: Uint8Array, cb: (err: unknown, bytes: number) => void): void {
    this.writev([{ data, options: undefined, lent: false, taken: false }], cb);
  }

  writev(entries: WriteEntry[], cb: (err: unknown, bytes: number) => void): void {
    let s: net.Socket;
    try {
      s = this.#open('write');
    } catch (e) {
      cb(e, 0);
      return;
    }
    let left = entries.length;
    let err: unknown = null;
    let total = 0;
    for (const e of entries) {
      e.taken = true;
      if (e.file) {
        const f = e.file;
        this.sendFile(f.spec).then(
          (r) => {
            f.settle(r, null);
            if (--left === 0) cb(err, total);
          },
          (x: unknown) => {
            f.settle(null, x); // reported by its Promise only, as a direct sendFile
            if (--left === 0) cb(err, total);
          },
        );
        continue;
      }
      this.#write(s, e.data, e.options, e.lent, e.settle ? 'send' : 'write', (x, n) => {
        total += n;
        if (x) err ??= x;
        e.settle?.(x ? null : { bytes: n, zeroCopy: 'copied' }, x);
        if (--left === 0) cb(err, total);
      });
    }
  }

  send(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, opName: string): Promise<SendResult> {
    const s = this.#open(opName);
    let settle!: (err: Error | null, n: number) => void;
    const p = new Promise<SendResult>((resolve, reject) => {
      settle = (err, n) => (err ? reject(err) : resolve({ bytes: n, zeroCopy: 'copied' }));
    });
    this.#write(s, data, options, false, opName, settle, true);
    return p;
  }

  sendCallback(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, opName: string, cb: SendCallback): void {
    this.#write(this.#open(opName), data, options, false, opName, (err, n) => cb(err, n, 'copied'), true);
  }

  settled(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }

  read(target: ReadTarget): void {
    const s = this.#sock;
    if (!s || this.#fast) return; // receive() owns the socket's receive
    if (!this.#reading) {
      this.#reading = true;
      s.on('data', (b: Buffer) => {
        if (!target.data(b)) s.pause();
      });
      s.on('end', () => target.end(null));
    }
    s.resume();
  }

  receive(options?: ReceiveOptionsInput): ChunkStream {
    parseReceiveOptions(options); // the same options are valid on both backends
    const s = this.#open('receive');
    if (s.connecting) throw new ZcError({ errno: ERRNO.EBADF, op: 'receive', hint: "the socket is not connected yet: call receive() after 'connect'" });
    if (this.#reading) {
      throw new ZcError({
        errno: ERRNO.EBUSY,
        op: 'receive',
        hint: "the socket's readable side is already reading ('data' listener, pipe or read()): use one or the other",
      });
    }
    if (this.#fast?.active) throw new ZcError({ errno: ERRNO.EBUSY, op: 'recv', hint: 'the socket is already receiving' });
    this.#fast = new NetChunkStream(s);
    return this.#fast;
  }

  shutdown(): Promise<void> {
    const s = this.#open('end');
    return new Promise<void>((resolve) => s.end(() => resolve()));
  }

  async close(reset: boolean): Promise<void> {
    const s = this.#sock;
    if (!s || this.#closed) return;
    this.#closed = true;
    this.#fast?.cancel();
    if (!s.destroyed) {
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      if (reset && typeof s.resetAndDestroy === 'function' && !s.connecting) s.resetAndDestroy();
      else {
        if (!s.connecting) discardUnread(s);
        s.destroy();
      }
      await closed;
    }
    await this.settled();
  }

  setNoDelay(on: boolean): void {
    this.#sock?.setNoDelay(on);
  }

  setKeepAlive(on: boolean, initialDelayMs: number): void {
    this.#sock?.setKeepAlive(on, initialDelayMs);
  }

  local(): SocketAddress | null {
    const s = this.#sock;
    return s ? toAddress(s.localAddress, s.localPort, s.localFamily) : null;
  }

  peer(): SocketAddress | null {
    const s = this.#sock;
    return s ? toAddress(s.remoteAddress, s.remotePort, s.remoteFamily) : null;
  }

  ref(on: boolean): void {
    if (on) this.#sock?.ref();
    else this.#sock?.unref();
  }
}
