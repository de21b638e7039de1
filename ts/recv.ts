// SPDX-License-Identifier: MIT
/**
 * Zero-copy receive.
 *
 * A {@link Receiver} is memory registered once with a ring (the "area"),
 * in one of three modes:
 * - `zcrx`: a hardware RX queue (interface + queue) bound with
 *   IORING_REGISTER_ZCRX_IFQ; the NIC writes payloads straight into the
 *   area (needs header split + flow steering, CAP_NET_ADMIN);
 * - `zcrx-nodev`: the same interface without a NIC (ZCRX_REG_NODEV,
 *   Linux >= 7.1): the kernel copies into the area, in page-sized chunks;
 * - `bufring`: multishot recv with a provided-buffer ring whose buffers are
 *   the area (one kernel copy, no syscall per receive; any kernel >= 6.0).
 * `auto` (the default) uses `zcrx` when an interface is named and it works,
 * else `bufring`, and says why in {@link Receiver.fallback}.
 *
 * `receiver.receive(fd)` returns a {@link RecvStream}: an async iterator of
 * {@link Chunk}s, each a view into the area (no copy in JS).  A chunk is
 * yours until `release()`, which gives its memory back to the kernel,
 * or until you hand it to `socket.send(chunk)`, which gives it back once
 * the send is over; touching it afterwards throws.  Holding chunks is backpressure for that
 * stream only: a stream whose chunks held reach its quota (`recvQuota`;
 * by default the area's buffers / (streams + 1), see
 * `receiver.info().quota`) is paused, its data waiting in the socket (TCP
 * pushes back on the peer), while the other streams of the area go on;
 * libzc re-arms it once chunks come back (nothing lost, nothing
 * duplicated).  So release chunks before holding `quota` of them, or the
 * stream waits for you; size `areaSize` for the streams it serves.  The
 * stream ends at EOF,
 * throws a {@link ZcError} on reset or other errors, and ends when
 * canceled (`return()`/`break`, `cancel()`) or when the ring closes.
 */
import { z } from 'zod';
import { COMP_FLAGS, ERRNO, RING_FLAGS, RX_MODE as RX } from './ffi/abi.gen.ts';
import { PointerOut, type NativePointer } from './ffi/libzc.ts';
import { loadRecv, type LibZcRecv, type RxInfoStruct } from './ffi/recv.ts';
import { decodeStruct, encodeStruct, structBuffer } from './ffi/structs.ts';
import { memoryView } from './ffi/poll.ts';
import { ZcConfigError, ZcError, ZcOwnershipError, type ConfigIssue, type ErrorDetails } from './errors.ts';
import { MAX_VIEW } from './config.ts';
import type { BatchedOp, BatchQueue, Completion, Ring, RingRequest, RingResource } from './ring.ts';
import type { ChunkHandler } from './recv-handler.ts';
import { ChunkQueue } from './chunk-queue.ts';

/** Receive modes, fastest first. */
export const RECV_MODES = ['zcrx', 'zcrx-nodev', 'bufring'] as const;
export type RecvMode = (typeof RECV_MODES)[number];
export type RecvModePreference = 'auto' | RecvMode;

/** enum zc_rx_mode (libzc.h) by option name */
const RX_MODE = { auto: RX.AUTO, bufring: RX.BUFRING, 'zcrx-nodev': RX.ZCRX_NODEV, zcrx: RX.ZCRX } as const;
const MODE_OF: Record<number, RecvMode> = { [RX.BUFRING]: 'bufring', [RX.ZCRX_NODEV]: 'zcrx-nodev', [RX.ZCRX]: 'zcrx' };

const PAGE = 4096;
const MAX_AREA = 2 ** 40;
const MAX_ENTRIES = 32768;
const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
const int = (min: number, max: number) => z.number().int().min(min).max(max);

const ALLOWED: Record<string, string> = {
  mode: '"auto", "bufring", "zcrx-nodev" or "zcrx"',
  areaSize: `a multiple of ${PAGE} in ${PAGE}..${Math.min(MAX_AREA, MAX_VIEW)} bytes (and of bufferSize; the top is this Node's largest ArrayBuffer)`,
  bufferSize:
    `bufring: a multiple of ${PAGE} up to 1 GiB (default 65536), at most ${MAX_ENTRIES} buffers per area;` +
    ` zcrx: a power of two >= ${PAGE} (rx_buf_len); zcrx-nodev: ${PAGE} only`,
  ringEntries: `a power of two in 1..${MAX_ENTRIES} (bufring: >= areaSize / bufferSize)`,
  ifname: 'an interface name of 1..15 characters without "/", ":" or spaces (zcrx)',
  rxQueue: 'an integer in 0..65535 (zcrx: the RX queue flows are steered to)',
  recvQuota: 'an integer in 1..4294967295 (chunks one stream may hold before it is paused; default: a fair share)',
};

