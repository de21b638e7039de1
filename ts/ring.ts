// SPDX-License-Identifier: MIT
/**
 * {@link Ring}: one io_uring instance driven from Node's event loop.
 *
 * Requests (sends, socket ops) are queued into libzc during a JS tick and
 * handed to the kernel with one `zc_submit` per tick (a microtask).  The
 * ring fd (a DEFER_TASKRUN ring's eventfd) is watched with a libuv poll
 * handle (ts/ffi/poll.ts); when it fires, `zc_reap` copies up to
 * {@link REAP_BATCH} completion records into a preallocated buffer and each
 * record settles its Promise.  With nothing in flight the poll handle is
 * unref'd (an idle ring does not keep the process alive) and costs no CPU:
 * the fd is quiet.
 */
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { COMP_FLAGS, ERRNO, OP, RING_FLAGS, UNIFIED } from './ffi/abi.gen.ts';
import { loadNative, PointerOut, type LibC, type LibZc, type NativePointer } from './ffi/libzc.ts';
import { watchRing, type Bells, type Directs, type FlushBatch, type RingWatcher } from './ffi/poll.ts';
import { encodeStruct } from './ffi/structs.ts';
import { parseRingOptions, type BufferPoolOptionsInput, type RingOptions, type RingOptionsInput } from './config.ts';
import { BufferPool } from './pool.ts';
import { rethrowLater, ZcConfigError, ZcError } from './errors.ts';
import { kernelTooOld, probe, type ProbeInfo } from './probe.ts';
import { RECORD_SIZE, RecordCursor, type Completion } from './records.ts';
import { SlotTable } from './slots.ts';
import { BATCH_CAP, BatchQueue } from './batch.ts';
export type { BatchQueue } from './batch.ts';

/** Records reaped per FFI call. */
export const REAP_BATCH = 256;
/**
 * Flushes that found records, run one after another in one drain of the
 * microtask queue, before the ring yields to Node's event loop (see
 * Ring.submit).
 */
export const CHAINED_FLUSHES = 4;
/**
 * ...and only once such a chain has kept the loop waiting this long (ms):
 * a sender that keeps a window full (UDP, all sends done inline) runs as
 * one chain, and an event-loop turn every few flushes cost it ~4% of its
 * CPU per send; a timer now waits at most about this much longer (the
 * yield is a turn of the loop only when the loop has work due: Ring#yield).
 */
export const CHAIN_BUDGET_MS = 1;
/** Bound on how long close() waits (asynchronously) for the kernel to finish canceled requests. */
export const CLOSE_WAIT_MS = 5000;

/**
 * Request slots a ring keeps from standing requests (receives, accepts) for
 * requests that finish: a sixteenth of maxRequests, at least 1, at most 256.
 */
export function standingReserve(maxRequests: number): number {
  return Math.max(1, Math.min(256, maxRequests >>> 4));
}

export type { Completion } from './records.ts';

/**
 * A request as the ring tracks it (internal to the library: sockets and
 * pools build these).  `issue` queues the SQE(s) with the given user_data
 * and returns 0 or -errno; `done` receives the record; `fail` an error
 * that happened before any record (issue failure, ring closed).
 * (Not exported from the package root; declared because the socket and
 * receive modules' requests implement it.)
 */
export interface RingRequest {
  readonly opName: string;
  issue(userData: number): number;
  /**
   * The record.  `c` is a cursor over the ring's record buffer, valid only
   * during this call: read what you need, do not keep it.
   */
  done(c: Completion): void;
  fail(err: ZcError): void;
  /** memory the kernel may read until the record arrives */
  keep?: unknown;
  /**
   * A request that stays in flight for its socket's life (a multishot
   * receive or accept).  A ring lets such requests hold at most
   * {@link Ring.standingLimit} of its request slots, keeping the rest for
   * requests that finish (sends): past it the request fails at once with
   * ENOBUFS naming the limit, instead of every send waiting for a slot
   * that never comes back.
   */
  readonly standing?: boolean;
}

/**
 * A request libzc can build from a descriptor (`struct zc_batch_op`): the
 * ring writes it into the tick's batch with `describe` and hands the whole
 * batch to libzc in one call at the end of the tick.  `issue` remains the
 * way to queue it alone (after backpressure).
 * (Not exported from the package root; declared because socket/send-op's
 * requests implement it.)
 */
export interface BatchedRequest extends RingRequest {
  /** Write one descriptor tagged udLo/udHi into q; false when q has no room for it. */
  describe(q: BatchQueue, udLo: number, udHi: number): boolean;
  /** libzc refused the descriptor: nothing of it was queued (instead of fail). */
  refused(err: ZcError): void;
}

/**
 * Work libzc does from a descriptor that is no request (no record):
 * RX_RELEASE.  `result` gets what libzc returned; `direct` does the work
 * by itself when the batch could not take it.
 * @internal
 */
export interface BatchedOp {
  describe(q: BatchQueue): boolean;
  result(rc: number): void;
  direct(): void;
}

/** Counters for benchmarks and tests. */
export interface RingStats {
  /** requests handed to libzc */
  issued: number;
  /** records reaped (exactly one per issued request) */
  records: number;
  /** zc_submit calls from the batching microtask */
  submits: number;
  /** zc_reap calls */
  reaps: number;
  /** times a request waited in JS because max requests were in flight */
  backpressured: number;
  /** watcher wakeups (the ring fd's, or the eventfd's) */
  wakeups: number;
  /** kernel CQEs merged into the reaped records (2 per zero-copy send when merged in userspace, 1 when native) */
  kernelCqes: number;
}

let lib: { zc: LibZc; c: LibC } | undefined;
function native(): { zc: LibZc; c: LibC } {
  lib ??= loadNative();
  return lib;
}

/**
 * Rings whose poll handle is open.  At process exit their handles are
 * closed: a handle Node's teardown finds readable (a stale wakeup)
 * would call into JavaScript that no longer runs, a fatal error.  A worker
 * thread's exit is not the process's: there the rings are freed as well
 * (their fds, sockets and pinned memory would otherwise stay for the life
 * of the process).  A worker stopped by terminate() emits no 'exit': the
 * watcher addon destroys its open rings natively as the thread's
 * environment goes away (zc_poll.node's env cleanup hook; the sockets
 * given to ownFd() too), which is why a ring is destroyed only after its watcher is
 * closed (stopWatching, then zc_ring_destroy*): an open watcher means a
 * live ring.  With koffi's watcher they stay.
 */
const live = new Set<Ring>();
let exitHook = false;
function stopAtExit(r: Ring): void {
  live.add(r);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const x of [...live]) {
      if (isMainThread) x.stopWatching();
      else x.destroyAtExit();
    }
    live.clear();
  });
}

/**
 * Registered with a ring so close() can tear it down (pools, sockets,
 * receivers; they match it structurally, so the public declarations need
 * not name it). @internal
 */
