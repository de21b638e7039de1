// SPDX-License-Identifier: MIT
/**
 * The readable side of a {@link ZcSocket}: the multishot provided-buffer
 * receive of the socket's fd, each chunk copied out of the registered
 * area into a Buffer of its own (the area is shared and must go back to
 * the kernel) and pushed into the Duplex.  When the Duplex is full the
 * chunks are held instead, which stops the kernel for this socket
 * (backpressure), and fed on at the next `_read()`.
 */
import { ZcError } from '../errors.ts';
import { receive, type Chunk, type ReceiveOptionsInput, type RecvSink, type RecvStream } from '../recv.ts';
import type { Ring, RingRequest } from '../ring.ts';
import type { ReadTarget } from './engine.ts';

/** Copies received chunks into a {@link ReadTarget}. */
export class SocketReader implements RecvSink {
  readonly #stream: RecvStream;
  readonly #target: ReadTarget;
  #stopped = false;

  constructor(ring: Ring, fd: number, target: ReadTarget, options?: ReceiveOptionsInput) {
    this.#target = target;
    this.#stream = receive(ring, fd, options);
    this.#stream.attachSink(this);
  }

  /** resolves once the kernel-side receive finished */
  get finished(): Promise<void> {
    return this.#stream.finished;
  }

  /** @internal RecvSink */
  chunk(c: Chunk): boolean {
    if (this.#stopped) {
      c.release();
      return true;
    }
    // The one copy in JS: out of the shared area into the consumer's Buffer.
    const buf = c.copy();
    c.release();
    return this.#target.data(buf);
  }

  /** @internal RecvSink */
  end(err: ZcError | null): void {
    if (!this.#stopped) this.#target.end(err);
  }

  /** Whether the receive keeps the process alive. */
  ref(on: boolean): void {
    this.#stream.setRef(on);
  }

  /** Take chunks again after data() returned false. */
  resume(): void {
    this.#stream.resumeSink();
  }

  /** Stop receiving (destroy): held chunks go back, nothing more is delivered. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#stream.cancel();
    return this.#stream.finished;
  }
}

/** Bytes one plain recv asks for (what Node's net reads per call too). */
const RECV_SIZE = 65536;

/**
 * The other readable side: one plain recv at a time into a fresh Buffer
 * (the kernel copies straight into it; no copy in JS), the next one issued
 * when the Duplex wants more.  Nothing is received while paused.
 */
export class BufReader {
  readonly #ring: Ring;
  readonly #fd: number;
  readonly #target: ReadTarget;
  #req: RingRequest | null = null;
  #paused = false;
  #done = false;
  #refed = true;
  #finished: Promise<void> = Promise.resolve();
  #resolveFinished: (() => void) | null = null;

  constructor(ring: Ring, fd: number, target: ReadTarget) {
    this.#ring = ring;
    this.#fd = fd;
    this.#target = target;
    this.#issue();
  }

  get finished(): Promise<void> {
    return this.#finished;
  }

  #issue(): void {
    if (this.#req || this.#paused || this.#done) return;
    const ring = this.#ring;
    const fd = this.#fd;
    const buf = Buffer.allocUnsafe(RECV_SIZE);
    this.#finished = new Promise((r) => (this.#resolveFinished = r));
    const req: RingRequest = {
      opName: 'recv',
      keep: buf,
      issue: (ud) => ring.zc.zc_recv_buf(ring.ptr, fd, buf, RECV_SIZE, ud),
      done: (c) => this.#record(c.res, buf),
      fail: (e) => this.#ended(e),
    };
    this.#req = req;
    ring.enqueue(req);
    if (!this.#refed && this.#req === req) ring.refRequest(req, false);
  }

  #settle(): void {
    this.#req = null;
    this.#resolveFinished?.();
    this.#resolveFinished = null;
  }

  #record(res: number, buf: Buffer): void {
    this.#settle();
    if (this.#done) return;
    if (res > 0) {
      if (!this.#target.data(buf.subarray(0, res))) this.#paused = true;
      this.#issue();
      return;
    }
    this.#ended(res === 0 ? null : new ZcError({ errno: res, op: 'recv', details: { fd: this.#fd } }));
  }

  #ended(err: ZcError | null): void {
    this.#settle();
    if (this.#done) return;
    this.#done = true;
    this.#target.end(err);
  }

  ref(on: boolean): void {
    this.#refed = on;
    if (this.#req) this.#ring.refRequest(this.#req, on);
  }

  resume(): void {
    this.#paused = false;
    this.#issue();
  }

  /** Stop: nothing more is delivered; resolves once the recv in flight ended (the close ends it). */
  stop(): Promise<void> {
    this.#done = true;
    return this.#finished;
  }
}