/** Receive options (all optional); see {@link Receiver.create}. */
export const ReceiveOptionsSchema = z
  .object({
    /** 'auto' (default): zcrx when `ifname` is given and usable, else bufring. */
    mode: z.enum(['auto', 'bufring', 'zcrx-nodev', 'zcrx']).default('auto'),
    /** Bytes of registered memory (all chunks live in it). Default 16 MiB. */
    areaSize: int(PAGE, MAX_AREA)
      .refine((n) => n % PAGE === 0)
      .default(16 * 1024 * 1024),
    /** Largest chunk: bufring buffer size (default 64 KiB), zcrx rx_buf_len (default page). */
    bufferSize: int(PAGE, 1 << 30)
      .refine((n) => n % PAGE === 0)
      .optional(),
    /** Buffer ring / refill ring entries (default: one per buffer). */
    ringEntries: int(1, MAX_ENTRIES).refine(isPow2).optional(),
    /** zcrx: network interface whose RX queue is bound. */
    ifname: z
      .string()
      .min(1)
      .max(15)
      .regex(/^[^\s/:]+$/)
      .optional(),
    /** zcrx: RX queue index. */
    rxQueue: int(0, 65535).default(0),
    /**
     * Chunks one stream may hold (not yet released) before its receive is
     * paused, so a slow reader stalls its own socket only and never the
     * others sharing the area.  Default: a fair share, the area's buffers
     * divided by the streams receiving into it (at least 2).  Part of the
     * options that pick the ring's shared receiver.
     */
    recvQuota: int(1, 0xffffffff).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const buf = o.bufferSize ?? (o.mode === 'bufring' || o.mode === 'auto' ? 65536 : PAGE);
    if (o.areaSize % buf !== 0 || o.areaSize < buf) {
      ctx.addIssue({ code: 'custom', path: ['areaSize'], message: 'areaSize not a multiple of bufferSize' });
    }
    if (o.mode === 'zcrx' && o.ifname === undefined) {
      ctx.addIssue({ code: 'custom', path: ['ifname'], message: 'mode "zcrx" needs an interface' });
    }
    if (o.mode === 'zcrx-nodev' && o.ifname !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ifname'], message: 'zcrx-nodev binds no interface' });
    }
    if (o.mode === 'zcrx-nodev' && o.bufferSize !== undefined && o.bufferSize !== PAGE) {
      ctx.addIssue({ code: 'custom', path: ['bufferSize'], message: 'zcrx-nodev takes page-sized buffers only' });
    }
    if (o.mode === 'zcrx' && o.bufferSize !== undefined && !isPow2(o.bufferSize)) {
      ctx.addIssue({ code: 'custom', path: ['bufferSize'], message: 'rx_buf_len must be a power of two' });
    }
    if (o.areaSize > MAX_VIEW) {
      ctx.addIssue({ code: 'custom', path: ['areaSize'], message: `above ${MAX_VIEW} bytes, the largest ArrayBuffer of this Node` });
    }
    if ((o.mode === 'bufring' || o.mode === 'auto') && o.areaSize / buf > MAX_ENTRIES) {
      ctx.addIssue({ code: 'custom', path: ['areaSize'], message: `more than ${MAX_ENTRIES} buffers` });
    }
    if (o.mode === 'bufring' && o.ringEntries !== undefined && o.ringEntries < o.areaSize / buf) {
      ctx.addIssue({ code: 'custom', path: ['ringEntries'], message: 'fewer entries than buffers' });
    }
  });

export type ReceiveOptionsInput = z.input<typeof ReceiveOptionsSchema>;
export type ReceiveOptions = z.output<typeof ReceiveOptionsSchema>;

/** libzc refused a batched chunk release: thrown from a microtask of its own (a bug in the library, not the caller's). */
function releaseRefused(rc: number): void {
  queueMicrotask(() => {
    throw new ZcError({ errno: rc, op: 'recv.release', hint: 'libzc refused a chunk release (internal error)' });
  });
}

function valueAt(input: unknown, key: PropertyKey | undefined): unknown {
  if (key === undefined || input === null || typeof input !== 'object') return undefined;
  return (input as Record<PropertyKey, unknown>)[key];
}

/** Validate receive options and fill defaults; throws ZcConfigError naming the field. */
export function parseReceiveOptions(input?: ReceiveOptionsInput): ReceiveOptions {
  const r = ReceiveOptionsSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues: ConfigIssue[] = [];
  for (const i of r.error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) {
        issues.push({ field: k, value: valueAt(input, k), allowed: `no such option (known: ${Object.keys(ALLOWED).join(', ')})` });
      }
      continue;
    }
    const field = i.path.length ? i.path.map(String).join('.') : '(root)';
    const allowed = ALLOWED[field] ?? 'an options object or undefined';
    issues.push({
      field,
      value: i.path.length ? valueAt(input, i.path[0]) : input,
      allowed: i.code === 'custom' ? `${allowed} (${i.message})` : allowed,
    });
  }
  throw new ZcConfigError('ReceiveOptions', issues);
}

