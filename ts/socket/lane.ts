// SPDX-License-Identifier: MIT
/**
 * The fast lane of one socket: `send(data) -> { bytes, zeroCopy }` straight
 * into the ring, with the same-tick {@link Coalescer} on stream sockets.
 * Both the Duplex writes of {@link ZcSocket} and its `send()` go through
 * here, so they share one order.  The owner checks that the socket is
 * open; the lane counts what is in flight and settles it.  Each send is a
 * descriptor of the ring's tick batch (one FFI call per tick for all), and
 * settles through a callback ({@link SendLane.sendCallback}) or a Promise
 * built on the same path ({@link SendLane.send}).
 */
import { isLoopbackSockaddr } from '../addr.ts';
import type { SendOptions, SendOptionsInput } from '../config.ts';
import { ZcOwnershipError } from '../errors.ts';
import { PoolBuffer, poolOf, type BufferPool } from '../pool.ts';
import { Chunk } from '../recv.ts';
import type { Ring } from '../ring.ts';
import { Coalescer, COALESCE_MAX_SEND } from './coalescer.ts';
import { addressNumber } from './memory.ts';
import { sendLength, sendOffset, sendView } from './send-args.ts';
import { sendFlags } from './send-flags.ts';
import { SendOptionsMemo } from './send-options.ts';
import { PoolSend } from './pool-send.ts';
import { SendOp, type LaneHooks, type SendCallback } from './send-op.ts';
import { peerIsLocal, unpacedToLocalPeer, zeroCopyCapable } from './sockopt.ts';
import type { SendResult } from './types.ts';

export type { SendCallback } from './send-op.ts';

/**
 * Memory of a pool can only be sent on the pool's ring: another ring can
 * neither hold it while the kernel reads it nor keep its pool from being
 * unmapped and reused under the send.
 */
function wrongRing(ring: Ring, pool: BufferPool, op: string): ZcOwnershipError {
  return new ZcOwnershipError(
    op,
    `this memory belongs to a buffer pool of ring #${pool.ring.id}, the socket is on ring #${ring.id}: ` +
      'send pool memory on a socket of its own ring (or copy it into a Uint8Array)',
  );
}

/**
 * A Uint8Array of a detached ArrayBuffer (transferred by postMessage,
 * structuredClone or ArrayBuffer.prototype.transfer) has no memory: its
 * length reads 0.  Node 22+ says so (`detached`); on Node 20 a new view of
 * it throws.  Only ever asked of an empty view.
 */
function isDetached(ab: ArrayBufferLike): boolean {
  if (ab.byteLength !== 0 || ab instanceof SharedArrayBuffer) return false;
  const d = (ab as { readonly detached?: boolean }).detached;
  if (d !== undefined) return d;
  try {
    new Uint8Array(ab);
    return false;
  } catch {
    return true;
  }
}

function detachedBefore(op: string): ZcOwnershipError {
  return new ZcOwnershipError(
    op,
    "the Uint8Array's ArrayBuffer was detached (transferred with postMessage, structuredClone or " +
      "ArrayBuffer.prototype.transfer) before this send: it has no memory left to send; send a view of the " +
      'ArrayBuffer it was transferred to, or transfer it only after its sends settled',
  );
}

/** Settled send objects a lane keeps for reuse, at most. */
const FREE_OPS = 64;

/** Sends of one fd through its ring. */
export class SendLane implements LaneHooks {
  readonly ring: Ring;
  #fd: number;
  /** stream socket: same-tick sends may coalesce */
  readonly stream: boolean;
  /**
   * 'auto' may use zero-copy sends here: the family has them (not
   * AF_UNIX) and the connected peer is not on this host (where the kernel
   * copies zero-copy payloads at delivery anyway; see peerIsLocal)
   */
  readonly autoZc: boolean;
  readonly #opts: SendOptionsMemo;
  /** #opts.defaults, for a send with no options */
  #defaults: Readonly<SendOptions>;
  readonly #coalescer: Coalescer;
  #inFlight = 0;
  /** bytes the kernel took from this lane's sends and sendFiles, Duplex writes aside (LaneHooks) */
  bytesSent = 0;
  #waiters: (() => void)[] = [];
  /** ops of sends that went alone and are over, for reuse (see recycle) */
  #free: SendOp[] = [];
  /**
   * The send memo: the ArrayBuffer of the last Uint8Array this lane sent,
   * its pool (undefined: none; this lane's ring's, it passed the ring
   * check) and the address of its byte 0.  A send from the same
   * ArrayBuffer (an echo server replies from one receive area) reads its
   * pool and address here, not from the WeakMaps of poolOf and
   * addressNumber.  Sound because the identity of an ArrayBuffer is that of
   * its memory while it has any: a transfer detaches this object (its
   * views read 0 bytes: refused, see isDetached) and gives the memory to a
   * new one, and a resizable one grows and shrinks in place.  It keeps that
   * ArrayBuffer alive: dropped when the socket starts closing (fd -1).
   */
  #memoBuffer: ArrayBufferLike | null = null;
  #memoPool: BufferPool | undefined = undefined;
  #memoBase = 0;
  /**
   * The last Uint8Array whose ArrayBuffer is the memo's: a client that
   * sends one request buffer again and again skips `view.buffer`, a call
   * into V8's C++ (a view's ArrayBuffer never changes, and one whose
   * `buffer` was read once keeps its bytes off V8's heap, where they do
   * not move).  Set with the memo, so always a view of #memoBuffer.
   */
  #memoView: Uint8Array | null = null;