export interface RingResource {
  /** called by Ring.close() after every request settled */
  destroyFromRing(): void;
}

function ringFlags(o: RingOptions): number {
  let f = 0;
  if (o.singleIssuer) f |= RING_FLAGS.SINGLE_ISSUER;
  if (o.deferTaskrun) f |= RING_FLAGS.DEFER_TASKRUN | RING_FLAGS.SINGLE_ISSUER;
  if (o.coopTaskrun) f |= RING_FLAGS.COOP_TASKRUN;
  if (o.registeredFd) f |= RING_FLAGS.REGISTERED_FD;
  if (o.cqe32) f |= RING_FLAGS.CQE32;
  return f;
}

/** Once per process: null when the kernel has what uring-zc needs, else why not. */
let kernelChecked: string | null | undefined;

let nextRingId = 1;

/** The ring of this thread its event loop sleeps in (loopWait 'ring' or 'auto'), if any. */
let loopSleeper: Ring | null = null;

/**
 * @internal Whether zc_poll.node's sleep can run on a libuv of this version
 * (`process.versions.uv`): from 1.44.0, uv_backend_timeout() is 0 while
 * libuv has fd changes its next poll applies (libuv 939a0563), which the
 * prepare handle relies on not to sleep on a stale epoll set.
 */
export function libuvSleepsInRing(version: string | undefined): boolean {
  const m = /^(\d+)\.(\d+)\.\d+/.exec(version ?? '');
  if (!m) return false;
  const major = Number(m[1]);
  return major > 1 || (major === 1 && Number(m[2]) >= 44);
}

/**
 * settle(item, ctx) for each of items: one that throws (a handler calling
 * user code) does not cost the others their settle; its exception is
 * rethrown from a microtask of its own.  The flush path passes a function
 * made once (a module function or a static method, with `ctx`), so it
 * allocates no closure per call.
 */
function settleEach<T, C = undefined>(items: readonly T[], settle: (item: T, ctx: C) => void, ctx?: C): void {
  for (let i = 0; i < items.length; i++) {
    try {
      settle(items[i]!, ctx as C);
    } catch (e) {
      rethrowLater(e);
    }
  }
}

/**
 * `URING_ZC_DOORBELL=0`: no doorbell; `=nested`: the watcher's nested epoll
 * set, not a poll handle per socket (Ring.doorbell; diagnosis and paired
 * measurement).
 */
const NO_BELL = process.env['URING_ZC_DOORBELL'] === '0';
const BELL_DIRECT = process.env['URING_ZC_DOORBELL'] !== 'nested';

/** The settled promise the tick's flush reacts on (Ring#scheduleFlush). */
const SETTLED = Promise.resolve();

/** A batched op's result (a flush's settle: settleEach). */
const opResult = (p: [BatchedOp, number]): void => p[0].result(p[1]);
/** A batched op that never reached libzc runs directly (#dropBatch). */
const opDirect = (op: BatchedOp): void => op.direct();

/** An io_uring ring with libzc's one-completion-per-request model. */
export class Ring {
  /** a number naming this ring in errors (`ring #3`), unique in the process */
  readonly id = nextRingId++;
  /** resolved options */
  readonly options: RingOptions;
  /** io_uring_params.features */
  readonly features: number;
  /** true when zero-copy sends complete with ONE kernel CQE (patched kernel) */
  readonly unifiedNative: boolean;
  /**
   * true when zero-copy sends of several pool buffers made in one tick on
   * a stream socket leave as one SENDMSG_ZC from registered buffers (Linux
   * >= 6.15); otherwise each is its own SEND_ZC
   */
  readonly sendvFixed: boolean;
  /**
   * true when the ring fd is registered with the kernel (saves a file
   * lookup per io_uring_enter; option `registeredFd`).  The kernel keeps
   * 16 per thread: later rings run on their plain fd, and
   * {@link registeredFdError} says why.
   */
  readonly registeredFd: boolean;
  /** why the ring fd is not registered although asked (e.g. `EBUSY`: 16 taken), else null */
  readonly registeredFdError: ZcError | null;
  /** the ring's eventfd (watched on Node's loop when {@link watchedFd} says so) */
  readonly eventFd: number;
  /**
   * What the watcher polls: `ring`, the io_uring fd (readable while
   * completions wait: no eventfd signal per completion, no eventfd read per
   * wakeup), or `eventfd` on DEFER_TASKRUN rings, whose deferred task work
   * only the eventfd announces.
   */
  readonly watchedFd: 'ring' | 'eventfd';
  /** the io_uring fd */
  readonly fd: number;
  /** requests libzc tracks at once (option `maxRequests`, by default 2 x `entries`) */
  readonly maxRequests: number;
  /**
   * How many standing requests (a receive or an accept per socket, in
   * flight for the socket's life) the ring takes at once: `maxRequests`
   * less {@link standingReserve}.  One more fails with ENOBUFS.
   */
  readonly standingLimit: number;
  /**
   * What watches the ring ({@link watchedFd}): `native`, the zc_poll.node addon (reaps in C,
   * one call into JS per wakeup), or `koffi`, koffi's poll handle (the
   * fallback when the addon is missing or fails to load; ts/ffi/poll.ts).
   */
  readonly watcher: 'native' | 'koffi';
  /**
   * Where the thread's event loop sleeps (option `loopWait`): `'ring'` when
   * this ring asked for it and the zc_poll.node watcher and libuv (1.44 or
   * later) have it; `'auto'` when this ring has the sleep by default (the
   * first ring of the main thread without deferTaskrun) and hands it
   * between its ring and epoll by what wakes the loop ({@link loopSleep}
   * says which, now); else `'epoll'`, also once a later ring took the sleep
   * over with an explicit `'ring'`.
   */
  get loopWait(): 'epoll' | 'ring' | 'auto' {
    return this.#loopWait;
  }
  #loopWait: 'epoll' | 'ring' | 'auto' = 'epoll';

