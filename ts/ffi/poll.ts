// SPDX-License-Identifier: MIT
/**
 * A ring's watcher: a poll handle on the ring fd, or on a DEFER_TASKRUN
 * ring's eventfd (Ring#watchedFd).  Two implementations:
 *
 *  - `native`: zc_poll.node (libzc/node/, mapped in zc_poll.h), a
 *    Node-API addon next to the libzc.so in use (libzc/build/ from source,
 *    dist/prebuilds/<platform>/ in the package).  Its uv_poll_t calls zc_reap() in C and enters
 *    JavaScript once per wakeup with the record count, inside a callback
 *    scope: Node drains nextTicks and microtasks after it, as after its own
 *    I/O.  The ring's per-tick flush (zc_flush_batch) goes through it too
 *    (RingWatcher.flusher): a direct Node-API call instead of koffi's.
 *  - `koffi`: koffi's poll handle (watchReadable in libzc.ts); the JS
 *    callback reaps with a koffi call and schedules a setImmediate so the
 *    microtasks run.  Used when the addon is missing or does not load, or
 *    with URING_ZC_NATIVE_POLL=0.
 *
 * {@link pollWatcherKind} says which one rings use (`Ring#watcher`, probe).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import koffi from 'koffi';
import { openLibrary } from './load.ts';
import { watchReadable, type FdWatcher } from './libzc.ts';
import { ERRNO } from './abi.gen.ts';
import { ZcError } from '../errors.ts';

/** The addon's file name, next to libzc.so. */
export const POLL_ADDON = 'zc_poll.node';

export interface PollAddon {
  watch(
    fd: number,
    reapFn: number,
    ring: number,
    out: number,
    max: number,
    cb: (n: number) => void,
    destroyFn: number,
  ): object;
  ref(h: object): void;
  unref(h: object): void;
  stop(h: object): void;
  close(h: object): void;
  view(addr: bigint | number, len: number): ArrayBuffer;
  own(h: object, fd: number): void;
  disown(h: object, fd: number): void;
  sleepIn(h: object, sleepFn: number, adaptive: number): boolean;
  sleepOut(h: object): boolean;
  sleepState(h: object): number;
  sleepIdle(h: object): true | string;
  flusher(h: object, flushBatchFn: number, ops: Uint8Array, rcs: Int32Array): FlushBatch;
  doorbell(h: object, fd: number, direct: number): boolean;
  bellOff(h: object, fd: number): void;
  bells(h: object): Bells;
  directs(h: object): Directs;
  due(h: object): boolean;
}

/**
 * A native watcher's doorbell counters: [wakeups by the bell, drains of it
 * that found no record, wakeups of the ring fd's handle that delivered
 * records] (with the bell polled, a receive's records arrive by the bell).
 */
export type Bells = [bellWakeups: number, bellDrains: number, ringDeliveries: number];

/**
 * A native watcher's direct doorbell handles (one per receiving socket, in
 * libuv's epoll set): [open, polled now (the loop sleeps in epoll), libuv's
 * epoll fd (-1: the watcher is closed)].
 */
export type Directs = [open: number, polled: number, loopEpollFd: number];

/**
 * zc_flush_batch(ring, ops, n, rcs, out, max) of a watcher's ring, its
 * records buffer and the batch arrays given to {@link RingWatcher.flusher}:
 * the records copied, or -errno.  n 0 is zc_flush(ring, out, max).
 */
export type FlushBatch = (n: number, max: number) => number;

/** Which watcher rings use, and why the native one is not used (else null). */
export interface PollWatcherInfo {
  kind: 'native' | 'koffi';
  path: string;
  reason: string | null;
}

