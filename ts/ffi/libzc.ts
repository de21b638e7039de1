// SPDX-License-Identifier: MIT
/**
 * koffi declarations of libzc (libzc/libzc.h) and the few libc calls the
 * TypeScript layer needs.  Declarations only: no policy lives here.  Which
 * libzc.so is used, and opening it, is ts/ffi/load.ts.
 */
import koffi from 'koffi';
import { openLibrary } from './load.ts';

export { LibraryLoadError, libraryPath } from './load.ts';

/**
 * A libzc object (zc_ring, zc_pool, zc_rx) by its address, a bigint (koffi
 * takes a bigint for a pointer argument as is, but cuts a number to 32
 * bits: never pass a number).  A koffi pointer object would be
 * type-checked through Node-API on every call, which fails once a worker's
 * terminate() started (Node-API refuses calls into JS from then on, before
 * V8 stops the thread's JavaScript): koffi throws, the throw fails as well,
 * and the whole process aborts (koffi 2.16).
 */
export type NativePointer = bigint;

/**
 * koffi types mirroring the C structs; a test compares them with abi.gen.ts.
 * No call takes or returns them any more (structs go as bytes, structs.ts):
 * they remain as a second reading of the layouts, by koffi's rules.
 */
export const types = {
  zc_ring_config: koffi.struct('zc_ring_config', {
    sq_entries: 'uint32_t',
    cq_entries: 'uint32_t',
    flags: 'uint32_t',
    unified: 'uint32_t',
    max_requests: 'uint32_t',
    max_fixed_buffers: 'uint32_t',
    reserved: koffi.array('uint32_t', 2),
  }),
  zc_completion: koffi.struct('zc_completion', {
    user_data: 'uint64_t',
    res: 'int32_t',
    flags: 'uint32_t',
    aux: 'uint64_t',
    op: 'uint16_t',
    cqes: 'uint16_t',
    aux2: 'uint32_t',
  }),
  zc_pool_config: koffi.struct('zc_pool_config', {
    count: 'uint32_t',
    size: 'uint32_t',
    flags: 'uint32_t',
    reserved: 'uint32_t',
  }),
  zc_probe: koffi.struct('zc_probe', {
    caps: 'uint32_t',
    setup_errno: 'int32_t',
    features: 'uint32_t',
    io_uring_disabled: 'int32_t',
    memlock_cur: 'uint64_t',
    memlock_max: 'uint64_t',
    liburing_major: 'uint32_t',
    liburing_minor: 'uint32_t',
    page_size: 'uint32_t',
    last_op: 'uint32_t',
    kernel_release: koffi.array('char', 65, 'String'),
    reserved: koffi.array('char', 63),
  }),
  zc_sendfile_config: koffi.struct('zc_sendfile_config', {
    pipe_size: 'uint32_t',
    splice_depth: 'uint32_t',
    buf_size: 'uint32_t',
    buf_count: 'uint32_t',
    read_depth: 'uint32_t',
    idle_pipes: 'uint32_t',
    reserved: koffi.array('uint32_t', 2),
  }),
  zc_sendfile_stats: koffi.struct('zc_sendfile_stats', {
    transfers: 'uint64_t',
    bytes_splice: 'uint64_t',
    bytes_read: 'uint64_t',
    bytes_direct: 'uint64_t',
    splice_refused: 'uint64_t',
    direct_refused: 'uint64_t',
    active: 'uint32_t',
    pipes: 'uint32_t',
    pipes_idle: 'uint32_t',
    pipe_size: 'uint32_t',
    bufs: 'uint32_t',
    bufs_free: 'uint32_t',
    releasing: 'uint32_t',
    reserved: 'uint32_t',
  }),
  iovec: koffi.struct('iovec', {
    iov_base: 'void *',
    iov_len: 'size_t',
  }),
  zc_ring: koffi.opaque('zc_ring'),
  zc_pool: koffi.opaque('zc_pool'),
};

