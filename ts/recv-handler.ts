// SPDX-License-Identifier: MIT
/**
 * The callback form of a receive: `socket.receive(options, handler)` or
 * `stream.consume(handler)` hands each chunk to `handler.chunk()` from the
 * completion that brought it, with no Promise, iterator result or
 * microtask per chunk (the iterator's cost per message:
 * docs/PERFORMANCE.md, "Session 13").  Shared by both backends' streams.
 */
import { ERRNO } from './ffi/abi.gen.ts';
import { rethrowLater, ZcError } from './errors.ts';

/**
 * Takes the chunks of one stream as they arrive (see `ChunkStream.consume`).
 * `C` is the chunk type: `ReceivedChunk` from `socket.receive()`.
 */
export interface ChunkHandler<C> {
  /**
   * One chunk, in stream order: the handler owns it.  Release it when done
   * with it (it may be kept past the call).  Return `false` to pause: later
   * chunks wait, and the socket stops receiving once the stream's share of
   * the receive memory is held, until `stream.resume()`.
   *
   * A throw ends the handler's ownership when the chunk's memory cannot be
   * in use elsewhere: the chunk is released unless it already was or its
   * `data` was read.  A view of `data` may have gone to a send, a
   * node:net or file write, a queue: any of them may still read it, so
   * such a chunk stays the handler's (release it from where its bytes
   * went, e.g. the send's callback; a chunk read by a handler that then
   * throws and is released nowhere stays held, its receive memory with
   * it).  `copy()` makes no lasting view: a handler that only copied is
   * released.  (A node:net backend chunk is always released: its Buffer
   * is garbage-collected memory nothing reuses, kept alive by any view.)
   * The throw is then reported as an uncaught exception, as a throwing
   * `'data'` listener's is, and the stream goes on.
   */
  chunk(c: C): boolean | void;
  /**
   * Called once, after the last chunk: `null` at the peer's FIN or after
   * `cancel()` (from within `cancel()` when nothing is left to hand over;
   * the socket's destroy() and an aborted `signal` cancel too), the error
   * the receive ended with otherwise (ECONNRESET, ...; ECANCELED when the
   * ring is closed under it).  Never from inside receive() or consume().
   */
  end(err: ZcError | null): void;
}

/** Throws a TypeError unless `h` has chunk() and end(). */
export function checkHandler(h: unknown): void {
  const o = h as { chunk?: unknown; end?: unknown } | null;
  if (o === null || typeof o !== 'object' || typeof o.chunk !== 'function' || typeof o.end !== 'function') {
    throw new TypeError('receive: the handler must be an object with chunk(c) and end(err) methods');
  }
}

/** The EBUSY of a second consume(), or of consume() with a next() pending. */
export function consumeBusy(why: 'twice' | 'next'): ZcError {
  return new ZcError({
    errno: ERRNO.EBUSY,
    op: 'recv.consume',
    hint: why === 'twice' ? 'consume() was already called on this stream' : 'a next() of this stream is still pending: consume() or iterate, not both',
  });
}

/** The EBUSY of next() on a stream whose chunks go to a handler. */
export function nextBusy(): ZcError {
  return new ZcError({ errno: ERRNO.EBUSY, op: 'recv.next', hint: 'this stream hands its chunks to the handler given to consume(): iterate or consume, not both' });
}

/** Who handOver asks to take a chunk back when its handler throws. */
export interface ChunkOwner<C> {
  /**
   * The handler of `c` threw: release `c` unless it already was or a view
   * of its memory was handed out (whoever holds that view may still read it).
   */
  chunkThrew(c: C): void;
}

/**
 * Hand `c` to the handler; false when it asked to pause.  A throw gives
 * `c` back through `owner` when nothing else can read its memory, then is
 * rethrown later.
 */
export function handOver<C>(h: ChunkHandler<C>, c: C, owner: ChunkOwner<C>): boolean {
  try {
    return h.chunk(c) !== false;
  } catch (e) {
    try {
      owner.chunkThrew(c);
    } catch (e2) {
      rethrowLater(e2);
    }
    rethrowLater(e);
    return true;
  }
}

/** Tell the handler the stream ended. */
export function handEnd<C>(h: ChunkHandler<C>, err: ZcError | null): void {
  try {
    h.end(err);
  } catch (e) {
    rethrowLater(e);
  }
}
