// SPDX-License-Identifier: MIT
/**
 * The readable side of a {@link ZcSocket}: the multishot provided-buffer
 * receive of the socket's fd, each chunk copied out of the registered
 * area into a Buffer of its own (the area is shared and must go back to
 * the kernel) and pushed into the Duplex.  When the Duplex is full the
 * chunks are held instead, which stops the kernel for this socket
 * (backpressure; the area's per-stream quota keeps other sockets going),
 * and fed on at the next `_read()`.  Why this and not one plain recv into
 * a fresh Buffer: docs/PERFORMANCE.md, "The Node-shaped layer".
 */
import type { ZcError } from '../errors.ts';
import { receive, type Chunk, type ReceiveOptionsInput, type RecvStream } from '../recv.ts';
import type { ChunkHandler } from '../recv-handler.ts';
import type { Ring } from '../ring.ts';
import type { ReadTarget } from './engine.ts';

/** Copies received chunks into a {@link ReadTarget}. */
export class SocketReader implements ChunkHandler<Chunk> {
  readonly #stream: RecvStream;
  readonly #target: ReadTarget;
  #stopped = false;

  constructor(ring: Ring, fd: number, target: ReadTarget, options?: ReceiveOptionsInput) {
    this.#target = target;
    this.#stream = receive(ring, fd, options);
    this.#stream.consume(this);
  }

  /** resolves once the kernel-side receive finished */
  get finished(): Promise<void> {
    return this.#stream.finished;
  }

  /** @internal ChunkHandler */
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

  /** @internal ChunkHandler */
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
    this.#stream.releaseFd(); // the socket closes its fd next
    return this.#stream.finished;
  }
}