let loaded:
  | { addon: PollAddon | null; reapFn: number; destroyFn: number; sleepFn: number; flushBatchFn: number; info: PollWatcherInfo }
  | undefined;

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const { lib, path: libPath } = openLibrary();
  const path = join(dirname(libPath), POLL_ADDON);
  const fallback = (reason: string): NonNullable<typeof loaded> =>
    (loaded = { addon: null, reapFn: 0, destroyFn: 0, sleepFn: 0, flushBatchFn: 0, info: { kind: 'koffi', path, reason } });
  if (process.env['URING_ZC_NATIVE_POLL'] === '0') return fallback('URING_ZC_NATIVE_POLL=0');
  if (!existsSync(path)) return fallback(`${POLL_ADDON} not found next to ${libPath}`);
  let addon: PollAddon;
  let reapFn: number;
  let destroyFn: number;
  let sleepFn: number;
  let flushBatchFn: number;
  try {
    const m = { exports: {} as PollAddon };
    process.dlopen(m, path);
    addon = m.exports;
    if (typeof addon.watch !== 'function') return fallback(`${path} is not uring-zc's poll addon`);
    // zc_reap's own address: the addon calls it without linking libzc.
    reapFn = Number(koffi.address(lib.symbol('zc_reap', 'uint8_t')));
    // zc_ring_destroy_timeout's: the addon destroys the ring of a handle
    // still open when the thread's environment goes away (terminate()).
    destroyFn = Number(koffi.address(lib.symbol('zc_ring_destroy_timeout', 'uint8_t')));
    sleepFn = Number(koffi.address(lib.symbol('zc_ring_sleep', 'uint8_t')));
    // zc_flush_batch's: the ring's per-tick flush, called by the addon.
    flushBatchFn = Number(koffi.address(lib.symbol('zc_flush_batch', 'uint8_t')));
  } catch (e) {
    return fallback(`cannot load ${path}: ${(e as Error).message}`);
  }
  loaded = { addon, reapFn, destroyFn, sleepFn, flushBatchFn, info: { kind: 'native', path, reason: null } };
  return loaded;
}

/**
 * An ArrayBuffer over len bytes of native memory at addr (a pool's or a
 * receive area's), no copy.  Through the addon when it is loaded: koffi's
 * view() type-checks a koffi pointer through Node-API, which fails once a
 * worker's terminate() started, and koffi then aborts the process.
 */
export function memoryView(addr: bigint, len: number): ArrayBuffer {
  const { addon } = load();
  if (addon) {
    const ab: unknown = addon.view(addr, len);
    // Node-API refuses external memory where V8's sandbox is on (some
    // embedders): the addon then returns nothing.
    if (!(ab instanceof ArrayBuffer)) {
      throw new ZcError({
        errno: ERRNO.EOPNOTSUPP,
        op: 'memoryView',
        hint: `this runtime refused an ArrayBuffer over ${len} bytes of native memory (external buffers not allowed): run under Node.js`,
      });
    }
    return ab;
  }
  // memmove(p, p, 0) returns p: a koffi pointer from an address
  koffiPtr ??= koffi.load('libc.so.6').func('void *memmove(uintptr_t d, uintptr_t s, size_t n)');
  return koffi.view((koffiPtr as (d: bigint, s: bigint, n: number) => object)(addr, addr, 0), len) as ArrayBuffer;
}
let koffiPtr: unknown;

/** @internal The loaded addon (tests: its argument checks), or null. */
export function pollAddon(): PollAddon | null {
  return load().addon;
}

/** Which watcher rings of this process use (loads libzc and the addon once). */
export function pollWatcherKind(): PollWatcherInfo {
  return load().info;
}

