// SPDX-License-Identifier: MIT
/**
 * `socket.receive()` on the node:net backend: the same {@link ChunkStream}
 * as over io_uring (chunks in order, `release()`, the end, an error,
 * `cancel()`, `finished`, asyncDispose), its chunks Buffers node:net read
 * (one copy, by the kernel into libuv's buffer; none in JS).
 *
 * Backpressure: once {@link QUEUE_LIMIT} bytes wait to be taken by next(),
 * the net.Socket is paused (the data waits in the socket, TCP pushes back
 * on the peer) and resumed when the queue is taken.  Holding chunks taken
 * is not backpressure here (their memory is the caller's garbage-collected
 * Buffer), unlike registered memory.  With a handler (consume()), the
 * socket is paused when the handler's chunk() returns false and resumed
 * by resume().
 */
import type net from 'node:net';
import { ERRNO } from '../ffi/abi.gen.ts';
import { ZcError, ZcOwnershipError } from '../errors.ts';
import type { ChunkStream, ReceivedChunk } from '../recv.ts';
import { checkHandler, consumeBusy, handEnd, handOver, nextBusy, type ChunkHandler } from '../recv-handler.ts';

/** Bytes received and not yet taken by next() before the socket is paused. */
export const QUEUE_LIMIT = 256 * 1024;

/** A chunk of the 'net' backend: a Buffer node:net read, valid until release(). */
export class NetChunk implements ReceivedChunk {
  readonly length: number;
  readonly streamOffset: number;
  #buf: Buffer | null;

  /** @internal */
  constructor(buf: Buffer, streamOffset: number) {
    this.#buf = buf;
    this.length = buf.length;
    this.streamOffset = streamOffset;
  }

  get released(): boolean {
    return this.#buf === null;
  }