  /** `localPacing`: keep the system's congestion control to a peer on this host (SocketOptions.localPacing). */
  constructor(ring: Ring, fd: number, stream: boolean, defaults: SendOptions, localPacing = false) {
    this.ring = ring;
    this.#fd = fd;
    this.stream = stream;
    const local = peerIsLocal(ring, fd);
    this.autoZc = !local && zeroCopyCapable(ring, fd);
    // No pacing between two sockets of this host (see unpacedToLocalPeer;
    // SocketOptions.localPacing: true keeps the system's choice).
    if (stream && local && !localPacing) unpacedToLocalPeer(ring, fd);
    this.#opts = new SendOptionsMemo(defaults);
    this.#defaults = this.#opts.defaults;
    this.#coalescer = new Coalescer(this);
  }

  /**
   * the fd sends go to; -1 from the moment the socket starts closing:
   * requests issued later (waiting in JS for a free slot) end with
   * ECANCELED instead of reaching the number, which the kernel may have
   * given to another socket by then.  Setting -1 also drops the send memo.
   */
  get fd(): number {
    return this.#fd;
  }

  set fd(fd: number) {
    this.#fd = fd;
    if (fd < 0) {
      this.#memoView = null;
      this.#memoBuffer = null;
      this.#memoPool = undefined;
      this.#memoBase = 0;
    }
  }

  /** sends not settled yet */
  get inFlight(): number {
    return this.#inFlight;
  }

  get defaults(): Readonly<SendOptions> {
    return this.#opts.defaults;
  }

  setDefaults(options: SendOptionsInput): void {
    this.#opts.setDefaults(options);
    this.#defaults = this.#opts.defaults;
  }

  /** Resolves when every send made so far has settled. */
  settled(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }

  /**
   * Count a request the lane does not build itself (sendFile) as in
   * flight; call the returned function once when it settled.
   */
  begin(): () => void {
    this.#inFlight++;
    return () => this.sendSettled();
  }

  /** Issue this tick's coalesced sends now (before a shutdown or close). */
  flush(): void {
    this.#coalescer.flush();
  }

  /** one send settled (its buffer given back; LaneHooks) */
  sendSettled(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#waiters.length > 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    }
  }

  /** A settled lone send's op, to be reused (LaneHooks). */
  recycle(op: SendOp): void {
    op.clear();
    if (this.#free.length < FREE_OPS) this.#free.push(op);
  }

  /**
   * One send (see ZcSocket.send).  `to` is an encoded sockaddr for
   * unconnected datagram sockets, else null.  `lent`: a PoolBuffer the
   * caller already lent (a Duplex write), or a received {@link Chunk} the
   * socket already took.  A Chunk is taken here otherwise, once every
   * check passed, and given back (Chunk.sent) when the send settles.
   * Throws ZcOwnershipError / ZcConfigError / TypeError at once; kernel
   * errors reject.
   */
  send(
    data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, to: Buffer | null, opName: string, lent = false,
  ): Promise<SendResult> {
    const op = this.#prepare(data, options, to, opName, lent, null);
    return new Promise<SendResult>((resolve, reject) => {
      op.resolve = resolve;
      op.reject = reject;
      this.#start(op, to);
    });
  }

  /**
   * The same send without a Promise: `cb(err, bytes, zeroCopy)` runs once
   * when it settled (err null: the whole length left).  Throws at once like
   * send(); never calls cb synchronously.
   */
  sendCallback(
    data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, to: Buffer | null, opName: string,
    cb: SendCallback, lent = false,
  ): void {
    const op = this.#prepare(data, options, to, opName, lent, cb);
    op.starting = true;
    try {
      this.#start(op, to);
    } finally {
      op.starting = false;
    }
  }

  /**
   * sendCallback() of a PoolBuffer on a connected datagram socket (the
   * caller checked both): the same checks, errors and settle, through the
   * buffer's own {@link PoolSend}.  What the options resolve to is worked
   * out again only when the lane's memo returns another object than at the
   * buffer's last send (a changed options object, new defaults), and the
   * range and ring checks with it: they depend on nothing else.
   */
  sendPool(pb: PoolBuffer, options: SendOptionsInput | undefined, cb: SendCallback): void {
    const o = this.#opts.resolve(options);
    let req = pb.sendReq;
    if (req === null || req.lane !== this || req.o !== o) req = this.#poolShape(pb, o);
    else pb.lend('send'); // throws if in flight or released
    req.cb = cb;
    req.fd = this.#fd;
    req.issued = false;
    req.starting = true;
    this.#inFlight++;
    try {
      req.enqueue();
    } finally {
      req.starting = false;
    }
  }

  /** sendPool() with options (or a lane) the buffer's PoolSend has not seen: check them, lend, shape. */
  #poolShape(pb: PoolBuffer, o: SendOptions): PoolSend {
    const off = sendOffset(pb.size, o);
    const len = sendLength(pb.size, o, off);
    if (pb.pool.ring !== this.ring) throw wrongRing(this.ring, pb.pool, 'send');
    const flags = sendFlags(o, len, true, this.autoZc);
    pb.lend('send'); // throws if in flight or released
    let req = pb.sendReq;
    if (req === null || req.lane !== this) pb.sendReq = req = new PoolSend(this, pb);
    req.setShape(o, off, len, flags);
    return req;
  }