/** A ring's watcher; `native` when records arrive already reaped. */
export interface RingWatcher extends FdWatcher {
  readonly native: boolean;
  /**
   * fd is one of the ring's sockets: closed with the ring should the
   * thread's environment go away with the watcher open (native only).
   * disown() it before starting to close it, never after.
   */
  own(fd: number): void;
  disown(fd: number): void;
  /**
   * From now on the thread's event loop sleeps in this ring
   * (RingOptions.loopWait 'ring'; zc_poll.node's sleepIn): false when
   * that cannot be had (the koffi watcher), and nothing changed.
   * adaptive (loopWait 'auto'): only while the loop's recent wakeups were
   * mostly the ring's, in epoll otherwise.
   */
  sleepIn(adaptive: boolean): boolean;
  /** The loop no longer sleeps in this ring (another takes it over): false if it did not. */
  sleepOut(): boolean;
  /**
   * Where the loop sleeps now: 'ring', 'epoll' (adaptive, for now) or null
   * (no sleepIn), and how often an adaptive sleep switched between the two.
   */
  sleepState(): { at: 'ring' | 'epoll' | null; switches: number };
  /**
   * true when the loop sleeps in this ring (after {@link sleepIn}) and the
   * sleep counts as libuv's idle time, so that Node's
   * eventLoopUtilization() sees it (zc_poll.node's loop_idle.c, which
   * checks libuv's private fields at run time before it writes any), else
   * why not.
   */
  sleepIdle(): true | string;
  /**
   * The ring's flush through the addon (zc_poll.node's flusher: a direct
   * Node-API call of two numbers), bound to ops (struct zc_batch_op
   * descriptors) and rcs (their results), which it keeps alive; null for
   * the koffi watcher (use koffi's zc_flush_batch_at).  Once per watcher.
   * After close() the function throws: flush through koffi then.
   */
  flusher(ops: Uint8Array, rcs: Int32Array): FlushBatch | null;
  /**
   * fd, a socket of the ring with a receive in flight, wakes the loop's
   * epoll_pwait with an event of its own when data arrives while the loop
   * sleeps in epoll (zc_poll.node's doorbell: no EINTR'd wait per wakeup;
   * sleeping in the ring, the ring's sleep wakes for it); false when it
   * cannot (the koffi watcher, a closed watcher): the ring fd reports it then.
   * direct: by a poll handle of its own in libuv's epoll set, whose wakeup
   * carries the socket's sync hint (WF_SYNC), else through the watcher's
   * nested epoll set; close it with {@link bellOff}.
   */
  doorbell(fd: number, direct: boolean): boolean;
  /** fd's receive is over, or its fd about to close: its direct doorbell handle closes (leaves libuv's epoll set). */
  bellOff(fd: number): void;
  /**
   * [wakeups by the doorbell, those that found no record, wakeups of
   * the ring fd that delivered records] (native only, else null)
   */
  bells(): Bells | null;
  /** The direct doorbell handles (native only, else null). */
  directs(): Directs | null;
  /**
   * Whether a turn of the thread's event loop would find work now: a timer
   * due, a referenced immediate, a ready fd of libuv's epoll set (and the
   * like: zc_poll.node's due, which also brings the loop's clock up to
   * date); always true for the koffi watcher, which cannot tell.
   */
  due(): boolean;
}

/**
 * Watch a ring's fd (the ring fd or its eventfd).  With the addon, onReaped(n) runs per wakeup
 * after zc_reap(ring, out, max) copied n records to out (n < 0: -errno);
 * without it, onReadable() runs and reaps itself.
 *
 * With the addon, a watcher still open when the thread's environment goes
 * away (a worker stopped by terminate(): no JavaScript runs) destroys the
 * ring natively.  So the ring must be destroyed only after close(), never
 * before: an open watcher means a live ring.
 */
export function watchRing(
  fd: number,
  ring: number,
  out: number,
  max: number,
  onReaped: (n: number) => void,
  onReadable: () => void,
): RingWatcher {
  const { addon, reapFn, destroyFn, sleepFn, flushBatchFn } = load();
  if (!addon) {
    const w = watchReadable(fd, onReadable);
    const none = (): void => {};
    return {
      native: false,
      stop: w.stop,
      close: w.close,
      ref: w.ref,
      unref: w.unref,
      own: none,
      disown: none,
      sleepIn: () => false,
      sleepIdle: () => 'the koffi watcher: the loop does not sleep in a ring',
      sleepOut: () => false,
      sleepState: () => ({ at: null, switches: 0 }),
      flusher: () => null,
      doorbell: () => false,
      bellOff: none,
      bells: () => null,
      directs: () => null,
      due: () => true,
    };
  }
  const h = addon.watch(fd, reapFn, ring, out, max, onReaped, destroyFn);
  return {
    native: true,
    stop: () => addon.stop(h),
    close: () => addon.close(h),
    ref: () => addon.ref(h),
    unref: () => addon.unref(h),
    own: (fd) => addon.own(h, fd),
    disown: (fd) => addon.disown(h, fd),
    sleepIn: (adaptive) => addon.sleepIn(h, sleepFn, adaptive ? 1 : 0),
    sleepOut: () => addon.sleepOut(h),
    sleepState: () => {
      const v = addon.sleepState(h);
      return { at: (['ring', 'epoll', null] as const)[2 - (v & 3)] ?? null, switches: v >>> 2 };
    },
    sleepIdle: () => addon.sleepIdle(h),
    flusher: (ops, rcs) => addon.flusher(h, flushBatchFn, ops, rcs),
    doorbell: (fd, direct) => addon.doorbell(h, fd, direct ? 1 : 0),
    bellOff: (fd) => addon.bellOff(h, fd),
    bells: () => addon.bells(h),
    directs: () => addon.directs(h),
    due: () => addon.due(h),
  };
}
