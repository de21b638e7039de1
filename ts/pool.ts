// SPDX-License-Identifier: MIT
/**
 * {@link BufferPool}: N page-aligned buffers of S bytes registered with a
 * ring as fixed buffers (pinned once, at creation), handed out as
 * {@link PoolBuffer}s.
 *
 * Ownership (as in tokio-uring): a PoolBuffer passed to `ZcSocket.send()`
 * belongs to the kernel until that send's Promise settles.  Meanwhile
 * `bytes`, `write()`, `release()` and another send of it throw
 * {@link ZcOwnershipError} at once.  A Uint8Array obtained from `bytes`
 * before the send is the caller's to leave alone; the library cannot see
 * writes through it.  Once the pool is closed (or its ring), views kept
 * from `bytes` read zeros and writes to them go nowhere (private zero
 * pages stand where the pool was until the last view is garbage
 * collected), never a crash.
 * A pool's memory can only be sent on its own ring.
 */
import { ERRNO, POOL_FLAGS } from './ffi/abi.gen.ts';
import { PointerOut, type NativePointer } from './ffi/libzc.ts';
import { encodeStruct } from './ffi/structs.ts';
import { memoryView } from './ffi/poll.ts';
import { MAX_BUFFER_SIZE, parseBufferPoolOptions, type BufferPoolOptions, type BufferPoolOptionsInput } from './config.ts';
import { ZcError, ZcOwnershipError, type ErrorDetails } from './errors.ts';
import { probe } from './probe.ts';
import type { Ring, RingResource } from './ring.ts';
import type { PoolSend } from './socket/pool-send.ts';

/** RLIMIT_MEMLOCK now, for the ENOMEM hint (null: unlimited or unknown). */
function memlock(): { memlockCurrent: number | null; memlockMax: number | null } {
  try {
    const p = probe();
    return { memlockCurrent: p.memlock.current, memlockMax: p.memlock.max };
  } catch {
    return { memlockCurrent: null, memlockMax: null };
  }
}

/** Address range of a retired pool, unmapped once its last view is gone. */
interface Retired {
  addr: bigint;
  len: number;
  /** libzc left zero pages there (pool destroyed): ours to unmap */
  retired: boolean;
  unmap: (addr: bigint, len: number) => number;
}
const retiredRanges = new FinalizationRegistry<Retired>((r) => {
  if (r.retired) r.unmap(r.addr, r.len);
});

/** The pool whose memory an ArrayBuffer is (views from `PoolBuffer.bytes`). */
const poolOfMemory = new WeakMap<ArrayBufferLike, BufferPool>();

/** @internal the pool an ArrayBuffer is the memory of, if any */
export function poolOf(buffer: ArrayBufferLike): BufferPool | undefined {
  return poolOfMemory.get(buffer);
}

/** A pool of registered buffers. Create with {@link BufferPool.create} or `ring.createPool()`. */
export class BufferPool implements RingResource {
  /** @internal */
  readonly isPool = true;
  readonly ring: Ring;
  readonly options: BufferPoolOptions;
  /** number of buffers */
  readonly count: number;
  /** bytes per buffer */
  readonly size: number;
  #ptr: NativePointer | null;
  #memory: ArrayBuffer;
  /** @internal address of buffer 0 */
  readonly baseAddress: bigint;
  /** @internal buffers per registered region (one fixed-buffer slot each) */
  readonly regionBuffers: number;
  /** @internal the struct zc_pool * and buffer 0's address as numbers (batch descriptors) */
  readonly ptrAddress: number;
  /** @internal ptrAddress's low and high 32 bits (a fixed send's descriptor, no division per send) */
  readonly ptrLo: number;
  readonly ptrHi: number;
  /** @internal */
  readonly baseNumber: number;
  #free: number[];
  #buffers: (PoolBuffer | null)[];
  #closed = false;
  #closing: Promise<void> | null = null;
  #closedWaiter: (() => void) | null = null;
  #retry: NodeJS.Timeout | null = null;
  readonly #range: Retired;

