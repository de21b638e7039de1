// SPDX-License-Identifier: MIT
/**
 * The consumer side of a {@link ChunkStream}, shared by both backends'
 * streams (RecvStream over io_uring, NetChunkStream over node:net): the
 * queue of chunks not yet taken, `next()` and its waiter, the handler of
 * `consume()` (handed chunks from the arrival when nothing waits before
 * them, else fed from the queue), and the end: delivered once, after the
 * last chunk, to next() or to the handler.
 *
 * A backend calls {@link ChunkQueue.deliver} for each chunk, then
 * {@link ChunkQueue.setEnd} and {@link ChunkQueue.wakeEnd} once the receive
 * is over, and overrides the hooks it needs (node:net pauses its socket on
 * the queue's bytes and on the handler's `false`).
 */
import { ERRNO } from './ffi/abi.gen.ts';
import { ZcError } from './errors.ts';
import { checkHandler, consumeBusy, handEnd, handOver, nextBusy, type ChunkHandler } from './recv-handler.ts';

type Waiter<C> = { resolve: (r: IteratorResult<C>) => void; reject: (e: unknown) => void };

/** Queue, next(), consume() and the end of a chunk stream; `C` is the backend's chunk. */
export abstract class ChunkQueue<C extends Disposable> implements AsyncIterableIterator<C> {
  /** bytes and chunks delivered so far */
  bytes = 0;
  chunks = 0;
  /** resolves once the underlying receive has finished (after the end or a cancel) */
  readonly finished: Promise<void>;

  #queue: C[] = [];
  #qhead = 0;
  #waiter: Waiter<C> | null = null;
  /** undefined while running; null after a clean end; the error otherwise */
  #end: ZcError | null | undefined = undefined;
  #errorDelivered = false;
  #resolveFinished!: () => void;
  /** the consume() handler (or the Duplex side's reader) */
  #handler: ChunkHandler<C> | null = null;
  #hPaused = false;
  #hEnded = false;
  #feedQueued = false;

  constructor() {
    this.finished = new Promise((r) => (this.#resolveFinished = r));
  }

  /**
   * @internal A handler threw while it held `c` (handOver): give `c` back
   * if nothing else can read its memory (the backend's chunk knows).
   */
  abstract chunkThrew(c: C): void;

  /** A chunk queued (nothing took it at once). */
  protected queuedChunk(_c: C): void {}
  /** A queued chunk taken, by next() (`byNext`) or by the handler. */
  protected tookChunk(_c: C, _byNext: boolean): void {}
  /** The handler's chunk() returned false. */
  protected handlerPaused(): void {}
  /** The handler took every queued chunk and the stream goes on. */
  protected handlerDrained(): void {}

  /** A new chunk: to the handler, else to a waiting next(), else queued. */
  protected deliver(c: C): void {
    const h = this.#handler;
    if (h !== null && !this.#hPaused && this.#qhead === this.#queue.length) {
      if (!handOver(h, c, this)) this.#pauseHandler();
      return;
    }
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w.resolve({ value: c, done: false });
      return;
    }
    this.#queue.push(c);
    this.queuedChunk(c);
  }

  /** The end, unless one was set already: null when clean, else the error. */
  protected setEnd(end: ZcError | null): void {
    if (this.#end === undefined) this.#end = end;
  }

  /** true once the end is set (chunks may still be queued) */
  protected get ended(): boolean {
    return this.#end !== undefined;
  }

  /** @internal the receive is over: resolve `finished` */
  protected resolveFinished(): void {
    this.#resolveFinished();
  }

  /** Release the chunks still queued and forget them (a cancel). */
  protected dropQueued(): void {
    for (let i = this.#qhead; i < this.#queue.length; i++) (this.#queue[i] as C)[Symbol.dispose]();
    this.clearQueued();
  }

  /** Forget the chunks still queued (their memory is gone with the ring). */
  protected clearQueued(): void {
    this.#queue = [];
    this.#qhead = 0;
  }

  /** Deliver the end if nothing is queued before it. */
  protected wakeEnd(): void {
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

  #takeEnd(): IteratorResult<C> | ZcError {
    if (this.#end && !this.#errorDelivered) {
      this.#errorDelivered = true;
      return this.#end;
    }
    return { value: undefined, done: true };
  }

  /** Chunks received and not yet taken by next(). */
  get queued(): number {
    return this.#queue.length - this.#qhead;
  }

  /** true once the stream ended (EOF, error, cancel) and every chunk was taken */
  get done(): boolean {
    return this.#end !== undefined && this.queued === 0;
  }

  /** See {@link ChunkStream.consume}. */
  consume(handler: ChunkHandler<C>): void {
    checkHandler(handler);
    if (this.#handler !== null) throw consumeBusy('twice');
    if (this.#waiter !== null) throw consumeBusy('next');
    this.#handler = handler;
    if (this.#qhead < this.#queue.length || this.#end !== undefined) this.#queueFeed();
  }

  /** See {@link ChunkStream.resume}. */
  resume(): void {
    if (this.#handler === null || !this.#hPaused) return;
    this.#hPaused = false;
    this.#queueFeed();
  }

  /** @internal The handler takes chunks again, fed at once (the Duplex side's reader). */
  resumeSink(): void {
    if (this.#handler === null) return;
    this.#hPaused = false;
    this.#feed();
  }

  #pauseHandler(): void {
    this.#hPaused = true;
    this.handlerPaused();
  }

  #queueFeed(): void {
    if (this.#feedQueued) return;
    this.#feedQueued = true;
    queueMicrotask(() => {
      this.#feedQueued = false;
      if (this.#handler !== null) this.#feed();
    });
  }

  /** Hand queued chunks to the handler; the end after the last. */
  #feed(): void {
    const h = this.#handler as ChunkHandler<C>;
    while (!this.#hPaused && this.#qhead < this.#queue.length) {
      const c = this.#queue[this.#qhead] as C;
      this.#queue[this.#qhead++] = undefined as unknown as C;
      this.tookChunk(c, false);
      if (!handOver(h, c, this)) this.#pauseHandler();
    }
    if (this.#qhead < this.#queue.length) return;
    this.#queue = [];
    this.#qhead = 0;
    if (this.#end !== undefined) {
      if (!this.#hEnded) {
        this.#hEnded = true;
        handEnd(h, this.#end);
      }
    } else if (!this.#hPaused) {
      this.handlerDrained();
    }
  }

  next(): Promise<IteratorResult<C>> {
    if (this.#handler !== null) return Promise.reject(nextBusy());
    if (this.#qhead < this.#queue.length) {
      const c = this.#queue[this.#qhead] as C;
      this.#queue[this.#qhead++] = undefined as unknown as C;
      if (this.#qhead === this.#queue.length) {
        this.#queue = [];
        this.#qhead = 0;
      } else if (this.#qhead > 1024 && this.#qhead * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#qhead);
        this.#qhead = 0;
      }
      this.tookChunk(c, true);
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

  /** Stop receiving (the backend's): queued chunks are released, the iterator ends. */
  abstract cancel(): void;

  return(): Promise<IteratorResult<C>> {
    this.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** `await using stream = sock.receive()`: cancel, then wait until the receive finished. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.cancel();
    await this.finished;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