/** Facts the receive hints (errors.ts) are built from. */
function rxDetails(mode: RecvMode, o: ReceiveOptions): ErrorDetails {
  return { mode, areaSize: o.areaSize, ifname: o.ifname ?? null, rxQueue: o.rxQueue };
}

/** Counters and geometry of a receiver (struct zc_rx_info). */
export interface ReceiverInfo {
  mode: RecvMode;
  bufferSize: number;
  bufferCount: number;
  ringEntries: number;
  areaSize: number;
  /** chunks handed out and not yet released */
  held: number;
  /** streams receiving into this area */
  active: number;
  /** chunks one stream may hold now before it is paused (recvQuota, or the fair share) */
  quota: number;
  /** streams paused now because they hold their quota */
  paused: number;
  /** times a stream was paused for its quota */
  pauses: number;
  bytes: number;
  chunks: number;
  /** receives re-armed after the area ran dry or a pause (backpressure events) */
  rearms: number;
  /** zcrx refill-ring flushes */
  flushes: number;
}

/**
 * Registered receive memory shared by any number of streams.  Create with
 * {@link Receiver.create}; closed by `close()` or with its ring.
 */
export class Receiver implements RingResource {
  readonly ring: Ring;
  readonly options: ReceiveOptions;
  /** mode in use */
  readonly mode: RecvMode;
  /** bytes per buffer: the largest chunk */
  readonly bufferSize: number;
  readonly areaSize: number;
  /** mode 'auto' with an interface: why zcrx was not used (null if it was or was not tried) */
  readonly fallback: ZcError | null;

  #lib: LibZcRecv;
  #ptr: NativePointer | null;
  /** the area as one Buffer: chunks' views are its subarrays */
  #areaBuf: Buffer;
  /** the address of the area's first byte (a send of a chunk describes its bytes by address) */
  #base = 0;
  /** offsets to release (uint64 each, written as two 32-bit words: no BigInt) */
  #rel: BigUint64Array = new BigUint64Array(256);
  #rel32 = new Uint32Array(this.#rel.buffer);
  #nrel = 0;
  #flushScheduled = false;
  #streams = new Set<RecvStream>();
  #closing = false;
  #closed = false;
  #closedPromise: Promise<void> | null = null;
  #onClosed: (() => void) | null = null;
  /** bumped when chunks are invalidated wholesale */
  #epoch = 0;

  private constructor(ring: Ring, lib: LibZcRecv, ptr: NativePointer, options: ReceiveOptions, info: RxInfoStruct) {
    this.ring = ring;
    this.options = options;
    this.#lib = lib;
    this.#ptr = ptr;
    this.mode = MODE_OF[info.mode] ?? 'bufring';
    this.bufferSize = info.buf_size;
    this.areaSize = Number(info.area_size);
    this.fallback =
      info.zcrx_errno > 0
        ? new ZcError({ errno: info.zcrx_errno, op: 'recv.zcrx', details: rxDetails('zcrx', options) })
        : null;
    try {
      const base = BigInt(lib.zc_rx_base(ptr));
      if (!base) throw new ZcError({ errno: ERRNO.EFAULT, op: 'recv.create', hint: 'zc_rx_base returned NULL' });
      this.#areaBuf = Buffer.from(memoryView(base, this.areaSize));
      this.#base = Number(base);
      ring.track(this);
    } catch (e) {
      // Created but not handed out: unregister it now, not with the ring
      // (a zcrx area stays registered until the ring closes: the kernel
      // cannot unregister one).
      this.#ptr = null;
      this.#closed = true;
      ring.untrack(this);
      lib.zc_rx_destroy(ptr);
      throw e;
    }
  }