  private constructor(ring: Ring, ptr: NativePointer, options: BufferPoolOptions) {
    this.ring = ring;
    this.options = options;
    this.count = options.count;
    this.size = options.size;
    this.#ptr = ptr;
    const base = BigInt(ring.zc.zc_pool_base(ptr));
    let range: Retired | null = null;
    try {
      if (!base) throw new ZcError({ errno: ERRNO.EFAULT, op: 'pool.create', hint: 'zc_pool_base returned NULL' });
      this.#memory = memoryView(base, this.count * this.size);
      range = { addr: base, len: this.count * this.size, retired: false, unmap: ring.libc.munmap };
      retiredRanges.register(this.#memory, range);
      this.#range = range;
      this.baseAddress = base;
      this.baseNumber = Number(this.baseAddress);
      this.ptrAddress = Number(ring.libc.address(ptr));
      this.ptrHi = Math.floor(this.ptrAddress / 2 ** 32);
      this.ptrLo = this.ptrAddress - this.ptrHi * 2 ** 32;
      poolOfMemory.set(this.#memory, this);
      this.regionBuffers = ring.zc.zc_pool_region_buffers(ptr);
      this.#free = [];
      for (let i = this.count - 1; i >= 0; i--) this.#free.push(i);
      this.#buffers = new Array<PoolBuffer | null>(this.count).fill(null);
      ring.track(this);
    } catch (e) {
      // Created but not handed out: unregister (unpin) it now, not with the
      // ring.  libzc leaves zero pages where it was (RETIRE): they go with
      // the view if one was made, else at once.
      this.#ptr = null;
      this.#closed = true;
      ring.untrack(this);
      ring.zc.zc_pool_destroy(ptr);
      if (range) range.retired = true;
      else if (base) ring.libc.munmap(base, this.count * this.size);
      throw e;
    }
  }

  /**
   * Map and register `count` buffers of `size` bytes (pinned once).
   * Throws ZcConfigError for bad options, ZcError `ENOMEM` with the
   * RLIMIT_MEMLOCK numbers when pinning is refused, `ENOSPC` when the ring
   * has no free fixed-buffer slots left.  Whatever throws, nothing stays
   * registered, pinned or mapped.
   */
  static create(ring: Ring, options?: BufferPoolOptionsInput): BufferPool {
    const o = parseBufferPoolOptions(options);
    // RETIRE: destroyed, the memory reads zeros instead of faulting views kept in JS
    const cfg = encodeStruct('zc_pool_config', { count: o.count, size: o.size, flags: POOL_FLAGS.RETIRE | (o.hugePages ? POOL_FLAGS.HUGE : 0) });
    const pout = new PointerOut('zc_pool');
    const rc = ring.zc.zc_pool_create(ring.ptr, cfg, pout.bytes);
    const out = [pout.get()] as const;
    if (rc < 0 || out[0] === null) {
      const bytes = o.count * o.size;
      const details: ErrorDetails =
        rc === -ERRNO.ENOMEM
          ? { neededBytes: bytes, hugePages: o.hugePages, ...(o.hugePages ? {} : memlock()) }
          : rc === -ERRNO.ENOSPC
            ? { slotsNeeded: Math.ceil(o.count / Math.floor(MAX_BUFFER_SIZE / o.size)), maxFixedBuffers: ring.options.maxFixedBuffers }
            : {};
      throw new ZcError({ errno: rc < 0 ? rc : ERRNO.EIO, op: 'pool.create', details });
    }
    return new BufferPool(ring, out[0], o);
  }

  /** @internal */
  get ptr(): NativePointer {
    if (!this.#ptr) throw new ZcError({ errno: ERRNO.EBADF, op: 'pool', hint: 'the pool is closed' });
    return this.#ptr;
  }

  /** true once closed (or its ring closed) */
  get closed(): boolean {
    return this.#closed;
  }

  /** buffers free to acquire */
  get available(): number {
    return this.#free.length;
  }

  /** sends holding this pool's buffers, as libzc counts them */
  get inFlight(): number {
    return this.#ptr ? this.ring.zc.zc_pool_inflight(this.#ptr) : 0;
  }

  /** Take a free buffer; throws ZcError ENOBUFS when all are taken. */
  acquire(): PoolBuffer {
    const b = this.tryAcquire();
    if (!b) {
      throw new ZcError({
        errno: ERRNO.ENOBUFS,
        op: 'pool.acquire',
        hint: `all ${this.count} buffers are taken: release() some or create a bigger pool`,
      });
    }
    return b;
  }

  /** Take a free buffer, or null when all are taken. */
  tryAcquire(): PoolBuffer | null {
    if (this.#closed || this.#closing) throw new ZcError({ errno: ERRNO.EBADF, op: 'pool.acquire', hint: 'the pool is closed' });
    const i = this.#free.pop();
    if (i === undefined) return null;
    const b = new PoolBuffer(this, i, new Uint8Array(this.#memory, i * this.size, this.size));
    this.#buffers[i] = b;
    return b;
  }

  /** @internal called by PoolBuffer.release() */
  giveBack(b: PoolBuffer): void {
    if (this.#buffers[b.index] !== b) return;
    this.#buffers[b.index] = null;
    this.#free.push(b.index);
  }

  /**
   * Close the pool: acquire() is refused from now on; once every send that
   * holds one of its buffers settled, it is unregistered (unpinned) and its
   * memory retired (views kept read zeros).  Resolves then.  Every
   * PoolBuffer becomes unusable.  Idempotent: every call returns the same
   * Promise; closing the ring closes its pools too.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#closed || !this.#ptr) return Promise.resolve();
    this.#closing = new Promise<void>((resolve) => {
      this.#closedWaiter = resolve;
    });
    this.#tryDestroy();
    return this.#closing;
  }

  /** true once close() was called (or the ring closed) */
  get closing(): boolean {
    return this.#closing !== null || this.#closed;
  }

  /** @internal a buffer's send settled: a close in progress may proceed */
  settledOne(): void {
    if (this.#closing && !this.#closed) this.#tryDestroy();
  }

  #tryDestroy(): void {
    if (this.#closed || !this.#ptr) {
      this.#finishClose();
      return;
    }
    // Sends that coalesced several buffers into one sendmsg are tracked here only.
    if (this.#buffers.some((b) => b?.inFlight)) return;
    const rc = this.ring.zc.zc_pool_destroy(this.#ptr);
    if (rc === -ERRNO.EBUSY) {
      // libzc still holds some (a send of a Uint8Array view of pool
      // memory, which lends no PoolBuffer): look again shortly.
      this.#retry ??= setTimeout(() => {
        this.#retry = null;
        this.#tryDestroy();
      }, 10);
      return;
    }
    this.#invalidate();
    this.#finishClose();
  }

  #finishClose(): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    const w = this.#closedWaiter;
    this.#closedWaiter = null;
    w?.();
  }

  #invalidate(): void {
    this.#closed = true;
    this.#ptr = null;
    // libzc left zero pages where the pool was; they go with the last view.
    this.#range.retired = true;
    this.#memory = new ArrayBuffer(0);
    for (const b of this.#buffers) b?.detach();
    this.#buffers.fill(null);
    this.#free = [];
    this.ring.untrack(this);
  }

  /** @internal Ring.close(): the ring frees the pool itself. */
  destroyFromRing(): void {
    if (!this.#closed) {
      if (this.#ptr) this.ring.zc.zc_pool_destroy(this.#ptr);
      this.#invalidate();
    }
    this.#finishClose();
  }

  /** `using pool = ...`: starts close() (await it with `await using`). */
  [Symbol.dispose](): void {
    void this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** One buffer of a {@link BufferPool}; see the ownership rules there. */
export class PoolBuffer {
  readonly pool: BufferPool;
  /** index of the buffer inside its pool (fixed-buffer index) */
  readonly index: number;
  /** bytes */
  readonly size: number;
  /**
   * @internal the request object of this buffer's callback sends on a
   * connected datagram socket (socket/pool-send.ts), reused by each
   */
  sendReq: PoolSend | null = null;
  #view: Uint8Array | null;
  #inFlight = false;
  #released = false;
  #releaseOnSettle = false;

  /** @internal use pool.acquire() */
  constructor(pool: BufferPool, index: number, view: Uint8Array) {
    this.pool = pool;
    this.index = index;
    this.size = view.length;
    this.#view = view;
  }

  /** true while a send of this buffer has not settled (the kernel owns it) */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /** true after release() or after the pool closed */
  get released(): boolean {
    return this.#released;
  }

  #check(op: string): Uint8Array {
    if (this.#released || !this.#view) {
      throw new ZcOwnershipError(op, `buffer ${this.index} was released (or its pool closed): acquire a new one`);
    }
    if (this.#inFlight) {
      throw new ZcOwnershipError(
        op,
        `buffer ${this.index} is owned by the kernel until its send settles: await the send() Promise first`,
      );
    }
    return this.#view;
  }

  /** The buffer's memory.  Throws while in flight or after release. */
  get bytes(): Uint8Array {
    return this.#check('PoolBuffer.bytes');
  }

  /** Copy data in at offset; returns bytes written.  Throws while in flight. */
  write(data: Uint8Array, offset = 0): number {
    const v = this.#check('PoolBuffer.write');
    if (!Number.isInteger(offset) || offset < 0 || offset + data.length > v.length) {
      throw new RangeError(`PoolBuffer.write: ${data.length} bytes at offset ${offset} do not fit in ${v.length}`);
    }
    v.set(data, offset);
    return data.length;
  }

  /** Give the buffer back to the pool.  Throws while in flight. */
  release(): void {
    if (this.#released) return;
    this.#check('PoolBuffer.release');
    this.#released = true;
    this.#view = null;
    this.pool.giveBack(this);
  }

  /** @internal the memory even while lent (the engine that sends it), null once released */
  memory(): Uint8Array | null {
    return this.#view;
  }

  /** @internal mark the buffer as owned by the kernel; throws if it already is */
  lend(op: string): void {
    this.#check(op);
    this.#inFlight = true;
  }

  /** @internal the send settled: the buffer is the caller's again (or goes back, if disposed meanwhile) */
  unlend(): void {
    this.#inFlight = false;
    if (this.#releaseOnSettle) {
      this.#releaseOnSettle = false;
      this.release();
    }
    this.pool.settledOne();
  }

  /** @internal pool closed */
  detach(): void {
    this.#released = true;
    this.#view = null;
    this.#inFlight = false;
  }

  /** Release now, or, while a send holds it, as soon as that send settles. */
  [Symbol.dispose](): void {
    if (this.#inFlight) this.#releaseOnSettle = true;
    else this.release();
  }
}