/**
 * A `T **out` argument as 8 bytes (declared `void *out`), not a koffi out
 * array: koffi writes an out array back after the native call returns, and
 * when a worker's terminate() landed during the call (zc_rx_create maps
 * and registers memory: it takes a while) that write fails and the process
 * aborts (koffi 2.16; see structs.ts).  After the call, {@link
 * PointerOut.get} reads the address.
 */
export class PointerOut {
  readonly bytes = new BigUint64Array(1);
  /** type: what the pointer points to (documentation only) */
  constructor(readonly type: 'zc_ring' | 'zc_pool' | 'zc_rx') {}
  /** the pointer the call wrote, or null */
  get(): NativePointer | null {
    const a = this.bytes[0]!;
    return a === 0n ? null : a;
  }
}

/** JS shape of struct zc_ring_config. */
export interface RingConfigStruct {
  sq_entries: number;
  cq_entries: number;
  flags: number;
  unified: number;
  max_requests: number;
  max_fixed_buffers: number;
  reserved: [number, number];
}

/** JS shape of struct zc_pool_config. */
export interface PoolConfigStruct {
  count: number;
  size: number;
  flags: number;
  reserved: number;
}

/** JS shape of struct zc_sendfile_config. */
export interface SendfileConfigStruct {
  pipe_size: number;
  splice_depth: number;
  buf_size: number;
  buf_count: number;
  read_depth: number;
  idle_pipes: number;
  reserved: [number, number];
}

/** JS shape of struct zc_sendfile_stats as koffi decodes it. */
export interface SendfileStatsStruct {
  transfers: number | bigint;
  bytes_splice: number | bigint;
  bytes_read: number | bigint;
  bytes_direct: number | bigint;
  splice_refused: number | bigint;
  direct_refused: number | bigint;
  active: number;
  pipes: number;
  pipes_idle: number;
  pipe_size: number;
  bufs: number;
  bufs_free: number;
  releasing: number;
}

/** JS shape of struct zc_probe as koffi decodes it. */
export interface ProbeStruct {
  caps: number;
  setup_errno: number;
  features: number;
  io_uring_disabled: number;
  memlock_cur: number | bigint;
  memlock_max: number | bigint;
  liburing_major: number;
  liburing_minor: number;
  page_size: number;
  last_op: number;
  kernel_release: string;
}