  /**
   * Check the arguments and lend the buffer: throws at once, nothing
   * queued.  One object per send (the op is its own ring request when it
   * goes alone); a PoolBuffer's range is checked without a result object.
   */
  #prepare(
    data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, to: Buffer | null, opName: string, lent: boolean,
    cb: SendCallback | null,
  ): SendOp {
    // No options: the defaults, read here (resolve() is small enough to stay
    // out of #prepare's inlining and runs as baseline code for seconds).
    const o = options === undefined ? this.#defaults : this.#opts.resolve(options);
    let pb: PoolBuffer | null = null;
    let view: Uint8Array | null = null;
    let chunk: Chunk | null = null;
    let off: number;
    let len: number;
    let addr = 0;
    if (data instanceof PoolBuffer) {
      pb = data;
      off = sendOffset(data.size, o);
      len = sendLength(data.size, o, off);
      if (pb.pool.ring !== this.ring) throw wrongRing(this.ring, pb.pool, opName);
    } else if (data instanceof Chunk) {
      // The chunk's bytes by address in its area: no view of them is made.
      chunk = data;
      off = sendOffset(data.length, o);
      len = sendLength(data.length, o, off);
      addr = data.address + off;
      off = 0; // applied to the address, as a view's
    } else {
      view = sendView(data, o, opName);
      off = 0; // a view's offset is applied (only a PoolBuffer's is kept)
      len = view.length;
      addr = this.#viewAddress(view, len, opName);
    }
    // An unconnected datagram socket's destination is known per send: a
    // loopback one is on this host too.
    const flags = sendFlags(o, len, pb !== null, to === null ? this.autoZc : this.autoZc && !isLoopbackSockaddr(to));
    if (!lent) {
      if (pb !== null) pb.lend(opName); // throws if in flight or released
      else if (chunk !== null) chunk.take(this.ring, opName); // throws if released or of another ring
    }
    const op = (this.#free.pop() ?? new SendOp(this)).init(opName, pb, view, off, len, addr, flags, this.#fd, to, cb, chunk);
    op.coalesce = o.coalesce;
    return op;
  }

  /**
   * The address of a view's first byte, after the ring check (every send
   * is checked; the memo holds only a buffer that passed), through the
   * memo.  Throws for pool memory of another ring and for a detached
   * ArrayBuffer.
   */
  #viewAddress(view: Uint8Array, len: number, opName: string): number {
    const ab = view === this.#memoView ? this.#memoBuffer! : view.buffer;
    if (ab === this.#memoBuffer) {
      const pool = this.#memoPool;
      if (pool !== undefined && pool.ring !== this.ring) throw wrongRing(this.ring, pool, opName);
      if (len === 0 && isDetached(ab)) throw detachedBefore(opName);
      return len === 0 ? 0 : this.#memoBase + view.byteOffset;
    }
    const pool = poolOf(ab);
    if (pool !== undefined && pool.ring !== this.ring) throw wrongRing(this.ring, pool, opName);
    if (len === 0) {
      if (isDetached(ab)) throw detachedBefore(opName);
      return 0;
    }
    const addr = addressNumber(this.ring, view);
    if (this.#fd >= 0) {
      this.#memoView = view;
      this.#memoBuffer = ab;
      this.#memoPool = pool;
      this.#memoBase = addr - view.byteOffset;
    }
    return addr;
  }

  #start(op: SendOp, to: Buffer | null): void {
    this.#inFlight++;
    // A datagram socket never coalesces, so it has no batch to keep order with.
    if (!this.stream) {
      this.ring.enqueueBatched(op);
      return;
    }
    const flags = op.flags;
    // Sends on a stream socket made in one tick leave together, like Node's
    // writev: small copying sends as one sendmsg, zero-copy sends from pool
    // buffers as one SENDMSG_ZC from registered memory.  One kernel op, one
    // notification and one record for all of them.
    if (op.coalesce && to === null && op.len > 0) {
      if (!op.wantZc && op.len <= COALESCE_MAX_SEND) {
        this.#coalescer.add(op, null, flags);
        return;
      }
      if (op.wantZc && op.pb && this.ring.sendvFixed) {
        this.#coalescer.add(op, op.pb.pool, flags);
        return;
      }
    }
    this.#coalescer.flush(); // keep stream order
    this.ring.enqueueBatched(op);
  }
}