  /**
   * Where the thread's event loop sleeps now when it waits for this ring:
   * `'ring'` (in io_uring_enter() on it) or `'epoll'` (libuv's own wait).
   * With loopWait `'auto'` this follows the loop's recent wakeups: the ring
   * while they are mostly its completions, epoll while they are mostly
   * other fds or timers (docs/PERFORMANCE.md, Session 19 auto19).
   */
  get loopSleep(): 'ring' | 'epoll' {
    if (this.#loopWait !== 'auto') return this.#loopWait;
    return this.#watcher?.sleepState().at === 'ring' ? 'ring' : 'epoll';
  }

  /** @internal how often loopWait 'auto' moved the sleep between the ring and epoll */
  get loopSwitches(): number {
    return this.#watcher?.sleepState().switches ?? 0;
  }
  /**
   * Whether Node's `performance.eventLoopUtilization()` counts the thread's
   * sleep as idle time.  Always with loopWait `'epoll'` (libuv's own
   * epoll wait).  With `'ring'` or `'auto'` when zc_poll.node found libuv's private
   * idle-time fields where libuv 1.45-1.52 keep them (checked at run time,
   * before any write: Node 20.3 and later, 22, 24, 26) and counts the ring's
   * sleep there as libuv counts its wait; `false` when a check failed (a
   * libuv of another layout): the sleep then reads as busy, an idle thread
   * as fully utilized.
   */
  readonly sleepCountsIdle: boolean;
  /** counters (read-only view; reset with resetStats) */
  readonly stats: RingStats = { issued: 0, records: 0, submits: 0, reaps: 0, backpressured: 0, wakeups: 0, kernelCqes: 0 };

  #ptr: NativePointer | null;
  #zc: LibZc;
  #watcher: RingWatcher | null;
  #reapBuf = Buffer.from(new ArrayBuffer(REAP_BATCH * RECORD_SIZE));
  /** addresses of the ring, the reap buffer and the batch's arrays (the *_at calls) */
  #ptrAt: number;
  #reapAt: number;
  #opsAt: number;
  #rcsAt: number;
  /** zc_flush_batch(ring, ops, n, rcs, reapBuf, max) through koffi */
  readonly #koffiFlush: FlushBatch = (n, max) =>
    this.#zc.zc_flush_batch_at(this.#ptrAt, this.#opsAt, n, this.#rcsAt, this.#reapAt, max);
  /**
   * The same through the native watcher while it is open (one Node-API
   * call of two numbers: docs/PERFORMANCE.md, Session 18 napi18), else
   * #koffiFlush.
   */
  #flushBatch = this.#koffiFlush;
  #rec = new RecordCursor(this.#reapBuf);
  #reqs = new SlotTable<RingRequest>();
  #backlog: RingRequest[] = [];
  /**
   * this tick's descriptors; a descriptor's request is found through the
   * slot table (its user_data), so only the BatchedOps (no request, no
   * slot) are kept here, by descriptor index
   */
  #batch = new BatchQueue((b) => Number(native().c.addressOf(b)));
  #batchOps: (BatchedOp | undefined)[] = new Array<BatchedOp | undefined>(BATCH_CAP);
  /** BatchedOps in this tick's batch */
  #batchOpCount = 0;
  /** a flush is queued as a microtask, or submit() is about to flush */
  #flushScheduled = false;
  /**
   * The hooks for the next flush: the first #preFlushN entries (a count,
   * not `length = 0` after each run: that store is a runtime call, drops
   * the list's storage and has the next push allocate it again, on the way
   * from a wakeup to its send: docs/PERFORMANCE.md, Session 25 wake25).
   */
  #preFlush: ((() => void) | undefined)[] = [];
  #preFlushN = 0;
  /** The hook list #runPreFlush last ran, its entries cleared for reuse (null while in use). */
  #preFlushSpare: ((() => void) | undefined)[] | null = [];
  #refed = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** wakes close() waiting for the last records */
  #closeWake: (() => void) | null = null;
  #resources = new Set<RingResource>();
  #inReap = false;
  #flushAfterReap = false;
  /** flushes that found records in this drain of the microtask queue (see submit) */
  #chained = 0;
  /** when the current chain's second flush ran (performance.now()) */
  #chainStart = 0;
  #yieldScheduled = false;
  /** chains that gave the loop its turn, and those that only let the tick queue run (see submit) */
  #loopYields = 0;
  #tickYields = 0;
  /** long-lived requests that do not keep the process alive (unref'd sockets and servers) */
  #unrefed = new Set<RingRequest>();
  /** standing requests issued or waiting, not yet ended */
  #standing = 0;

  private constructor(ptr: NativePointer, options: RingOptions, zc: LibZc) {
    this.#ptr = ptr;
    this.#zc = zc;
    const { c } = native();
    this.#ptrAt = Number(c.address(ptr));
    this.#reapAt = Number(c.addressOf(this.#reapBuf));
    this.#opsAt = Number(c.addressOf(this.#batch.ops));
    this.#rcsAt = Number(c.addressOf(new Uint8Array(this.#batch.rcs.buffer)));
    this.options = options;
    this.features = zc.zc_ring_features(ptr);
    this.unifiedNative = zc.zc_ring_unified_native(ptr) === 1;
    this.sendvFixed = zc.zc_ring_sendv_fixed(ptr) === 1;
    const reg = zc.zc_ring_registered_fd(ptr);
    this.registeredFd = reg === 1;
    this.registeredFdError =
      reg < 0
        ? new ZcError({
            errno: reg,
            op: 'ring.registerFd',
            hint:
              reg === -ERRNO.EBUSY
                ? 'this thread has 16 registered ring fds already (the kernel limit): this ring works on its plain fd, one file lookup more per io_uring_enter'
                : 'the kernel refused to register the ring fd: this ring works on its plain fd',
          })
        : null;
    this.eventFd = zc.zc_ring_event_fd(ptr);
    this.fd = zc.zc_ring_fd(ptr);
    this.maxRequests = zc.zc_ring_max_requests(ptr);
    this.standingLimit = Math.max(0, this.maxRequests - standingReserve(this.maxRequests));
    // The ring fd where it announces every CQE (libzc.h: zc_ring_poll_ring_fd).
    const polled = options.deferTaskrun ? -1 : zc.zc_ring_poll_ring_fd(ptr);
    this.watchedFd = polled >= 0 ? 'ring' : 'eventfd';
    this.#watcher = null;
    try {
      this.#watcher = watchRing(
        polled >= 0 ? polled : this.eventFd,
        this.#ptrAt,
        this.#reapAt,
        REAP_BATCH,
        (n) => this.#onReaped(n),
        () => this.#onReadable(),
      );
      this.watcher = this.#watcher.native ? 'native' : 'koffi';
      this.#flushBatch = this.#watcher.flusher(this.#batch.ops, this.#batch.rcs) ?? this.#koffiFlush;
      this.#watcher.unref();
      this.#loopWait = this.#takeSleep(options);
      if (this.#loopWait !== 'epoll') loopSleeper = this;
      this.sleepCountsIdle = this.#loopWait === 'epoll' || this.#watcher.sleepIdle() === true;
      stopAtExit(this);
    } catch (e) {
      // Created but not handed out: close it now.  The watcher first: an
      // open native watcher destroys its ring when the thread exits.
      this.stopWatching();
      this.#ptr = null;
      this.#closed = true;
      zc.zc_ring_destroy(ptr);
      throw e;
    }
  }

  /**
   * Whether this ring's loop sleeps here: an explicit 'ring' takes the
   * sleep (over from a ring that has it by default); 'auto' takes it when
   * it can be had quietly, else reads 'epoll' (a second ring, deferTaskrun,
   * a worker thread, the koffi watcher, libuv before 1.44).
   */
  #takeSleep(o: RingOptions): 'epoll' | 'ring' | 'auto' {
    if (o.loopWait === 'epoll' || this.#watcher === null || !libuvSleepsInRing(process.versions.uv)) return 'epoll';
    if (o.loopWait === 'auto') {
      if (o.deferTaskrun || !isMainThread || loopSleeper !== null) return 'epoll';
      return this.#watcher.sleepIn(true) ? 'auto' : 'epoll';
    }
    if (loopSleeper !== null) loopSleeper.#sleepOut();
    return this.#watcher.sleepIn(false) ? 'ring' : 'epoll';
  }

  /** Another ring takes the loop's sleep over: its fd is polled in epoll again. */
  #sleepOut(): void {
    this.#watcher?.sleepOut();
    this.#loopWait = 'epoll';
    if (loopSleeper === this) loopSleeper = null;
  }