/** Typed view of the libzc functions (see libzc.h for each contract). */
export interface LibZc {
  path: string;
  /**
   * Struct arguments are Uint8Arrays laid out by the generated layout
   * (ts/ffi/structs.ts: encodeStruct / decodeStruct), never koffi structs:
   * see structs.ts for the abort that avoids.
   */
  zc_ring_create(cfg: Uint8Array, out: BigUint64Array): number;
  zc_ring_destroy(r: NativePointer): void;
  zc_ring_destroy_timeout(r: NativePointer, timeoutMs: number): void;
  zc_ring_event_fd(r: NativePointer): number;
  zc_ring_fd(r: NativePointer): number;
  zc_ring_poll_ring_fd(r: NativePointer): number;
  zc_ring_features(r: NativePointer): number;
  zc_ring_unified_native(r: NativePointer): number;
  zc_ring_sendv_fixed(r: NativePointer): number;
  /** 1 registered, 0 not asked, -errno refused (the ring runs on its plain fd) */
  zc_ring_registered_fd(r: NativePointer): number;
  zc_ring_pending(r: NativePointer): number;
  zc_ring_max_requests(r: NativePointer): number;
  zc_submit(r: NativePointer): number;
  /** out: a Buffer of max * 32 bytes, filled with struct zc_completion records. */
  zc_reap(r: NativePointer, out: Uint8Array, max: number): number;
  zc_flush(r: NativePointer, out: Uint8Array, max: number): number;
  /** ops: n struct zc_batch_op; rcs: n int32 results; out: max records. */
  zc_flush_batch(r: NativePointer, ops: Uint8Array, n: number, rcs: Int32Array, out: Uint8Array, max: number): number;
  /**
   * zc_reap, zc_flush and zc_flush_batch with every pointer given as its
   * address (a number, from `address`/`addressOf`): koffi passes numbers
   * for about a third of the cost of a pointer object and buffers
   * (docs/PERFORMANCE.md).  The memory must stay allocated during the call.
   */
  zc_reap_at(r: number, out: number, max: number): number;
  zc_flush_at(r: number, out: number, max: number): number;
  zc_flush_batch_at(r: number, ops: number, n: number, rcs: number, out: number, max: number): number;
  zc_wait(r: NativePointer, out: Uint8Array, max: number, min: number, timeoutMs: number): number;
  zc_cancel_all(r: NativePointer): number;
  zc_socket(r: NativePointer, domain: number, type: number, protocol: number, userData: number): number;
  zc_bind(r: NativePointer, fd: number, addr: Uint8Array, addrlen: number, userData: number): number;
  zc_listen(r: NativePointer, fd: number, backlog: number, userData: number): number;
  zc_accept(r: NativePointer, fd: number, userData: number): number;
  zc_accept_multishot(r: NativePointer, fd: number, userData: number): number;
  zc_recv_buf(r: NativePointer, fd: number, buf: Uint8Array, len: number, userData: number): number;
  zc_connect(r: NativePointer, fd: number, addr: Uint8Array, addrlen: number, userData: number): number;
  zc_shutdown(r: NativePointer, fd: number, how: number, userData: number): number;
  zc_close(r: NativePointer, fd: number, userData: number): number;
  zc_sock_forget(r: NativePointer, fd: number): number;
  zc_sock_abort(r: NativePointer, fd: number): number;
  zc_sock_opened(r: NativePointer, fd: number): number;
  zc_send(r: NativePointer, fd: number, buf: Uint8Array, len: number, flags: number, userData: number): number;
  zc_send_fixed(
    r: NativePointer, fd: number, pool: NativePointer, buf: number, off: number, len: number,
    flags: number, userData: number,
  ): number;
  /** iov: a Uint8Array holding iovcnt struct iovec (16 bytes each). */
  zc_sendmsg(
    r: NativePointer, fd: number, iov: Uint8Array, iovcnt: number, addr: Uint8Array | null,
    addrlen: number, flags: number, userData: number,
  ): number;
  /** spans: a Uint8Array holding n struct zc_span (16 bytes each). */
  zc_sendv_fixed(
    r: NativePointer, fd: number, pool: NativePointer, spans: Uint8Array, n: number, flags: number, userData: number,
  ): number;
  /** off and len: 64-bit (bigint, or a number up to 2^53). */
  zc_sendfile(
    r: NativePointer, sockfd: number, filefd: number, off: number | bigint, len: number | bigint,
    flags: number, userData: number,
  ): number;
  zc_sendfile_cancel(r: NativePointer, userData: number): number;
  /** cfg: struct zc_sendfile_config (encodeStruct) */
  zc_sendfile_configure(r: NativePointer, cfg: Uint8Array): number;
  /** out: struct zc_sendfile_stats (decodeStruct) */
  zc_sendfile_stats(r: NativePointer, out: Uint8Array): number;
  /** cfg: struct zc_pool_config (encodeStruct) */
  zc_pool_create(r: NativePointer, cfg: Uint8Array, out: BigUint64Array): number;
  zc_pool_destroy(p: NativePointer): number;
  /** the pool's address (0: none) */
  zc_pool_base(p: NativePointer): number | bigint;
  zc_pool_inflight(p: NativePointer): number;
  zc_pool_buf_inflight(p: NativePointer, buf: number): number;
  zc_pool_region_buffers(p: NativePointer): number;
  /** out: struct zc_probe (decodeStruct) */
  zc_probe(out: Uint8Array): number;
  zc_version(): string;
}

