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
import { ChunkQueue } from '../chunk-queue.ts';

/** Bytes received and not yet taken by next() before the socket is paused. */
export const QUEUE_LIMIT = 256 * 1024;

const HANDED = 'the chunk was handed to send()';

/** A chunk of the 'net' backend: a Buffer node:net read, valid until release(). */
export class NetChunk implements ReceivedChunk {
  readonly length: number;
  readonly streamOffset: number;
  #buf: Buffer | null;
  /** taken by send(chunk) */
  #handed = false;

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
    if (this.#buf === null) throw new ZcOwnershipError('chunk.data', this.#handed ? HANDED : 'the chunk was released');
    return this.#buf;
  }

  copy(): Buffer {
    return Buffer.from(this.data);
  }

  release(): void {
    if (this.#buf === null) throw new ZcOwnershipError('chunk.release', this.#handed ? HANDED : 'the chunk was already released');
    this.#buf = null;
  }

  /**
   * @internal send(chunk) takes the chunk: its Buffer to send, the chunk
   * released from now on (node:net's garbage-collected memory: nothing
   * to give back once the send is over).  Throws if released already.
   */
  take(op: string): Buffer {
    const b = this.#buf;
    if (b === null) throw new ZcOwnershipError(op, this.#handed ? HANDED : 'the chunk was released');
    this.#buf = null;
    this.#handed = true;
    return b;
  }

  [Symbol.dispose](): void {
    this.#buf = null;
  }

  /**
   * @internal Its handler threw: released.  The Buffer is node:net's, its
   * own garbage-collected memory: whoever holds a view keeps it alive, and
   * nothing reuses it.
   */
  handlerThrew(): void {
    this.#buf = null;
  }
}

/** A node:net error ('ECONNRESET', ...) as the ZcError a ring receive ends with. */
function recvError(e: Error, bytes: number): ZcError {
  const sys = e as NodeJS.ErrnoException;
  const errno = (sys.code !== undefined && (ERRNO as Record<string, number>)[sys.code]) || Math.abs(sys.errno ?? 0) || ERRNO.EIO;
  return new ZcError({ errno, op: 'recv', details: { bytes } });
}

/**
 * The chunks of one net.Socket, in order (see {@link ChunkStream}).  The
 * queue, next(), consume() and the end are {@link ChunkQueue}'s; this
 * class feeds it from the socket's events and pauses the socket.
 */
export class NetChunkStream extends ChunkQueue<NetChunk> implements ChunkStream {
  readonly mode = 'net' as const;
  readonly fallback = null;
  #sock: net.Socket;
  #queuedBytes = 0;
  #paused = false;
  readonly #onData = (b: Buffer): void => this.#chunk(b);
  readonly #onEnd = (): void => this.#finish(null);
  readonly #onError = (e: Error): void => this.#finish(recvError(e, this.bytes));
  /** closed without an end or error: the socket was destroyed (the receive just ends) */
  readonly #onClose = (): void => this.#finish(null);

  /** @internal handOver: a handler threw holding `c` (see NetChunk.handlerThrew) */
  chunkThrew(c: NetChunk): void {
    c.handlerThrew();
  }

  /** @internal NetEngine.receive() */
  constructor(sock: net.Socket) {
    super();
    this.#sock = sock;
    // Before the engine's own listeners: the error ends this stream before
    // the socket is destroyed for it (which would cancel it cleanly).
    sock.prependListener('error', this.#onError);
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('close', this.#onClose);
    sock.resume();
  }

  #chunk(b: Buffer): void {
    if (this.ended) return;
    const c = new NetChunk(b, this.bytes);
    this.bytes += b.length;
    this.chunks++;
    this.deliver(c);
  }

  /** Backpressure: QUEUE_LIMIT bytes waiting for next() pause the socket. */
  protected override queuedChunk(c: NetChunk): void {
    this.#queuedBytes += c.length;
    if (this.#queuedBytes >= QUEUE_LIMIT && !this.#paused) {
      this.#paused = true;
      this.#sock.pause();
    }
  }

  /** ...and next() taking the queue under half of it resumes it. */
  protected override tookChunk(c: NetChunk, byNext: boolean): void {
    this.#queuedBytes -= c.length;
    if (byNext && this.#paused && this.#queuedBytes < QUEUE_LIMIT / 2 && !this.ended) {
      this.#paused = false;
      this.#sock.resume();
    }
  }

  /** The handler's false pauses the socket... */
  protected override handlerPaused(): void {
    if (!this.#paused && !this.ended) {
      this.#paused = true;
      this.#sock.pause();
    }
  }

  /** ...until it took the queue after resume(). */
  protected override handlerDrained(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#sock.resume();
    }
  }

  /** The receive is over (end, error, close or cancel): stop listening. */
  #finish(end: ZcError | null): void {
    if (this.ended) return;
    this.setEnd(end);
    const s = this.#sock;
    s.off('error', this.#onError);
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('close', this.#onClose);
    if (!s.destroyed) s.pause();
    this.resolveFinished();
    this.wakeEnd();
  }

  /** @internal still receiving (a second receive() is refused meanwhile) */
  get active(): boolean {
    return !this.ended;
  }

  cancel(): void {
    this.dropQueued();
    this.#queuedBytes = 0;
    this.#finish(null);
    this.wakeEnd();
  }
}