  /** @internal close the poll handle (process exit) */
  stopWatching(): void {
    this.#watcher?.close();
    this.#watcher = null;
    this.#flushBatch = this.#koffiFlush;
    live.delete(this);
    if (loopSleeper === this) loopSleeper = null;
  }

  /**
   * Create a ring.  Throws ZcConfigError for invalid options and ZcError
   * (op `ring.create`) when the kernel refuses, with a hint (sysctl
   * kernel.io_uring_disabled, seccomp, kernel version).  Whatever throws,
   * no ring or fd is left open.
   */
  static create(options?: RingOptionsInput): Ring {
    const o = parseRingOptions(options);
    if (o.loopWait === 'ring' && loopSleeper !== null && loopSleeper.loopWait === 'ring') {
      throw new ZcConfigError('RingOptions', [
        {
          field: 'loopWait',
          value: 'ring',
          allowed: `"epoll": ring #${loopSleeper.id} of this thread has loopWait "ring" (one ring per thread; close it first)`,
        },
      ]);
    }
    const { zc } = native();
    const cfg = {
      sq_entries: o.entries,
      cq_entries: o.cqEntries ?? 0,
      flags: ringFlags(o),
      unified: o.unified === 'native' ? UNIFIED.NATIVE : o.unified === 'userspace' ? UNIFIED.USERSPACE : UNIFIED.AUTO,
      max_requests: o.maxRequests ?? 0,
      max_fixed_buffers: o.maxFixedBuffers,
    };
    const pout = new PointerOut('zc_ring');
    const rc = zc.zc_ring_create(encodeStruct('zc_ring_config', cfg), pout.bytes);
    const out = [pout.get()] as const;
    if (rc < 0 || out[0] === null) {
      let info: ProbeInfo | undefined;
      try {
        info = probe();
      } catch {
        info = undefined;
      }
      throw new ZcError({
        errno: rc < 0 ? rc : ERRNO.EIO,
        op: 'ring.create',
        details: { ioUringDisabled: info?.ioUringDisabled ?? null, setupErrno: info?.setupErrno ?? null },
      });
    }
    try {
      if (kernelChecked === undefined) kernelChecked = kernelTooOld(probe()) ?? null;
      if (kernelChecked !== null) throw new ZcError({ errno: ERRNO.ENOSYS, op: 'ring.create', hint: kernelChecked });
    } catch (e) {
      zc.zc_ring_destroy(out[0]);
      throw e;
    }
    return new Ring(out[0], o, zc);
  }

  /** true once close() ran */
  get closed(): boolean {
    return this.#closed;
  }

  /** Standing requests (receives, accepts) in flight or waiting: at most {@link standingLimit}. */
  get standing(): number {
    return this.#standing;
  }

  /** Requests issued whose record has not arrived, plus those waiting in JS. */
  get inFlight(): number {
    return this.#reqs.size + this.#backlog.length;
  }

  /** libzc's own count of requests not yet reaped. */
  get nativePending(): number {
    return this.#ptr ? this.#zc.zc_ring_pending(this.#ptr) : 0;
  }