  /** The bytes.  Throws after release (as a chunk of registered memory does). */
  get data(): Buffer {
    if (this.#buf === null) throw new ZcOwnershipError('chunk.data', 'the chunk was released');
    return this.#buf;
  }

  copy(): Buffer {
    return Buffer.from(this.data);
  }

  release(): void {
    if (this.#buf === null) throw new ZcOwnershipError('chunk.release', 'the chunk was already released');
    this.#buf = null;
  }

  [Symbol.dispose](): void {
    this.#buf = null;
  }
}

/** A node:net error ('ECONNRESET', ...) as the ZcError a ring receive ends with. */
function recvError(e: Error, bytes: number): ZcError {
  const sys = e as NodeJS.ErrnoException;
  const errno = (sys.code !== undefined && (ERRNO as Record<string, number>)[sys.code]) || Math.abs(sys.errno ?? 0) || ERRNO.EIO;
  return new ZcError({ errno, op: 'recv', details: { bytes } });
}

type Waiter = { resolve: (r: IteratorResult<NetChunk>) => void; reject: (e: unknown) => void };

/** The chunks of one net.Socket, in order (see {@link ChunkStream}). */
export class NetChunkStream implements ChunkStream {
  readonly mode = 'net' as const;
  readonly fallback = null;
  bytes = 0;
  chunks = 0;
  readonly finished: Promise<void>;
  #sock: net.Socket;
  #queue: NetChunk[] = [];
  #qhead = 0;
  #queuedBytes = 0;
  #paused = false;
  #waiter: Waiter | null = null;
  /** undefined while running; null after a clean end; the error otherwise */
  #end: ZcError | null | undefined = undefined;
  #errorDelivered = false;
  #resolveFinished!: () => void;
  #handler: ChunkHandler<NetChunk> | null = null;
  #hPaused = false;
  #hEnded = false;
  #feedQueued = false;
  readonly #onData = (b: Buffer): void => this.#chunk(b);
  readonly #onEnd = (): void => this.#finish(null);
  readonly #onError = (e: Error): void => this.#finish(recvError(e, this.bytes));
  /** closed without an end or error: the socket was destroyed (the receive just ends) */
  readonly #onClose = (): void => this.#finish(null);

  /** @internal NetEngine.receive() */
  constructor(sock: net.Socket) {
    this.#sock = sock;
    this.finished = new Promise((r) => (this.#resolveFinished = r));
    // Before the engine's own listeners: the error ends this stream before
    // the socket is destroyed for it (which would cancel it cleanly).
    sock.prependListener('error', this.#onError);
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('close', this.#onClose);
    sock.resume();
  }

  #chunk(b: Buffer): void {
    if (this.#end !== undefined) return;
    const c = new NetChunk(b, this.bytes);
    this.bytes += b.length;
    this.chunks++;
    const h = this.#handler;
    if (h !== null && !this.#hPaused && this.#qhead === this.#queue.length) {
      if (!handOver(h, c)) this.#pauseForHandler();
      return;
    }
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w.resolve({ value: c, done: false });
      return;
    }
    this.#queue.push(c);
    this.#queuedBytes += b.length;
    if (this.#queuedBytes >= QUEUE_LIMIT && !this.#paused) {
      this.#paused = true;
      this.#sock.pause();
    }
  }

  /** The receive is over (end, error, close or cancel): stop listening. */
  #finish(end: ZcError | null): void {
    if (this.#end !== undefined) return;
    this.#end = end;
    const s = this.#sock;
    s.off('error', this.#onError);
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('close', this.#onClose);
    if (!s.destroyed) s.pause();
    this.#resolveFinished();
    this.#wakeEnd();
  }

  #wakeEnd(): void {
    if (this.#handler !== null) {
      this.#feed();
      return;
    }
    const w = this.#waiter;
    if (!w || this.#qhead < this.#queue.length) return;
    this.#waiter = null;
    const r = this.#takeEnd();
    if (r instanceof ZcError) w.reject(r);
    else w.resolve(r);
  }

  #takeEnd(): IteratorResult<NetChunk> | ZcError {
    if (this.#end && !this.#errorDelivered) {
      this.#errorDelivered = true;
      return this.#end;
    }
    return { value: undefined, done: true };
  }

  get queued(): number {
    return this.#queue.length - this.#qhead;
  }

  get done(): boolean {
    return this.#end !== undefined && this.queued === 0;
  }

  /** @internal still receiving (a second receive() is refused meanwhile) */
  get active(): boolean {
    return this.#end === undefined;
  }

  consume(handler: ChunkHandler<NetChunk>): void {
    checkHandler(handler);
    if (this.#handler !== null) throw consumeBusy('twice');
    if (this.#waiter !== null) throw consumeBusy('next');
    this.#handler = handler;
    if (this.#qhead < this.#queue.length || this.#end !== undefined) this.#queueFeed();
  }

  resume(): void {
    if (this.#handler === null || !this.#hPaused) return;
    this.#hPaused = false;
    this.#queueFeed();
  }

  #pauseForHandler(): void {
    this.#hPaused = true;
    if (!this.#paused && this.#end === undefined) {
      this.#paused = true;
      this.#sock.pause();
    }
  }

  #queueFeed(): void {
    if (this.#feedQueued) return;
    this.#feedQueued = true;
    queueMicrotask(() => {
      this.#feedQueued = false;
      this.#feed();
    });
  }

  /** Hand queued chunks to the handler; the end after the last; the socket resumed once drained. */
  #feed(): void {
    const h = this.#handler as ChunkHandler<NetChunk>;
    while (!this.#hPaused && this.#qhead < this.#queue.length) {
      const c = this.#queue[this.#qhead] as NetChunk;
      this.#queue[this.#qhead++] = undefined as unknown as NetChunk;
      this.#queuedBytes -= c.length;
      if (!handOver(h, c)) this.#pauseForHandler();
    }
    if (this.#qhead < this.#queue.length) return;
    this.#queue = [];
    this.#qhead = 0;
    if (this.#end !== undefined) {
      if (!this.#hEnded) {
        this.#hEnded = true;
        handEnd(h, this.#end);
      }
    } else if (!this.#hPaused && this.#paused) {
      this.#paused = false;
      this.#sock.resume();
    }
  }

  next(): Promise<IteratorResult<NetChunk>> {
    if (this.#handler !== null) return Promise.reject(nextBusy());
    if (this.#qhead < this.#queue.length) {
      const c = this.#queue[this.#qhead] as NetChunk;
      this.#queue[this.#qhead++] = undefined as unknown as NetChunk;
      this.#queuedBytes -= c.length;
      if (this.#qhead === this.#queue.length) {
        this.#queue = [];
        this.#qhead = 0;
      }
      if (this.#paused && this.#queuedBytes < QUEUE_LIMIT / 2 && this.#end === undefined) {
        this.#paused = false;
        this.#sock.resume();
      }
      return Promise.resolve({ value: c, done: false });
    }
    if (this.#end !== undefined) {
      const r = this.#takeEnd();
      return r instanceof ZcError ? Promise.reject(r) : Promise.resolve(r);
    }
    if (this.#waiter) {
      return Promise.reject(new ZcError({ errno: ERRNO.EBUSY, op: 'recv.next', hint: 'next() called again before the previous one settled' }));
    }
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  cancel(): void {
    for (let i = this.#qhead; i < this.#queue.length; i++) (this.#queue[i] as NetChunk)[Symbol.dispose]();
    this.#queue = [];
    this.#qhead = 0;
    this.#queuedBytes = 0;
    this.#finish(null);
    this.#wakeEnd();
  }

  return(): Promise<IteratorResult<NetChunk>> {
    this.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.cancel();
    await this.finished;
  }

  [Symbol.asyncIterator](): NetChunkStream {
    return this;
  }
}