  /**
   * Register a receive area on `ring`.  Throws ZcConfigError for bad
   * options and ZcError (op `recv.create`) with a hint when the kernel
   * refuses (permissions, kernel version, NIC setup, ring flags).
   * Whatever throws, nothing stays registered with the ring.
   */
  static create(ring: Ring, options?: ReceiveOptionsInput): Receiver {
    const o = parseReceiveOptions(options);
    const lib = loadRecv();
    const wanted: RecvMode = o.mode === 'auto' ? 'bufring' : o.mode;
    if (o.mode === 'zcrx' || o.mode === 'zcrx-nodev') {
      const f = ring.options as { deferTaskrun: boolean; cqe32?: boolean };
      if (!f.deferTaskrun || !(f.cqe32 ?? false)) {
        throw new ZcError({ errno: ERRNO.EINVAL, op: 'recv.create', details: rxDetails(o.mode, o) });
      }
    }
    const cfg = {
      mode: RX_MODE[o.mode],
      buf_size: o.bufferSize ?? 0,
      area_size: o.areaSize,
      ring_entries: o.ringEntries ?? 0,
      rxq: o.rxQueue,
      ifname: o.ifname ?? '',
      recv_quota: o.recvQuota ?? 0,
    };
    const pout = new PointerOut('zc_rx');
    const rc = lib.zc_rx_create(ring.ptr, encodeStruct('zc_rx_config', cfg), pout.bytes);
    const out = [pout.get()] as const;
    if (rc < 0 || out[0] === null) {
      const errno = rc < 0 ? -rc : ERRNO.EIO;
      throw new ZcError({ errno, op: 'recv.create', details: rxDetails(o.mode === 'auto' ? wanted : o.mode, o) });
    }
    const info = Receiver.#infoOf(lib, out[0]);
    return new Receiver(ring, lib, out[0], o, info);
  }