  /** @internal native pointer for pools and sockets; throws when closed */
  get ptr(): NativePointer {
    if (!this.#ptr || this.#closed) throw new ZcError({ errno: ERRNO.EBADF, op: 'ring', hint: 'the ring is closed' });
    return this.#ptr;
  }

  /** @internal native pointer even while closing; null once destroyed */
  get rawPtr(): NativePointer | null {
    return this.#ptr;
  }

  /** @internal */
  get zc(): LibZc {
    return this.#zc;
  }

  /** @internal */
  get libc(): LibC {
    return native().c;
  }

  /**
   * @internal fd is one of this ring's sockets: should the thread be
   * stopped by worker.terminate() with the ring open, the watcher addon
   * closes it with the ring (no JavaScript runs then).  Call disownFd()
   * before starting to close it (close.ts does), never after.
   */
  ownFd(fd: number): void {
    this.#watcher?.own(fd);
  }

  /** @internal see ownFd */
  disownFd(fd: number): void {
    this.#watcher?.disown(fd);
  }

  /**
   * @internal fd, one of this ring's sockets, now has a receive in flight:
   * its data wakes the event loop through the watcher's doorbell (an event
   * in libuv's epoll_pwait, not the EINTR of the receive's task work and a
   * second wait: docs/PERFORMANCE.md, Session 19 rr1c19) whenever the loop
   * sleeps in epoll (`loopWait` 'epoll', and 'auto' in its epoll phases;
   * sleeping in the ring, the sleep wakes for it: Session 20 bell20).  For
   * the native watcher of a ring fd (an eventfd gets no EINTR).  The socket
   * gets a poll handle of its own in libuv's epoll set (its wakeup carries
   * the sync hint: Session 24 sync24), closed by {@link bellOff}.
   */
  doorbell(fd: number): void {
    if (NO_BELL) return;
    if (this.watchedFd === 'ring') this.#watcher?.doorbell(fd, BELL_DIRECT);
  }

  /**
   * @internal fd's receive is over or canceled, or fd is about to close:
   * its doorbell handle leaves libuv's epoll set now (disownFd does too).
   */
  bellOff(fd: number): void {
    this.#watcher?.bellOff(fd);
  }

  /** @internal the direct doorbell handles: [open, polled, libuv's epoll fd] (null: no native watcher) */
  get directBells(): Directs | null {
    return this.#watcher?.directs() ?? null;
  }

  /**
   * @internal How often a busy chain of flushes yielded (see submit): to
   * the event loop (a turn of it: something was due, or the koffi watcher
   * cannot tell), and to Node's tick queue only (nothing of the loop's was due).
   */
  get chainYields(): { loop: number; tick: number } {
    return { loop: this.#loopYields, tick: this.#tickYields };
  }

  /**
   * @internal [wakeups by the doorbell, drains of it, wakeups of the ring
   * fd that delivered records] (null: no native watcher)
   */
  get bells(): Bells | null {
    return this.#watcher?.bells() ?? null;
  }

  /** @internal register a pool or socket to be torn down by close() */
  track(r: RingResource): void {
    this.#resources.add(r);
  }

  /** @internal */
  untrack(r: RingResource): void {
    this.#resources.delete(r);
  }

  /**
   * @internal Queue a request.  Never throws for kernel errors: they reach
   * `req.fail` (synchronously for an immediate libzc error).
   */
  enqueue(req: RingRequest): void {
    if (this.#closed) {
      req.fail(new ZcError({ errno: ERRNO.ECANCELED, op: req.opName, hint: 'the ring is closed' }));
      return;
    }
    if (req.standing) {
      if (this.#standing >= this.standingLimit) {
        req.fail(this.#standingFull(req));
        return;
      }
      this.#standing++;
    }
    if (this.#batch.n > 0) this.#pushBatch(0); // what was described before it goes first
    if (this.#backlog.length > 0) {
      this.#backlog.push(req);
      this.stats.backpressured++;
      this.#updateRef();
      return;
    }
    this.#issue(req, true);
    this.#updateRef();
  }

  /**
   * @internal Queue a request as a descriptor of this tick's batch (one
   * FFI call for all of them at the flush).  Same contract as enqueue().
   */
  enqueueBatched(req: BatchedRequest): void {
    if (this.#closed) {
      req.fail(new ZcError({ errno: ERRNO.ECANCELED, op: req.opName, hint: 'the ring is closed' }));
      return;
    }
    const q = this.#batch;
    const reqs = this.#reqs;
    for (let tries = 0; ; tries++) {
      if (this.#backlog.length > 0) {
        this.#backlog.push(req);
        this.stats.backpressured++;
        this.#updateRef();
        return;
      }
      const i = q.n;
      const lo = reqs.addSlot(req);
      if (req.describe(q, lo, reqs.generation(lo))) break;
      reqs.delete(lo);
      if (tries > 0 || i === 0) {
        // Not even an empty batch holds it: queue it alone.
        this.#issue(req, true);
        this.#updateRef();
        return;
      }
      this.#pushBatch(0);
    }
    // The watcher's ref is brought up to date by the flush (#pushBatch),
    // which runs before Node's loop does: no #updateRef per send.
    this.#scheduleFlush();
  }

  /**
   * @internal enqueueBatched() of a fixed send whose descriptor the caller
   * gives (socket/pool-send.ts): the common case (an open ring, no
   * backlog, room in the batch) written here, anything else through
   * enqueueBatched().  true: queued as a descriptor (issued).
   */
  enqueueSendFixed(
    req: BatchedRequest, fd: number, poolLo: number, poolHi: number, buf: number, off: number, len: number, flags: number,
  ): boolean {
    const q = this.#batch;
    if (this.#closed || this.#backlog.length > 0 || q.full) {
      this.enqueueBatched(req);
      return false;
    }
    const reqs = this.#reqs;
    const lo = reqs.addSlot(req);
    q.sendFixed(fd, lo, reqs.generation(lo), poolLo, poolHi, buf, off, len, flags);
    this.#scheduleFlush();
    return true;
  }

  /**
   * @internal Put work that is no request (a receive area's chunk releases)
   * into this tick's batch; done directly when the batch has no room.
   */
  enqueueBatchedOp(op: BatchedOp): void {
    const q = this.#batch;
    if (this.#closed || !this.#ptr) {
      op.direct();
      return;
    }
    if (q.full) this.#pushBatch(0);
    const i = q.n;
    if (!op.describe(q)) {
      op.direct();
      return;
    }
    this.#batchOps[i] = op;
    this.#batchOpCount++;
    this.#scheduleFlush();
  }

  /**
   * Hand the batch to libzc (zc_flush_batch: queue, submit, copy up to max
   * records into the reap buffer) and settle each descriptor's result:
   * refused ones fail, those libzc had no room for wait in the backlog.
   * Returns the records copied (or -errno).
   */
  #pushBatch(max: number): number {
    const q = this.#batch;
    const n = q.n;
    const got = this.#flushBatch(n, max);
    const rcs = q.rcs;
    const bo = this.#batchOps;
    const withOps = this.#batchOpCount > 0;
    this.#batchOpCount = 0;
    let failed: [BatchedRequest, number][] | null = null;
    // The first op (a flush usually carries one: a receive area's
    // releases) and its result in locals, any more in an array: no
    // array and pair per flush (docs/PERFORMANCE.md, Session 26).
    let op1: BatchedOp | undefined;
    let rc1 = 0;
    let ops: [BatchedOp, number][] | null = null;
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const rc = rcs[i]!;
      if (withOps) {
        const op = bo[i];
        if (op !== undefined) {
          bo[i] = undefined;
          if (op1 === undefined) {
            op1 = op;
            rc1 = rc;
          } else {
            (ops ??= []).push([op, rc]);
          }
          continue;
        }
      }
      if (rc === 0) {
        ok++;
        continue;
      }
      const slot = q.slotOf(i);
      const req = this.#reqs.get(slot, q.genOf(i)) as BatchedRequest;
      this.#reqs.delete(slot);
      if (rc === -ERRNO.EAGAIN || rc === -ERRNO.EBUSY) {
        this.#backlog.push(req);
        this.stats.backpressured++;
      } else {
        (failed ??= []).push([req, rc]);
      }
    }
    this.stats.issued += ok;
    q.reset();
    if (this.#backlog.length > 0) this.#scheduleFlush();
    // Callbacks last: they may queue more into the (now empty) batch.
    // None may throw out of here: the records this call copied out (got)
    // are dispatched by the caller after it returns, and would be lost
    // with their requests in flight for good.  A handler's exception is
    // rethrown from a microtask of its own, as #dispatch does.
    if (op1 !== undefined) {
      try {
        op1.result(rc1);
      } catch (e) {
        rethrowLater(e);
      }
      if (ops) settleEach(ops, opResult);
    }
    if (failed) settleEach(failed, Ring.#refuse, this);
    this.#updateRef();
    return got;
  }

  /** A request libzc refused in a flush (settleEach: no closure per flush). */
  static #refuse(this: void, p: [BatchedRequest, number], ring: Ring): void {
    const req = p[0];
    if (ring.#unrefed.size) ring.#unrefed.delete(req);
    req.refused(new ZcError({ errno: p[1], op: req.opName }));
  }

  /** Fail what the batch holds (the ring is closing): it never reached libzc. */
  #dropBatch(err: (r: RingRequest) => ZcError): void {
    const q = this.#batch;
    const reqs: BatchedRequest[] = [];
    const ops: BatchedOp[] = [];
    for (let i = 0; i < q.n; i++) {
      const op = this.#batchOps[i];
      if (op !== undefined) {
        this.#batchOps[i] = undefined;
        ops.push(op);
        continue;
      }
      const slot = q.slotOf(i);
      const req = this.#reqs.get(slot, q.genOf(i)) as BatchedRequest | undefined;
      if (req === undefined) continue;
      reqs.push(req);
      this.#reqs.delete(slot);
    }
    this.#batchOpCount = 0;
    q.reset();
    settleEach(ops, opDirect);
    settleEach(reqs, (r) => r.refused(err(r)));
  }

  /** Issue one request; false when libzc is full (-EAGAIN). */
  #issue(req: RingRequest, mayBacklog: boolean): boolean {
    const reqs = this.#reqs;
    const id = reqs.add(req);
    const rc = req.issue(id);
    if (rc < 0) reqs.delete(id % 2 ** 32);
    if (rc === -ERRNO.EAGAIN || rc === -ERRNO.EBUSY) {
      if (mayBacklog) {
        this.#backlog.push(req);
        this.stats.backpressured++;
        // Nothing may be pending in the kernel yet (all queued in libzc):
        // make sure a submit happens so completions come back.
        this.#scheduleFlush();
      }
      return false;
    }
    if (rc < 0) {
      this.#unrefed.delete(req);
      if (req.standing) this.#standing--;
      req.fail(new ZcError({ errno: rc, op: req.opName }));
      return true;
    }
    this.stats.issued++;
    this.#scheduleFlush();
    return true;
  }

  /**
   * @internal Run fn right before the next flush (once), e.g. to issue a
   * socket's coalesced sends made during this tick as one request.
   * `lazy`: fn needs no flush of its own (a receive area's releases): it
   * rides the next one, at the latest right after this turn of the event
   * loop's I/O (setImmediate), so it costs no FFI call when a send follows.
   * The immediate is only set when no flush is scheduled once the current
   * microtask is over: a chunk released just before the send it answers
   * (a request/response loop) costs no immediate, and no extra turn of the
   * loop, either.  A release made while records are dispatched is looked
   * at once the dispatch is over instead (no microtask of its own: the
   * handlers' sends have scheduled their flush by then), and one made
   * while a flush's own records are dispatched (a send's callback) goes
   * out with a second batch call at the end of that flush, if no flush is
   * scheduled by then, instead of a microtask and an immediate
   * (docs/PERFORMANCE.md, Session 19 rr1c19).
   */
  beforeFlush(fn: () => void, lazy = false): void {
    this.#preFlush[this.#preFlushN++] = fn;
    if (!lazy) this.#scheduleFlush();
    else if (!this.#flushScheduled && !this.#lazyScheduled) {
      this.#lazyScheduled = true;
      if (this.#inReap) this.#lazyInReap = true;
      else void SETTLED.then(this.#lazyCheck);
    }
  }

  #lazyScheduled = false;
  /** a lazy hook came during the current reap's dispatch (see beforeFlush) */
  #lazyInReap = false;
  /**
   * The lazy hooks that came during a wakeup's (or reap()'s) dispatch,
   * now that it is over: the flush the handlers scheduled runs them, else
   * the microtask that sets the immediate.
   */
  #lazyAfterReap(): void {
    this.#lazyInReap = false;
    if (this.#flushScheduled) this.#lazyScheduled = false;
    else void SETTLED.then(this.#lazyCheck);
  }

  /**
   * The lazy hooks that came during a flush's own dispatch (a send's
   * callback released the chunk it sent): when no other flush is
   * scheduled, only lazy hooks wait (any other hook scheduled one), and
   * they go now with one more batch call, its records dispatched as any
   * flush's (a batch call may take in CQEs that arrived meanwhile: its
   * records must not stay in libzc, where no wakeup would report them).
   */
  #lazyAfterFlush(): void {
    this.#lazyInReap = false;
    this.#lazyScheduled = false;
    if (this.#flushScheduled || !this.#ptr || this.#closed) return;
    // What the hooks queue goes with this batch call: no flush of its own.
    this.#flushScheduled = true;
    this.#runPreFlush();
    this.#flushScheduled = false;
    if (this.#batch.n > 0) this.#reapWith(false);
    // Released again by that dispatch: the usual way, at most once per flush.
    if (this.#lazyInReap) this.#lazyAfterReap();
  }

  readonly #lazyCheck = (): void => {
    if (this.#flushScheduled || this.#preFlushN === 0) {
      // The flush scheduled meanwhile runs the hooks (or one already did).
      this.#lazyScheduled = false;
      return;
    }
    setImmediate(this.#lazyFlush);
  };
  readonly #lazyFlush = (): void => {
    this.#lazyScheduled = false;
    this.#chained = 0;
    if (this.#preFlushN > 0) this.submit();
  };

  /**
   * Run the hooks queued for this flush.  One that throws does not cost
   * the hooks after it (other sockets' coalesced sends, releases) their
   * run: its exception is rethrown from a microtask of its own.  The two
   * hook lists take turns (no new array per flush, and no backing store
   * grown again by the first push); a flush nested in a hook finds the
   * spare taken and makes a new one.
   */
  #runPreFlush(): void {
    while (this.#preFlushN > 0) {
      const fns = this.#preFlush;
      const n = this.#preFlushN;
      this.#preFlush = this.#preFlushSpare ?? [];
      this.#preFlushN = 0;
      this.#preFlushSpare = null;
      for (let i = 0; i < n; i++) {
        const fn = fns[i]!;
        fns[i] = undefined;
        try {
          fn();
        } catch (e) {
          rethrowLater(e);
        }
      }
      this.#preFlushSpare = fns;
    }
  }

  /**
   * Queue the tick's flush as a reaction on a settled promise: the same
   * microtask queue and place as queueMicrotask(), without the
   * AsyncResource, bound function and async scope Node makes per
   * queueMicrotask() call (docs/PERFORMANCE.md, Session 16, rr1k).
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    void SETTLED.then(this.#flushTask);
  }

  /**
   * The scheduled flush, made once: an arrow written inside #scheduleFlush
   * would make V8 allocate its context (holding `this`) on every call, the
   * many that return at once included: one young object per send.  What
   * it throws is rethrown from queueMicrotask: an 'uncaughtException', as
   * from a queueMicrotask() task, not a rejection of the reaction's promise.
   */
  readonly #flushTask = (): void => {
    this.#flushScheduled = false;
    try {
      this.submit();
    } catch (e) {
      rethrowLater(e);
    }
  };

  /**
   * Hand everything queued to the kernel now and dispatch whatever already
   * completed (normally automatic, once per tick).  One FFI call: zc_reap
   * submits, runs deferred task work and copies out finished records,
   * including records libzc produced inline (which wake no watcher);
   * cheaper than zc_submit followed by zc_reap (docs/PERFORMANCE.md).
   */
  submit(): void {
    if (!this.#ptr || this.#closed) return;
    if (this.#inReap) {
      // Called back from inside a dispatch (native code that drains the
      // microtask queue when it returns to JS, as TLS does): flush once the
      // reap is over, or what was queued meanwhile would wait for a wakeup.
      this.#flushAfterReap = true;
      return;
    }
    // What the pre-flush hooks issue goes out with this very flush: no
    // second flush scheduled for it.
    const scheduled = this.#flushScheduled;
    this.#flushScheduled = true;
    this.#runPreFlush();
    this.#flushScheduled = scheduled;
    this.stats.submits++;
    const chained = this.#chained;
    if (
      chained >= CHAINED_FLUSHES &&
      chained % CHAINED_FLUSHES === 0 && // the clock read every few flushes only
      performance.now() - this.#chainStart >= CHAIN_BUDGET_MS
    ) {
      // Each flush found records whose handlers queued more work and the
      // next flush, for CHAIN_BUDGET_MS now: a busy ring would keep the
      // process in one microtask chain, never back in Node's loop (no timers, no other I/O; an
      // accept loop or any Promise chain of several steps advancing one
      // step per flush).  Hand the work to the kernel now and take the
      // records in a later turn of the loop, or, when a turn of the loop
      // would find nothing to run (the watcher's due(): no timer due, no
      // immediate, no ready fd), from Node's tick queue: the nextTicks, the
      // rejections and the other microtasks have their turn, at the cost of
      // no turn of the loop (docs/PERFORMANCE.md, Session 20 udp20).
      this.#submitOnly();
      if (!this.#yieldScheduled) this.#yield();
      return;
    }
    // zc_flush: as zc_reap, but leaves a watched eventfd alone (one read(2)
    // less per tick; a watched ring fd needs no clearing); a stale wakeup
    // is cleared by the next #onReadable.
    if (this.#reapWith(false) > 0 && ++this.#chained === 2) {
      this.#chainStart = performance.now();
      process.nextTick(this.#chainEnded);
    }
    if (this.#lazyInReap) this.#lazyAfterFlush();
  }

  /**
   * A tick queued from a microtask runs once the microtask queue is empty:
   * flushes counted before it ran were one chain (see submit).
   */
  readonly #chainEnded = (): void => {
    this.#chained = 0;
  };

  /**
   * A chain's yield (see submit), its records left in libzc.  Nothing of
   * the loop's due: from the tick queue.  Else from the loop's next turn:
   * where the loop sleeps in this ring, the watcher's prepare handle reaps
   * them (it does every turn), so no immediate is made: Node's idle handle
   * for immediates stays started through the callback that ran one (the
   * whole of the next chain), and due() would read it as an immediate
   * pending.  Elsewhere an immediate takes them (libzc took the CQEs in:
   * the ring fd does not report them).
   */
  #yield(): void {
    const w = this.#watcher;
    if (w !== null && !w.due()) {
      this.#tickYields++;
      this.#yieldScheduled = true;
      process.nextTick(this.#afterYield);
      return;
    }
    this.#loopYields++;
    if (w !== null && this.loopSleep === 'ring') return;
    this.#yieldScheduled = true;
    setImmediate(this.#afterYield);
  }

  readonly #afterYield = (): void => {
    this.#yieldScheduled = false;
    this.#chained = 0;
    this.submit();
  };

  /** Queue and submit this tick's work; records stay in libzc for the next reap. */
  #submitOnly(): void {
    if (this.#batch.n > 0) this.#pushBatch(0);
    else this.#flushBatch(0, 0); // zc_flush
  }

  #onReadable(): void {
    this.#chained = 0;
    this.stats.wakeups++;
    if (this.#closeWake) {
      this.#closeWake();
      return;
    }
    this.reap();
  }

  /** A wakeup of the native watcher: zc_reap() already copied n records (n < 0: -errno). */
  #onReaped(n: number): void {
    this.#chained = 0;
    this.stats.wakeups++;
    this.#reapWith(true, n);
    if (this.#closeWake) this.#closeWake();
  }

  /** Reap and dispatch every finished record now (normally automatic). */
  reap(): number {
    return this.#reapWith(true);
  }

  /** reaped: the records the native watcher already put in the reap buffer (or -errno) */
  #reapWith(clearEventFd: boolean, reaped?: number): number {
    if (!this.#ptr || this.#inReap) return 0;
    const zc = this.#zc;
    const ptr = this.#ptrAt;
    const buf = this.#reapAt;
    let total = 0;
    this.#inReap = true;
    try {
      for (let first = true; ; first = false) {
        let n: number;
        if (first && reaped !== undefined) {
          // What this tick queued goes out with its scheduled flush.
          n = reaped;
        } else if (first && this.#batch.n > 0) {
          if (clearEventFd) {
            this.#pushBatch(0);
            n = zc.zc_reap_at(ptr, buf, REAP_BATCH);
          } else {
            n = this.#pushBatch(REAP_BATCH);
          }
        } else {
          n = clearEventFd ? zc.zc_reap_at(ptr, buf, REAP_BATCH) : this.#flushBatch(0, REAP_BATCH);
        }
        this.stats.reaps++;
        if (n < 0) {
          if (n !== -ERRNO.EAGAIN && n !== -ERRNO.EINTR && n !== -ERRNO.EBUSY) {
            this.#failAll(new ZcError({ errno: n, op: 'reap' }));
          }
          break;
        }
        this.#dispatch(n);
        total += n;
        if (n < REAP_BATCH) break;
      }
    } finally {
      this.#inReap = false;
    }
    if (this.#flushAfterReap) {
      this.#flushAfterReap = false;
      this.#scheduleFlush();
    }
    // A flush's (submit()'s) own are its caller's to run.
    if (this.#lazyInReap && clearEventFd) this.#lazyAfterReap();
    if (this.#backlog.length > 0) this.#drainBacklog();
    this.#updateRef();
    return total;
  }

  /**
   * Hand records 0..n-1 to their requests.  A handler that throws (a
   * caller's completion callback) does not cost the records after it
   * their settle: its exception is rethrown from a microtask of its own
   * (an uncaught exception, as before) and the loop goes on.
   */
  #dispatch(n: number): void {
    const c = this.#rec;
    const reqs = this.#reqs;
    const stats = this.stats;
    stats.records += n;
    let i = 0;
    while (i < n) {
      try {
        for (; i < n; i++) {
          c.at(i);
          const slot = c.udLo;
          const req = reqs.get(slot, c.udHi);
          if (!req) continue; // a forgotten request
          stats.kernelCqes += c.cqes;
          // Multishot requests (receive) yield records with MORE before their last one.
          if (!(c.flags & COMP_FLAGS.MORE)) {
            reqs.delete(slot);
            if (this.#unrefed.size) this.#unrefed.delete(req);
            if (req.standing) this.#standing--;
          }
          req.done(c);
        }
      } catch (e) {
        i++; // that record's request is settled (or gone): go on after it
        rethrowLater(e);
      }
    }
  }

  #standingFull(req: RingRequest): ZcError {
    const what = req.opName === 'accept' ? 'accept' : 'receive';
    return new ZcError({
      errno: ERRNO.ENOBUFS,
      op: req.opName,
      hint:
        `ring #${this.id} tracks ${this.maxRequests} requests (maxRequests) and ${this.#standing} of them are ` +
        `receives or accepts that stay in flight for their socket's life, its limit (the other ` +
        `${this.maxRequests - this.standingLimit} are kept for sends): this ${what} cannot start. Give the ring more ` +
        `(Ring.create({ entries, maxRequests }): maxRequests defaults to 2 x entries) or spread the sockets over ` +
        `several rings`,
      details: { maxRequests: this.maxRequests, standingLimit: this.standingLimit },
    });
  }

  #drainBacklog(): void {
    let issued = false;
    while (this.#backlog.length > 0 && !this.#closed) {
      const req = this.#backlog[0] as RingRequest;
      if (!this.#issue(req, false)) break;
      this.#backlog.shift();
      issued = true;
    }
    if (issued) this.#scheduleFlush();
  }

  /**
   * @internal Whether a long-lived request (a receive, an accept) keeps the
   * process alive while in flight (default true), like ref()/unref() of a
   * Node handle.
   */
  refRequest(req: RingRequest, ref: boolean): void {
    if (ref) this.#unrefed.delete(req);
    else this.#unrefed.add(req);
    this.#updateRef();
  }

  #updateRef(): void {
    const busy = this.#reqs.size + this.#backlog.length > this.#unrefed.size;
    if (busy !== this.#refed && this.#watcher) {
      if (busy) this.#watcher.ref();
      else this.#watcher.unref();
      this.#refed = busy;
    }
  }

  #failAll(err: ZcError): void {
    const failed = (r: RingRequest): ZcError => new ZcError({ errno: err.errno, op: r.opName, hint: err.hint });
    // What the batch holds never reached libzc: its requests fail with the
    // rest, its chunk releases are done directly (nothing held back).
    this.#dropBatch(failed);
    const reqs = [...this.#reqs.values(), ...this.#backlog];
    this.#reqs.clear();
    this.#backlog = [];
    this.#unrefed.clear();
    this.#standing = 0;
    settleEach(reqs, (r) => r.fail(failed(r)));
  }

  /**
   * Close the ring: no new requests from now on; what is in flight is
   * canceled, the ring's sockets are reset and closed, every Promise
   * settles (records that arrive resolve/reject as usual, the rest reject
   * with ECANCELED), its pools are destroyed (unpinned), the poll handle
   * stopped and the ring freed.  Resolves when all of that is done.  With
   * nothing in flight it all happens before close() returns; otherwise the
   * kernel's last records are awaited on the event loop (never by blocking
   * it), at most {@link CLOSE_WAIT_MS}.  Idempotent: every call returns the
   * same Promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const ptr = this.#ptr;
    if (!ptr) return;
    const zc = this.#zc;
    this.#closed = true;
    // Coalesced sends not issued yet: they fail now (ECANCELED), as the ring is closed.
    this.#runPreFlush();
    this.#dropBatch((r) => new ZcError({ errno: ERRNO.ECANCELED, op: r.opName, hint: 'the ring was closed before the request was issued' }));
    const backlog = this.#backlog;
    this.#backlog = [];
    settleEach(backlog, (r) =>
      r.fail(new ZcError({ errno: ERRNO.ECANCELED, op: r.opName, hint: 'the ring was closed before the request was issued' })),
    );
    const res = [...this.#resources];
    this.#resources.clear();
    // Queued requests finish here (ECANCELED), in-flight ones are canceled.
    zc.zc_cancel_all(ptr);
    // Reset and close the sockets: requests in flight hold their own file
    // references, and the reset drops unsent data, so the kernel releases
    // zero-copy buffers (their notifications arrive) instead of keeping
    // them for a peer that may never read.
    settleEach(res, (r) => {
      if (!isPool(r)) r.destroyFromRing();
    });
    zc.zc_submit(ptr);
    this.#reapWith(true);
    const deadline = Date.now() + CLOSE_WAIT_MS;
    while (zc.zc_ring_pending(ptr) > 0 && Date.now() < deadline) {
      // The watched fd wakes us for the last records (the poll handle is still
      // there and referenced while requests are pending); a short timer
      // covers a wakeup that does not come.
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 20);
        this.#closeWake = done;
        function done(): void {
          clearTimeout(t);
          resolve();
        }
      });
      this.#closeWake = null;
      this.#reapWith(true);
    }
    const rest = [...this.#reqs.values()];
    this.#reqs.clear();
    this.#standing = 0;
    settleEach(rest, (r) =>
      r.fail(new ZcError({ errno: ERRNO.ECANCELED, op: r.opName, hint: 'the ring was closed while the request was in flight' })),
    );
    // Pools last: destroying them needs every buffer back.
    settleEach(res, (r) => {
      if (isPool(r)) r.destroyFromRing();
    });
    this.stopWatching();
    // Nothing to wait for (or the bound passed): libzc retires what the
    // kernel may still hold instead of freeing it.
    zc.zc_ring_destroy_timeout(ptr, 0);
    this.#ptr = null;
  }

  /**
   * @internal A worker thread exits with the ring open: no JavaScript runs
   * after this, so close() cannot wait.  Cancel what is in flight, close the
   * sockets, and let libzc retire what the kernel still holds.
   */
  destroyAtExit(): void {
    const ptr = this.#ptr;
    this.stopWatching();
    if (!ptr) return;
    this.#closed = true;
    const zc = this.#zc;
    zc.zc_cancel_all(ptr);
    const res = [...this.#resources];
    this.#resources.clear();
    settleEach(res, (r) => {
      if (!isPool(r)) r.destroyFromRing();
    });
    zc.zc_submit(ptr);
    zc.zc_ring_destroy_timeout(ptr, 0); // its pools too
    this.#ptr = null;
  }

  /** `using ring = Ring.create()`: starts close() (await it with `await using`). */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** `await using ring = Ring.create()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Register a buffer pool with this ring (see {@link BufferPool.create}). */
  createPool(options?: BufferPoolOptionsInput): BufferPool {
    return BufferPool.create(this, options);
  }

  /** Reset the counters in `stats`. */
  resetStats(): void {
    for (const k of Object.keys(this.stats) as (keyof RingStats)[]) this.stats[k] = 0;
  }
}

function isPool(r: RingResource): boolean {
  return (r as { isPool?: boolean }).isPool === true;
}

/** Decode how a send's data left: 'used' (zero-copy), 'copied', or 'unknown'. */
export function zeroCopyOf(c: Completion, requestedZc: boolean): 'used' | 'copied' | 'unknown' {
  if (c.flags & COMP_FLAGS.ZC_COPIED) return 'copied';
  if (c.flags & COMP_FLAGS.ZC_USED) return 'used';
  if (!requestedZc || c.op === OP.SEND) return 'copied';
  return 'unknown';
}