/** libc calls used by the TypeScript layer (all synchronous, non-blocking uses). */
export interface LibC {
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, n: number): number;
  /** recv(2); with MSG_TRUNC a TCP socket discards up to n bytes without copying them */
  recv(fd: number, buf: Uint8Array, n: number, flags: number): number;
  shutdown(fd: number, how: number): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  socketpair(domain: number, type: number, protocol: number, sv: Int32Array): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  getsockname(fd: number, addr: Uint8Array, addrlen: Int32Array): number;
  getpeername(fd: number, addr: Uint8Array, addrlen: Int32Array): number;
  getsockopt(fd: number, level: number, name: number, val: Int32Array | Uint8Array, len: Int32Array): number;
  setsockopt(fd: number, level: number, name: number, val: Int32Array | Uint8Array, len: number): number;
  /** address of the first byte of a Uint8Array's memory */
  addressOf(data: Uint8Array): bigint;
  /** address of a libzc object (NativePointer is its address already) */
  address(p: NativePointer): bigint;
  /** errno of the last failing libc call */
  errno(): number;
  /** munmap(2) of an address range (a retired pool's zero pages) */
  munmap(addr: bigint, len: number): number;
  /** if_nametoindex(3): 0 when there is no such interface */
  ifNameToIndex(name: string): number;
}

let cached: { zc: LibZc; c: LibC } | undefined;

type KoffiFn = (...args: unknown[]) => unknown;