  static #infoOf(lib: LibZcRecv, ptr: NativePointer): RxInfoStruct {
    const b = structBuffer('zc_rx_info');
    lib.zc_rx_info(ptr, b);
    return decodeStruct('zc_rx_info', b) as unknown as RxInfoStruct;
  }

  /** true once closed (or its ring closed) */
  get closed(): boolean {
    return this.#closed;
  }

  /** Geometry and counters. */
  info(): ReceiverInfo {
    if (!this.#ptr) throw new ZcError({ errno: ERRNO.EBADF, op: 'recv.info', hint: 'the receiver is closed' });
    const i = Receiver.#infoOf(this.#lib, this.#ptr);
    return {
      mode: this.mode,
      bufferSize: i.buf_size,
      bufferCount: i.buf_count,
      ringEntries: i.ring_entries,
      areaSize: Number(i.area_size),
      held: i.held - this.#nrel,
      active: i.active,
      quota: i.quota,
      paused: i.paused,
      pauses: Number(i.pauses),
      bytes: Number(i.bytes),
      chunks: Number(i.chunks),
      rearms: Number(i.rearms),
      flushes: Number(i.flushes),
    };
  }

  /**
   * Start receiving on a connected stream socket.  One stream per socket
   * at a time.  zcrx modes take TCP only: other sockets throw
   * EPROTONOSUPPORT (the module-level {@link receive} falls back instead).
   */
  receive(fd: number): RecvStream {
    if (this.#closing || this.#closed || !this.#ptr) {
      throw new ZcError({ errno: ERRNO.EBADF, op: 'recv', hint: 'the receiver is closed' });
    }
    if (!Number.isInteger(fd) || fd < 0) {
      throw new ZcConfigError('receive', [{ field: 'fd', value: fd, allowed: 'an open socket file descriptor' }]);
    }
    for (const s of this.#streams) {
      // A stream whose socket is closing no longer owns the number: once
      // closed, it may name a new socket before that stream's last record.
      if (s.fd === fd && !s.fdReleased) {
        throw new ZcError({ errno: ERRNO.EBUSY, op: 'recv', hint: `fd ${fd} is already receiving` });
      }
    }
    const s = new RecvStream(this, fd, RecvStream.token);
    // A receive the ring refused at once (closed, or its standing limit)
    // has ended already: it must not keep the fd marked as receiving.
    if (!s.nativeDone) this.#streams.add(s);
    return s;
  }

  /** @internal */
  get ptr(): NativePointer {
    if (!this.#ptr) throw new ZcError({ errno: ERRNO.EBADF, op: 'recv', hint: 'the receiver is closed' });
    return this.#ptr;
  }

  /** @internal */
  get lib(): LibZcRecv {
    return this.#lib;
  }

  /** @internal */
  get epoch(): number {
    return this.#epoch;
  }

  /** @internal the address of the area's first byte, as a number (user-space addresses fit in 53 bits) */
  get base(): number {
    return this.#base;
  }

  /**
   * @internal a view of len bytes at off of the area: a subarray of the
   * area's Buffer (a Buffer of the same shape; Buffer.from(area, off, len)
   * costs ~4x more per chunk: docs/PERFORMANCE.md, Session 18, rr1000)
   */
  viewOf(off: number, len: number): Buffer {
    return this.#areaBuf.subarray(off, off + len);
  }

  /** @internal give a chunk back (batched: one FFI call per tick) */
  release(off: number): void {
    if (this.#nrel === this.#rel.length) {
      const n = new BigUint64Array(this.#rel.length * 2);
      n.set(this.#rel);
      this.#rel = n;
      this.#rel32 = new Uint32Array(n.buffer);
    }
    const i = 2 * this.#nrel++;
    const lo = off % 2 ** 32;
    this.#rel32[i] = lo;
    this.#rel32[i + 1] = (off - lo) / 2 ** 32;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Given back with the ring's flush of this tick, in its one FFI call.
      this.ring.beforeFlush(this.#releaseHook, true);
    }
  }

  readonly #releaseHook = (): void => {
    this.#flushScheduled = false;
    if (this.#nrel > 0) this.ring.enqueueBatchedOp(this.#releaseOp);
  };

  /** The tick's releases as one RX_RELEASE descriptor of the ring's batch. */
  readonly #releaseOp: BatchedOp = {
    describe: (q: BatchQueue): boolean => {
      const n = this.#nrel;
      if (q.full || !this.#ptr || n === 0) return false;
      const at = q.reserve(n * 8);
      if (at < 0) return false;
      q.words(at, this.#rel32, 2 * n);
      q.rxRelease((this.#ptrNum ??= Number(this.ring.libc.address(this.#ptr))), at, n);
      this.#nrel = 0;
      return true;
    },
    result: (rc: number): void => {
      // Chunks are checked in JS first: this is a bug, not a user error.
      // (No arrow here that reads rc: V8 would make its context on every
      // call, one young object per flush.)
      if (rc < 0) releaseRefused(rc);
    },
    direct: (): void => this.flushReleases(),
  };
  #ptrNum: number | undefined;

  /** Hand released chunks to the kernel now (normally automatic, once per tick). */
  flushReleases(): void {
    this.#flushScheduled = false;
    const n = this.#nrel;
    if (n === 0 || !this.#ptr) {
      this.#nrel = 0;
      return;
    }
    this.#nrel = 0;
    const rc = this.#lib.zc_rx_release_many(this.#ptr, this.#rel, n);
    if (rc < 0) {
      // Chunks are checked in JS first: this is a bug, not a user error.
      throw new ZcError({ errno: rc, op: 'recv.release', hint: 'libzc refused a chunk release (internal error)' });
    }
  }

  /** @internal a stream's native request ended */
  streamEnded(s: RecvStream): void {
    this.#streams.delete(s);
    if (this.#closing && this.#streams.size === 0) this.#destroyNative();
  }

  /**
   * Close: cancel every stream on it (they end as done), then unregister
   * the area once their receives finished.  Chunks still held are
   * invalidated (their `data` throws; old views read zeros).  Resolves
   * once the area is unregistered.  Idempotent (the same Promise).
   */
  close(): Promise<void> {
    if (this.#closedPromise) return this.#closedPromise;
    this.#closedPromise = new Promise<void>((resolve) => (this.#onClosed = resolve));
    if (this.#closed) {
      this.#onClosed?.();
      return this.#closedPromise;
    }
    this.#closing = true;
    if (this.#streams.size === 0) this.#destroyNative();
    else for (const s of [...this.#streams]) s.cancel();
    return this.#closedPromise;
  }

  #destroyNative(): void {
    if (this.#closed) return;
    if (this.#ptr && this.#nrel) this.flushReleases();
    this.#closed = true;
    this.#epoch++;
    if (this.#ptr) {
      this.#lib.zc_rx_destroy(this.#ptr);
      this.#ptr = null;
    }
    this.ring.untrack(this);
    this.#onClosed?.();
  }

  /** @internal Ring.close(): every request has settled; libzc frees the area. */
  destroyFromRing(): void {
    this.#closing = true;
    this.#closed = true;
    this.#epoch++;
    this.#nrel = 0;
    this.#ptr = null;
    for (const s of [...this.#streams]) s.abandon();
    this.#streams.clear();
    this.#onClosed?.();
  }

  /** `using rx = ...`: starts close() (await it with `await using`). */
  [Symbol.dispose](): void {
    void this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * What a socket's `receive()` yields, on either backend: a {@link Chunk} of
 * registered memory over io_uring, a Buffer node:net read on the 'net'
 * backend.  `data` throws after `release()`.
 */
export interface ReceivedChunk {
  readonly length: number;
  /** offset of its first byte in the stream */
  readonly streamOffset: number;
  readonly released: boolean;
  readonly data: Buffer;
  /** a copy that outlives release() */
  copy(): Buffer;
  /** give the memory back (throws if already released) */
  release(): void;
  [Symbol.dispose](): void;
}

/** What `socket.receive()` returns: the chunks of one socket, in order (see {@link RecvStream}). */
export interface ChunkStream extends AsyncIterableIterator<ReceivedChunk> {
  /** the receive mode, or 'net' on the node:net backend */
  readonly mode: RecvMode | 'net';
  /** why the preferred receive mode was not used for this socket (null: it was, or the 'net' backend) */
  readonly fallback: ZcError | null;
  /** bytes and chunks delivered so far */
  readonly bytes: number;
  readonly chunks: number;
  /** chunks received and not yet taken by next() */
  readonly queued: number;
  /** true once the stream ended and every chunk was taken */
  readonly done: boolean;
  /** resolves once the underlying receive has finished (after the end or a cancel) */
  readonly finished: Promise<void>;
  /** stop receiving: queued chunks are released, the iterator ends (a handler's end(null) is called) */
  cancel(): void;
  /**
   * The callback form: hand every chunk to `handler.chunk()` as it arrives
   * (those already queued first, from a microtask), then call
   * `handler.end()` once, instead of through next() (which rejects with
   * EBUSY from then on).  No Promise or microtask per chunk: the form for
   * servers that receive millions of messages.  Throws EBUSY if called
   * twice or while a next() is pending, TypeError for a bad handler.
   * `socket.receive(options, handler)` is `socket.receive(options).consume(handler)`.
   */
  consume(handler: ChunkHandler<ReceivedChunk>): void;
  /**
   * After the handler's chunk() returned false: hand chunks over again
   * (from a microtask).  A no-op when not paused.
   */
  resume(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Why a chunk handed to send() can no longer be used. */
const HANDED = 'the chunk was handed to send(): its memory goes back to the kernel once the send completed';

/**
 * One received chunk: `data` is a view into the registered area (no copy),
 * valid until `release()`.  Release every chunk (or use `using`): held
 * chunks keep the kernel from receiving more into their memory.  Or hand
 * it to `socket.send(chunk)`, which releases it once the send completed.
 */
export class Chunk implements ReceivedChunk {
  /** bytes in the chunk */
  readonly length: number;
  /** offset of its first byte in the stream */
  readonly streamOffset: number;
  #rx: Receiver;
  #off: number;
  #epoch: number;
  #released = false;
  /** taken by a send: released by the library once the send completed (see take/sent) */
  #handed = false;
  /** the send that took it is over (sent() ran) */
  #sent = false;
  #view: Buffer | null = null;

  /** @internal */
  constructor(rx: Receiver, off: number, length: number, streamOffset: number) {
    this.#rx = rx;
    this.#off = off;
    this.length = length;
    this.streamOffset = streamOffset;
    this.#epoch = rx.epoch;
  }

  /** true after release() or send(chunk) (or once its receiver/ring closed) */
  get released(): boolean {
    return this.#released || this.#epoch !== this.#rx.epoch;
  }

  /** The bytes, as a Buffer over the registered memory.  Throws after release. */
  get data(): Buffer {
    if (this.released) throw this.#gone('chunk.data');
    return (this.#view ??= this.#rx.viewOf(this.#off, this.length));
  }

  /** A copy of the bytes that outlives release().  Leaves no view of the memory behind. */
  copy(): Buffer {
    if (this.released) throw this.#gone('chunk.data');
    return Buffer.from(this.#view ?? this.#rx.viewOf(this.#off, this.length));
  }

  /** Give the memory back to the kernel.  Throws if already released (or handed to send()). */
  release(): void {
    if (this.released) {
      throw new ZcOwnershipError('chunk.release', this.#handed ? HANDED : 'the chunk was already released');
    }
    this.#released = true;
    this.#rx.release(this.#off);
  }

  #gone(op: string): ZcOwnershipError {
    return new ZcOwnershipError(op, this.#handed ? HANDED : 'the chunk was released (its memory belongs to the kernel again)');
  }

  /** Releases the chunk unless it already was (or was handed to send()). */
  [Symbol.dispose](): void {
    if (!this.released) this.release();
  }

  /**
   * @internal Its handler threw: released unless it already was or `data`
   * was read (a view of the memory went somewhere that may still read it).
   */
  handlerThrew(): void {
    if (this.#view === null && !this.released) this.release();
  }

  /**
   * @internal send(chunk) takes the chunk: from now on it counts as
   * released to the caller, and {@link sent} gives the memory back.
   * Throws ZcOwnershipError (nothing changed) when it is released already
   * or its area is not on `ring` (null: a socket with no ring).
   */
  take(ring: Ring | null, op: string): void {
    if (this.released) throw this.#gone(op);
    const own = this.#rx.ring;
    if (ring !== own) {
      throw new ZcOwnershipError(
        op,
        `this chunk lies in a receive area of ring #${own.id}, ` +
          (ring === null ? "the socket has no ring ('net' backend)" : `the socket is on ring #${ring.id}`) +
          ': send a chunk on a socket of its own ring, or send chunk.data and release the chunk once that send settled',
      );
    }
    this.#released = true;
    this.#handed = true;
  }

  /** @internal the address of the chunk's first byte (for the send that took it) */
  get address(): number {
    return this.#rx.base + this.#off;
  }

  /**
   * @internal The send that took the chunk is over (whatever its outcome):
   * the memory goes back to the kernel, once, unless the receiver closed
   * meanwhile (its memory is gone with it then).
   */
  sent(): void {
    if (!this.#handed || this.#sent) return;
    this.#sent = true;
    if (this.#epoch === this.#rx.epoch) this.#rx.release(this.#off);
  }
}

/**
 * The multishot receive of one stream as the ring sees it.  A class, its
 * methods on the prototype: with the sends' SendOp the ring's dispatch
 * sees two maps whose `done` is a constant, which V8 inlines (an object
 * literal's per-stream arrows made that call megamorphic, a generic call
 * per record: docs/PERFORMANCE.md, Session 18, rr1000).
 */
class RecvRequest implements RingRequest {
  readonly opName = 'recv';
  readonly standing = true;
  readonly #stream: RecvStream;

  constructor(stream: RecvStream) {
    this.#stream = stream;
  }

  issue(userData: number): number {
    const s = this.#stream;
    const rx = s.receiver;
    const rc = rx.lib.zc_recv(rx.ring.ptr, rx.ptr, s.fd, userData);
    if (rc >= 0) rx.ring.doorbell(s.fd);
    return rc;
  }

  done(c: Completion): void {
    this.#stream.record(c);
  }

  fail(err: ZcError): void {
    this.#stream.refused(err);
  }
}

/**
 * The chunks of one socket, in order.  `for await (const c of stream)`;
 * `break` (or `return()`) cancels the receive and releases queued chunks.
 * The queue, next(), consume() and the end are {@link ChunkQueue}'s.
 */
export class RecvStream extends ChunkQueue<Chunk> implements ChunkStream {
  /** @internal */
  static readonly token = Symbol('RecvStream');
  readonly receiver: Receiver;
  readonly fd: number;
  /** mode this socket receives with */
  readonly mode: RecvMode;
  /** set by the module-level receive(): why the preferred mode was not used for this socket */
  fallback: ZcError | null = null;

  #canceled = false;
  #nativeDone = false;
  #fdReleased = false;
  #req: RingRequest;

  /** @internal handOver: a handler threw holding `c` (see Chunk.handlerThrew) */
  chunkThrew(c: Chunk): void {
    c.handlerThrew();
  }

  /** @internal use Receiver.receive() */
  constructor(receiver: Receiver, fd: number, token: symbol) {
    super();
    if (token !== RecvStream.token) throw new TypeError('use Receiver.receive()');
    this.receiver = receiver;
    this.fd = fd;
    this.mode = receiver.mode;
    const req = new RecvRequest(this);
    this.#req = req;
    receiver.ring.enqueue(req);
  }

  /** @internal the receive's record (RecvRequest.done) */
  record(c: Completion): void {
    this.#onRecord(c);
  }

  /** @internal the receive failed before any record (RecvRequest.fail) */
  refused(err: ZcError): void {
    this.#onFinal(err.errno === ERRNO.ECANCELED && this.#canceled ? null : err);
  }

  /**
   * @internal The socket's owner is closing the fd (after cancel()): the
   * number may soon name another socket, which may receive at once.
   */
  releaseFd(): void {
    this.#fdReleased = true;
    this.receiver.ring.bellOff(this.fd);
  }

  /** @internal see releaseFd() */
  get fdReleased(): boolean {
    return this.#fdReleased;
  }

  /** @internal the kernel-side receive has ended (its last record came, or it was refused) */
  get nativeDone(): boolean {
    return this.#nativeDone;
  }

  #onRecord(c: Completion): void {
    if (c.flags & COMP_FLAGS.MORE) {
      const chunk = new Chunk(this.receiver, c.auxNumber, c.res, this.bytes);
      this.bytes += c.res;
      this.chunks++;
      if (this.#canceled) {
        chunk.release();
        return;
      }
      this.deliver(chunk);
      return;
    }
    let end: ZcError | null = null;
    if (c.res < 0 && !(c.res === -ERRNO.ECANCELED && this.#canceled)) {
      end = new ZcError({ errno: c.res, op: 'recv', details: { fd: this.fd, bytes: this.bytes } });
    }
    this.#onFinal(end);
  }

  #onFinal(end: ZcError | null): void {
    if (this.#nativeDone) return;
    this.#nativeDone = true;
    // canceled: cancel() did (a receive of the fd started since keeps its own)
    if (!this.#canceled) this.receiver.ring.bellOff(this.fd);
    this.setEnd(end);
    this.receiver.streamEnded(this);
    this.resolveFinished();
    this.wakeEnd();
  }

  /**
   * @internal Whether this receive keeps the process alive while it waits
   * for data (default true; an unref'd socket's receive does not).
   */
  setRef(ref: boolean): void {
    if (!this.#nativeDone) this.receiver.ring.refRequest(this.#req, ref);
  }

  /** Stop receiving: queued chunks are released, the iterator ends. */
  cancel(): void {
    if (this.#canceled) return;
    this.#canceled = true;
    // the doorbell leaves the fd now: its owner may close it before the last record
    if (!this.#nativeDone) this.receiver.ring.bellOff(this.fd);
    this.dropQueued();
    this.setEnd(null);
    if (!this.#nativeDone && !this.receiver.closed) {
      const rc = this.receiver.lib.zc_recv_cancel(this.receiver.ring.ptr, this.fd);
      // -ENOENT: not issued yet (JS backlog) or already over: the record ends it.
      if (rc < 0 && rc !== -ERRNO.ENOENT) {
        this.#onFinal(null);
      }
    }
    this.wakeEnd();
  }

  /** @internal ring closed: no more records will come */
  abandon(): void {
    if (!this.#nativeDone && !this.#canceled) this.receiver.ring.bellOff(this.fd);
    this.clearQueued();
    this.setEnd(this.#canceled ? null : new ZcError({ errno: ERRNO.ECANCELED, op: 'recv', hint: 'the ring was closed' }));
    this.#nativeDone = true;
    this.resolveFinished();
    this.wakeEnd();
  }
}

const shared = new WeakMap<Ring, Map<string, Receiver>>();

/** The ring's shared receiver for these options (created on first use). */
export function sharedReceiver(ring: Ring, options?: ReceiveOptionsInput): Receiver {
  const o = parseReceiveOptions(options);
  const key = JSON.stringify(o);
  let m = shared.get(ring);
  if (!m) {
    m = new Map();
    shared.set(ring, m);
  }
  const cur = m.get(key);
  if (cur && !cur.closed) return cur;
  const rx = Receiver.create(ring, o);
  m.set(key, rx);
  return rx;
}

/**
 * Receive on `fd` through the ring's shared receiver for `options`,
 * choosing the mode per socket: a zcrx receiver takes TCP only, so other
 * stream sockets fall back to bufring (reported in `stream.fallback`).
 */
export function receive(ring: Ring, fd: number, options?: ReceiveOptionsInput): RecvStream {
  const o = parseReceiveOptions(options);
  let rx = sharedReceiver(ring, o);
  let fallback = rx.fallback;
  if (rx.mode !== 'bufring' && o.mode === 'auto' && !isTcp(ring, fd)) {
    fallback = new ZcError({ errno: ERRNO.EPROTONOSUPPORT, op: 'recv.zcrx', hint: 'zcrx receives TCP only' });
    rx = sharedReceiver(ring, { ...o, mode: 'bufring', ifname: undefined, bufferSize: undefined });
  }
  const s = rx.receive(fd);
  s.fallback = fallback;
  return s;
}

function isTcp(ring: Ring, fd: number): boolean {
  const c = ring.libc;
  const v = new Int32Array(1);
  const len = new Int32Array([4]);
  // SOL_SOCKET = 1, SO_PROTOCOL = 38; IPPROTO_TCP = 6
  if (c.getsockopt(fd, 1, 38, v, len) < 0) return false;
  return v[0] === 6;
}

/** Receive modes the running kernel offers, with the reason for each one missing. */
export function availableRecvModes(caps: { RECV_ZC: boolean; ZCRX_NODEV: boolean; BUFRING: boolean; RECV_MULTISHOT: boolean }): {
  mode: RecvMode;
  available: boolean;
  reason: string;
}[] {
  return [
    {
      mode: 'zcrx',
      available: caps.RECV_ZC,
      reason: caps.RECV_ZC
        ? 'kernel has IORING_OP_RECV_ZC; needs a NIC queue with header split + flow steering, and CAP_NET_ADMIN'
        : 'kernel without IORING_OP_RECV_ZC (needs >= 6.15)',
    },
    {
      mode: 'zcrx-nodev',
      available: caps.ZCRX_NODEV,
      reason: caps.ZCRX_NODEV
        ? 'ZCRX_REG_NODEV registration works (kernel copies into the area)'
        : 'ZCRX_REG_NODEV refused (needs Linux >= 7.1 and CAP_NET_ADMIN)',
    },
    {
      mode: 'bufring',
      available: caps.BUFRING && caps.RECV_MULTISHOT,
      reason: caps.BUFRING && caps.RECV_MULTISHOT
        ? 'multishot recv with provided-buffer rings'
        : 'kernel without provided-buffer rings / multishot recv (needs >= 6.0)',
    },
  ];
}

/** @internal used by tests: the flag zcrx rings need */
export const ZCRX_RING_FLAGS = RING_FLAGS.DEFER_TASKRUN | RING_FLAGS.CQE32;