/** Load libzc (load.ts) and libc once; throws LibraryLoadError with the fix. */
export function loadNative(): { zc: LibZc; c: LibC } {
  if (cached) return cached;
  const { lib, path } = openLibrary();
  const fn = (decl: string): KoffiFn => lib.func(decl) as KoffiFn;
  const zc = {
    path,
    zc_ring_create: fn('int zc_ring_create(const void *cfg, void *out)'),
    zc_ring_destroy: fn('void zc_ring_destroy(zc_ring *r)'),
    zc_ring_destroy_timeout: fn('void zc_ring_destroy_timeout(zc_ring *r, int timeout_ms)'),
    zc_ring_event_fd: fn('int zc_ring_event_fd(const zc_ring *r)'),
    zc_ring_fd: fn('int zc_ring_fd(const zc_ring *r)'),
    zc_ring_poll_ring_fd: fn('int zc_ring_poll_ring_fd(zc_ring *r)'),
    zc_ring_features: fn('uint32_t zc_ring_features(const zc_ring *r)'),
    zc_ring_unified_native: fn('int zc_ring_unified_native(const zc_ring *r)'),
    zc_ring_sendv_fixed: fn('int zc_ring_sendv_fixed(const zc_ring *r)'),
    zc_ring_registered_fd: fn('int zc_ring_registered_fd(const zc_ring *r)'),
    zc_ring_pending: fn('uint32_t zc_ring_pending(const zc_ring *r)'),
    zc_ring_max_requests: fn('uint32_t zc_ring_max_requests(const zc_ring *r)'),
    zc_submit: fn('int zc_submit(zc_ring *r)'),
    zc_reap: fn('int zc_reap(zc_ring *r, void *out, uint32_t max)'),
    zc_flush: fn('int zc_flush(zc_ring *r, void *out, uint32_t max)'),
    zc_flush_batch: fn(
      'int zc_flush_batch(zc_ring *r, const void *ops, uint32_t n, void *rcs, void *out, uint32_t max)',
    ),
    zc_reap_at: fn('int zc_reap(uintptr_t r, uintptr_t out, uint32_t max)'),
    zc_flush_at: fn('int zc_flush(uintptr_t r, uintptr_t out, uint32_t max)'),
    zc_flush_batch_at: fn('int zc_flush_batch(uintptr_t r, uintptr_t ops, uint32_t n, uintptr_t rcs, uintptr_t out, uint32_t max)'),
    zc_wait: fn('int zc_wait(zc_ring *r, void *out, uint32_t max, uint32_t min, int timeout_ms)'),
    zc_cancel_all: fn('int zc_cancel_all(zc_ring *r)'),
    zc_socket: fn('int zc_socket(zc_ring *r, int domain, int type, int protocol, uint64_t user_data)'),
    zc_bind: fn('int zc_bind(zc_ring *r, int fd, const void *addr, uint32_t addrlen, uint64_t user_data)'),
    zc_listen: fn('int zc_listen(zc_ring *r, int fd, int backlog, uint64_t user_data)'),
    zc_accept: fn('int zc_accept(zc_ring *r, int fd, uint64_t user_data)'),
    zc_accept_multishot: fn('int zc_accept_multishot(zc_ring *r, int fd, uint64_t user_data)'),
    zc_recv_buf: fn('int zc_recv_buf(zc_ring *r, int fd, void *buf, uint32_t len, uint64_t user_data)'),
    zc_connect: fn('int zc_connect(zc_ring *r, int fd, const void *addr, uint32_t addrlen, uint64_t user_data)'),
    zc_shutdown: fn('int zc_shutdown(zc_ring *r, int fd, int how, uint64_t user_data)'),
    zc_close: fn('int zc_close(zc_ring *r, int fd, uint64_t user_data)'),
    zc_sock_forget: fn('int zc_sock_forget(zc_ring *r, int fd)'),
    zc_sock_abort: fn('int zc_sock_abort(zc_ring *r, int fd)'),
    zc_sock_opened: fn('int zc_sock_opened(zc_ring *r, int fd)'),
    zc_send: fn('int zc_send(zc_ring *r, int fd, const void *buf, uint64_t len, uint32_t flags, uint64_t user_data)'),
    zc_send_fixed: fn(
      'int zc_send_fixed(zc_ring *r, int fd, zc_pool *pool, uint32_t buf, uint32_t off, uint32_t len, uint32_t flags, uint64_t user_data)',
    ),
    zc_sendmsg: fn(
      'int zc_sendmsg(zc_ring *r, int fd, const void *iov, uint32_t iovcnt, const void *addr, uint32_t addrlen, uint32_t flags, uint64_t user_data)',
    ),
    zc_sendv_fixed: fn(
      'int zc_sendv_fixed(zc_ring *r, int fd, zc_pool *pool, const void *spans, uint32_t n, uint32_t flags, uint64_t user_data)',
    ),
    zc_sendfile: fn(
      'int zc_sendfile(zc_ring *r, int sockfd, int filefd, uint64_t off, uint64_t len, uint32_t flags, uint64_t user_data)',
    ),
    zc_sendfile_cancel: fn('int zc_sendfile_cancel(zc_ring *r, uint64_t user_data)'),
    zc_sendfile_configure: fn('int zc_sendfile_configure(zc_ring *r, const void *cfg)'),
    zc_sendfile_stats: fn('int zc_sendfile_stats(const zc_ring *r, void *out)'),
    zc_pool_create: fn('int zc_pool_create(zc_ring *r, const void *cfg, void *out)'),
    zc_pool_destroy: fn('int zc_pool_destroy(zc_pool *p)'),
    zc_pool_base: fn('uintptr_t zc_pool_base(const zc_pool *p)'),
    zc_pool_inflight: fn('uint32_t zc_pool_inflight(const zc_pool *p)'),
    zc_pool_buf_inflight: fn('uint32_t zc_pool_buf_inflight(const zc_pool *p, uint32_t buf)'),
    zc_pool_region_buffers: fn('uint32_t zc_pool_region_buffers(const zc_pool *p)'),
    zc_probe: fn('int zc_probe(void *out)'),
    zc_version: fn('const char *zc_version(void)'),
  } as unknown as LibZc;

  const libc = koffi.load('libc.so.6');
  const cfn = (decl: string): KoffiFn => libc.func(decl) as KoffiFn;
  const fcntl3 = cfn('int fcntl(int fd, int cmd, ...)');
  // memmove(p, p, 0) returns p: the address koffi passes for a Uint8Array.
  // (as a number: a koffi pointer object would be made, and tagged through
  // Node-API, which fails once a worker's terminate() started: see NativePointer)
  const memmove0 = cfn('uintptr_t memmove(const void *dst, const void *src, size_t n)');
  const c = {
    close: cfn('int close(int fd)'),
    read: cfn('long read(int fd, _Out_ void *buf, size_t n)'),
    recv: cfn('long recv(int fd, void *buf, size_t n, int flags)'),
    shutdown: cfn('int shutdown(int fd, int how)'),
    connect: cfn('int connect(int fd, const void *addr, int len)'),
    socketpair: cfn('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
    fcntl: (fd: number, cmd: number, arg: number) => fcntl3(fd, cmd, 'int', arg),
    getsockname: cfn('int getsockname(int fd, _Out_ void *addr, _Inout_ int *addrlen)'),
    getpeername: cfn('int getpeername(int fd, _Out_ void *addr, _Inout_ int *addrlen)'),
    getsockopt: cfn('int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ int *len)'),
    setsockopt: cfn('int setsockopt(int fd, int level, int name, const void *val, int len)'),
    addressOf: (data: Uint8Array) => BigInt(memmove0(data, data, 0) as number | bigint),
    address: (p: NativePointer) => p,
    errno: () => koffi.errno(),
    munmap: cfn('int munmap(uintptr_t addr, size_t len)'),
    ifNameToIndex: cfn('unsigned int if_nametoindex(const char *name)'),
  } as unknown as LibC;
  cached = { zc, c };
  return cached;
}

/** Watch a file descriptor for readability on Node's own event loop. */
export interface FdWatcher {
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

interface PollHandle {
  start(events: { readable: boolean }, cb: () => void): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}
type PollHandleClass = new (fd: number) => PollHandle;
let pollClass: PollHandleClass | null | undefined;

/**
 * A started poll handle for fd.  koffi.node.poll() defines its PollHandle
 * class anew on every call (napi_define_class), and V8 never frees a class
 * template: ~4.8 KB of heap per watcher for good (docs/koffi-poll-leak.md).
 * The class of the first handle is reused for the next ones instead; should
 * a koffi version not expose it, every watcher goes through poll() again.
 */
function pollHandle(fd: number, cb: () => void): PollHandle {
  if (pollClass) {
    const h = new pollClass(fd);
    h.start({ readable: true }, cb);
    return h;
  }
  const h = koffi.node.poll(fd, { readable: true }, cb) as unknown as PollHandle;
  if (pollClass === undefined) {
    const ctor = (Object.getPrototypeOf(h) as { constructor?: unknown }).constructor;
    pollClass = typeof ctor === 'function' && typeof (h as { start?: unknown }).start === 'function' ? (ctor as PollHandleClass) : null;
  }
  return h;
}

const EXP_TICK = process.env['URING_ZC_EXP_TICK'] === '1';
/** Does nothing: scheduling it makes Node drain the microtask queue (watchReadable). */
const drainMicrotasks = (): void => {};

/**
 * koffi.node.poll wrapper: callback runs on Node's loop when fd is readable.
 * koffi calls back from its uv_poll handle without a Node callback scope, so
 * Promises settled in the callback would only run their continuations at the
 * next callback Node makes itself; Node 26 then stalls until some unrelated
 * event arrives.  An immediate (same loop iteration) drains them.
 */
export function watchReadable(fd: number, onReadable: () => void): FdWatcher {
  const h = pollHandle(fd, () => {
    try {
      onReadable();
    } finally {
      if (EXP_TICK) (process as unknown as { _tickCallback(): void })._tickCallback();
      else setImmediate(drainMicrotasks);
    }
  });
  return {
    stop: () => h.stop(),
    close: () => h.close(),
    ref: () => h.ref(),
    unref: () => h.unref(),
  };
}
