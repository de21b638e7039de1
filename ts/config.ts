// SPDX-License-Identifier: MIT
/**
 * Options of rings, buffer pools and sends: zod schemas with defaults.
 * `parse*()` return the resolved options or throw {@link ZcConfigError}
 * naming the field, the bad value and the allowed range.
 */
import { constants as bufferConstants } from 'node:buffer';
import { isIP } from 'node:net';
import { z } from 'zod';
import { ZcConfigError, type ConfigIssue } from './errors.ts';
import { LIMITS } from './ffi/abi.gen.ts';

/**
 * Default `auto` threshold for pool buffers (registered memory): smaller
 * sends go out as plain (copying) sends, this size and larger as SEND_ZC
 * from the fixed buffer.  Where zero-copy starts to win was measured with
 * `uring-zc bench`: docs/PERFORMANCE.md, "Measurements behind defaults".
 */
export const AUTO_ZC_THRESHOLD = 16 * 1024;

/**
 * Default `auto` threshold for plain Uint8Arrays (unregistered memory, its
 * pages pinned on every zero-copy send); measured as above.
 */
export const AUTO_ZC_THRESHOLD_UNREGISTERED = 256 * 1024;

/** Largest io_uring SQ ring (IORING_MAX_ENTRIES). */
export const MAX_SQ_ENTRIES = 32768;
/** Largest CQ ring (IORING_MAX_CQ_ENTRIES). */
export const MAX_CQ_ENTRIES = 2 * MAX_SQ_ENTRIES;
/** Largest single registered buffer the kernel accepts (1 GiB). */
export const MAX_BUFFER_SIZE = LIMITS.ZC_REGION_MAX;
/**
 * The largest memory one view can show: a pool's or a receive area's
 * ArrayBuffer (the addon's view(); 4 GiB in Node 20).  Larger ones are
 * refused with the options, before any memory is mapped.
 */
export const MAX_VIEW = bufferConstants.MAX_LENGTH;
/** Page size pool buffer sizes must be a multiple of. */
export const PAGE_SIZE = 4096;
/** Huge page size for `hugePages: true` pools. */
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** What is allowed, by schema and field: used in error messages. */
const ALLOWED: Record<string, Record<string, string>> = {
  RingOptions: {
    entries: `a power of two in 1..${MAX_SQ_ENTRIES} (SQ ring size)`,
    cqEntries: `a power of two in entries..${MAX_CQ_ENTRIES} (default 4 * entries)`,
    singleIssuer: 'a boolean',
    deferTaskrun: 'a boolean (true needs singleIssuer: true)',
    coopTaskrun: 'a boolean',
    registeredFd: 'a boolean',
    cqe32: 'a boolean (32-byte CQEs: needed, with deferTaskrun, by zcrx receive)',
    unified: '"auto", "native" or "userspace"',
    maxRequests: `an integer in 1..${MAX_CQ_ENTRIES} (requests tracked at once; default cqEntries)`,
    maxFixedBuffers: 'an integer in 1..16384 (registered-buffer slots; a pool takes one per GiB)',
    loopWait: '"auto", "epoll" or "ring" ("ring": one ring per thread, without deferTaskrun)',
  },
  BufferPoolOptions: {
    count: `an integer in 1..${LIMITS.ZC_POOL_MAX_BUFFERS}`,
    size: `an integer multiple of ${PAGE_SIZE} in ${PAGE_SIZE}..${MAX_BUFFER_SIZE} (count * size at most ${MAX_VIEW}, this Node's largest ArrayBuffer; with hugePages, a multiple of ${HUGE_PAGE_SIZE})`,
    hugePages: 'a boolean',
  },
  SendOptions: {
    mode: '"copy", "zc" or "auto"',
    autoThreshold: 'an integer in 0..4294967295 (bytes; auto mode sends pool buffers zero-copy at or above it)',
    autoThresholdUnregistered: 'an integer in 0..4294967295 (bytes; auto mode sends Uint8Arrays zero-copy at or above it)',
    more: 'a boolean (MSG_MORE: more data follows)',
    reportUsage: 'a boolean (ask the kernel whether it copied)',
    coalesce: 'a boolean (let sends of one tick leave as one request)',
    offset: 'an integer in 0..buffer size',
    length: 'an integer in 0..buffer size - offset',
  },
};

/** Ring options (all optional). */
export const RingOptionsSchema = z
  .object({
    /** SQ ring entries, a power of two. */
    entries: int(1, MAX_SQ_ENTRIES).refine(isPow2).default(256),
    /** CQ ring entries, a power of two >= entries; default 4 * entries. */
    cqEntries: int(1, MAX_CQ_ENTRIES).refine(isPow2).optional(),
    /** IORING_SETUP_SINGLE_ISSUER (Node calls from one thread). */
    singleIssuer: z.boolean().default(true),
    /**
     * IORING_SETUP_DEFER_TASKRUN: completions run only when reaped.  Off by
     * default: on Node's loop it costs more eventfd wakeups per send
     * (docs/PERFORMANCE.md).  zcrx receive needs it (with cqe32).
     */
    deferTaskrun: z.boolean().default(false),
    /**
     * IORING_SETUP_COOP_TASKRUN (default on): completions that arrive while
     * this thread runs wait for its next system call instead of an
     * interrupt (a thread asleep, e.g. in Node's loop, is still woken).
     * Node's loop enters the kernel every turn, and the ring flushes every
     * tick, so nothing waits long; each interrupt saved is an IPI (a VM
     * exit in a guest) and a trip through the interrupt path
     * (docs/PERFORMANCE.md, issue 9 session 8).
     */
    coopTaskrun: z.boolean().default(true),
    /** Register the ring fd (saves an fd lookup per io_uring_enter). */
    registeredFd: z.boolean().default(true),
    /** IORING_SETUP_CQE32: 32-byte CQEs, required (with deferTaskrun) by zcrx receive modes. */
    cqe32: z.boolean().default(false),
    /** Single-CQE zero-copy sends: kernel ('native'), libzc ('userspace'), or whichever works ('auto'). */
    unified: z.enum(['auto', 'native', 'userspace']).default('auto'),
    /** Requests tracked at once; more are queued in JS (backpressure). Default: cqEntries. */
    maxRequests: int(1, MAX_CQ_ENTRIES).optional(),
    /** Registered-buffer slots shared by the ring's pools. */
    maxFixedBuffers: int(1, 16384).default(1024),
    /**
     * Where this thread's event loop sleeps when it has nothing to run.
     * `'epoll'`: in libuv's epoll_wait, the ring's fd watched like any
     * other, and each socket with a receive in flight polled there too
     * (the watcher's doorbell), so its data wakes the wait with an event,
     * not the interrupt of the receive's task work and a second wait
     * (Session 19, rr1c19), and with the socket's sync hint (Session 24).  `'ring'`: in io_uring_enter() on this ring, which polls
     * libuv's epoll fd, so a completion wakes the thread with the receive's
     * task work already run (no interrupted epoll_wait, no ring fd wakeup):
     * one system call less per wakeup (docs/PERFORMANCE.md, Session 14);
     * but every wakeup for anything else (node:net sockets, timers) then
     * costs a system call more (Session 18).  Node's
     * `performance.eventLoopUtilization()` counts the sleep as idle, as it
     * counts libuv's epoll wait: zc_poll.node adds it to libuv's idle time
     * (libuv has no public call for it; the private fields are checked at
     * run time first, and found on Node 20.3+, 22, 24 and 26); where a check
     * fails the sleep reads as busy, an idle thread as fully utilized:
     * `ring.sleepCountsIdle` reads `false` then.  One ring per thread, not
     * with deferTaskrun.  `'auto'` (default): the first ring of
     * the main thread sleeps in the ring while the loop's recent wakeups
     * were mostly its completions and in epoll (with the doorbell, whose
     * wakeups count as the ring's) while they were mostly something else
     * (`ring.loopSleep` says which, now; Sessions 19 and 20); any
     * other ring (a second one, deferTaskrun, a worker thread) reads
     * `'epoll'`, and a later ring with `'ring'` takes the sleep over.
     * Sleeping in the ring needs the zc_poll.node watcher and libuv 1.44 or
     * later (otherwise `ring.loopWait` reads `'epoll'`).
     */
    loopWait: z.enum(['auto', 'epoll', 'ring']).default('auto'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.cqEntries !== undefined && o.cqEntries < o.entries) {
      ctx.addIssue({ code: 'custom', path: ['cqEntries'], message: 'cqEntries < entries' });
    }
    if (o.deferTaskrun && !o.singleIssuer) {
      ctx.addIssue({ code: 'custom', path: ['deferTaskrun'], message: 'deferTaskrun needs singleIssuer' });
    }
    if (o.loopWait === 'ring' && o.deferTaskrun) {
      ctx.addIssue({ code: 'custom', path: ['loopWait'], message: 'loopWait ring is for rings without deferTaskrun' });
    }
  });

/** Buffer pool options (all optional). */
export const BufferPoolOptionsSchema = z
  .object({
    /** Number of buffers. */
    count: int(1, LIMITS.ZC_POOL_MAX_BUFFERS).default(64),
    /** Bytes per buffer, a multiple of the page size. */
    size: int(PAGE_SIZE, MAX_BUFFER_SIZE)
      .refine((n) => n % PAGE_SIZE === 0)
      .default(64 * 1024),
    /** Back the pool with 2 MiB huge pages (fails if none are reserved). */
    hugePages: z.boolean().default(false),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.hugePages && (o.count * o.size) % HUGE_PAGE_SIZE !== 0) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: 'count * size not a multiple of the huge page size' });
    }
    if (o.count * o.size > MAX_VIEW) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: `count * size above ${MAX_VIEW} bytes, the largest ArrayBuffer of this Node` });
    }
  });

/** Send options (all optional). */
export const SendOptionsSchema = z
  .object({
    /**
     * 'copy': plain SEND; 'zc': SEND_ZC; 'auto': zc at or above
     * autoThreshold bytes (pool buffers) or autoThresholdUnregistered bytes
     * (Uint8Arrays), except on AF_UNIX and to a peer on this host (loopback
     * or one of its own addresses: the kernel copies there at delivery).
     */
    mode: z.enum(['copy', 'zc', 'auto']).default('auto'),
    /** Bytes at or above which 'auto' uses zero-copy. */
    autoThreshold: int(0, 0xffffffff).default(AUTO_ZC_THRESHOLD),
    autoThresholdUnregistered: int(0, 0xffffffff).default(AUTO_ZC_THRESHOLD_UNREGISTERED),
    /** MSG_MORE: more data follows soon (corks small sends). */
    more: z.boolean().default(false),
    /**
     * IORING_SEND_ZC_REPORT_USAGE: learn whether the kernel copied.  Only
     * where libzc merges the two CQEs of a send: the kernel's single-CQE mode
     * (`ring.unifiedNative`) cannot report usage, its sends say 'unknown'
     * (use `unified: 'userspace'` to get the report on such kernels).
     */
    reportUsage: z.boolean().default(true),
    /**
     * Stream sockets: sends made in the same tick may leave together as one
     * request (small copying sends as one sendmsg; zero-copy pool sends as
     * one SENDMSG_ZC from registered buffers, Linux >= 6.15), each Promise
     * still settling with its own bytes.  The tick ends with the ring's
     * flush, a microtask the tick's first send queues: a send from a
     * microtask queued after that one (after an `await`) goes in the next
     * request, which without `noDelay` Nagle may hold for the peer's ACK.  Off: one kernel request per send,
     * settled as soon as that send's buffer is released, at a price on a
     * busy stream (docs/PERFORMANCE.md).
     */
    coalesce: z.boolean().default(true),
    /** Pool buffer sends: start offset inside the buffer. */
    offset: int(0, 0xffffffff).optional(),
    /** Bytes to send (pool buffer: default size - offset; Uint8Array: default its length). */
    length: int(0, 0xffffffff).optional(),
  })
  .strict();

export type RingOptionsInput = z.input<typeof RingOptionsSchema>;
export type RingOptions = z.output<typeof RingOptionsSchema>;
export type BufferPoolOptionsInput = z.input<typeof BufferPoolOptionsSchema>;
export type BufferPoolOptions = z.output<typeof BufferPoolOptionsSchema>;
export type SendOptionsInput = z.input<typeof SendOptionsSchema>;
export type SendOptions = z.output<typeof SendOptionsSchema>;
export type SendMode = SendOptions['mode'];
export type UnifiedMode = RingOptions['unified'];

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function toIssues(schema: string, input: unknown, err: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const table = ALLOWED[schema] ?? {};
  for (const issue of err.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({
          field: key,
          value: valueAt(input, [...issue.path, key]),
          allowed: `no such option (known: ${Object.keys(table).join(', ')})`,
        });
      }
      continue;
    }
    if (issue.path.length === 0) {
      out.push({ field: '(root)', value: input, allowed: 'an options object or undefined' });
      continue;
    }
    const field = issue.path.map(String).join('.');
    out.push({ field, value: valueAt(input, issue.path), allowed: table[field] ?? issue.message });
  }
  return out;
}

function parseWith<S extends z.ZodType>(schema: S, name: string, input: unknown): z.output<S> {
  // undefined means "no options"; null is a value, and not an options object
  const r = schema.safeParse(input === undefined ? {} : input);
  if (!r.success) throw new ZcConfigError(name, toIssues(name, input, r.error));
  return r.data;
}

/** Validate ring options and fill defaults; throws ZcConfigError. */
export function parseRingOptions(input?: RingOptionsInput): RingOptions {
  return parseWith(RingOptionsSchema, 'RingOptions', input);
}

/** Validate pool options and fill defaults; throws ZcConfigError. */
export function parseBufferPoolOptions(input?: BufferPoolOptionsInput): BufferPoolOptions {
  return parseWith(BufferPoolOptionsSchema, 'BufferPoolOptions', input);
}

/** Validate send options and fill defaults; throws ZcConfigError. */
export function parseSendOptions(input?: SendOptionsInput): SendOptions {
  return parseWith(SendOptionsSchema, 'SendOptions', input);
}

/** Default send options (what `parseSendOptions()` returns). */
export const DEFAULT_SEND_OPTIONS: Readonly<SendOptions> = Object.freeze(parseSendOptions());

const SEND_KEYS = new Set([
  'mode', 'autoThreshold', 'autoThresholdUnregistered', 'more', 'reportUsage', 'coalesce', 'offset', 'length',
]);
const u32 = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/**
 * Hot-path send option resolution: cheap checks for the common cases, the
 * full schema (and its error) only when something looks wrong.
 */
export function resolveSendOptions(input: SendOptionsInput | undefined, base: Readonly<SendOptions>): SendOptions {
  if (input === undefined) return base;
  if (input === null || typeof input !== 'object') return parseSendOptions(input);
  for (const k in input) if (!SEND_KEYS.has(k)) return parseSendOptions(input);
  const { mode, autoThreshold, autoThresholdUnregistered, more, reportUsage, coalesce, offset, length } = input;
  if (
    (mode === undefined || mode === 'auto' || mode === 'zc' || mode === 'copy') &&
    (autoThreshold === undefined || u32(autoThreshold)) &&
    (autoThresholdUnregistered === undefined || u32(autoThresholdUnregistered)) &&
    (more === undefined || typeof more === 'boolean') &&
    (reportUsage === undefined || typeof reportUsage === 'boolean') &&
    (coalesce === undefined || typeof coalesce === 'boolean') &&
    (offset === undefined || u32(offset)) &&
    (length === undefined || u32(length))
  ) {
    return {
      mode: mode ?? base.mode,
      autoThreshold: autoThreshold ?? base.autoThreshold,
      autoThresholdUnregistered: autoThresholdUnregistered ?? base.autoThresholdUnregistered,
      more: more ?? base.more,
      reportUsage: reportUsage ?? base.reportUsage,
      coalesce: coalesce ?? base.coalesce,
      offset,
      length,
    };
  }
  return parseSendOptions(input);
}

// ---------------------------------------------------------------------------
// Node-style sockets and servers (ts/socket/): createServer(), listen(),
// connect() and new ZcSocket().  Unknown keys pass (Node's own callers, e.g.
// http.Agent, hand createConnection options of their own); known ones are
// checked.  Nested sendOptions / receiveOptions have their own schemas.

const PORT = int(0, 65535);
const MS = z.number().int().min(0).max(2 ** 31 - 1);
const HWM = int(0, 2 ** 31 - 1);
const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null;
const signal = z.custom<AbortSignal>((v) => v instanceof AbortSignal);
const ringRef = z.custom<object>(isObject);
const backend = z.enum(['auto', 'uring', 'net']);

const SOCKET_FIELDS = {
  ring: 'a Ring (default: the thread\'s shared ring)',
  backend: '"auto", "uring" or "net"',
  fd: 'an open stream socket file descriptor (an integer >= 0)',
  allowHalfOpen: 'a boolean',
  readableHighWaterMark: 'an integer in 0..2147483647 (bytes)',
  writableHighWaterMark: 'an integer in 0..2147483647 (bytes)',
  signal: 'an AbortSignal',
  sendOptions: 'send options (see SendOptions)',
  receiveOptions: 'receive options (see ReceiveOptions)',
  localPacing: 'a boolean (true: keep the system\'s congestion control to a peer on this host)',
};
const CONNECT_FIELDS = {
  port: 'an integer in 0..65535',
  host: 'a host name or IP literal',
  family: '4 or 6',
  noDelay: 'a boolean',
  keepAlive: 'a boolean',
  keepAliveInitialDelay: 'an integer >= 0 (ms)',
  timeout: 'an integer >= 0 (ms)',
  localAddress: 'an IP literal of this host to connect from',
  localPort: 'an integer in 0..65535 (0: any)',
};
ALLOWED['SocketOptions'] = SOCKET_FIELDS;
ALLOWED['ConnectOptions'] = { ...SOCKET_FIELDS, ...CONNECT_FIELDS };
ALLOWED['ServerOptions'] = {
  ring: SOCKET_FIELDS.ring,
  backend: SOCKET_FIELDS.backend,
  allowHalfOpen: 'a boolean',
  noDelay: 'a boolean',
  keepAlive: 'a boolean',
  keepAliveInitialDelay: 'an integer >= 0 (ms)',
  reusePort: 'a boolean',
  backlog: 'an integer in 0..2147483647 (the kernel caps it at net.core.somaxconn)',
  highWaterMark: 'an integer in 0..2147483647 (bytes)',
  sendOptions: SOCKET_FIELDS.sendOptions,
  receiveOptions: SOCKET_FIELDS.receiveOptions,
  localPacing: SOCKET_FIELDS.localPacing,
  pauseOnConnect: 'a boolean (true: connections come paused, as net.Server)',
};
ALLOWED['ListenOptions'] = {
  port: 'an integer in 0..65535 (0: any free port)',
  host: 'a host name or IP literal',
  backlog: 'an integer in 0..2147483647',
  reusePort: 'a boolean',
  ipv6Only: 'a boolean',
  signal: 'an AbortSignal',
};

/** new ZcSocket() options. */
export const SocketOptionsSchema = z
  .object({
    ring: ringRef.optional(),
    backend: backend.optional(),
    fd: int(0, 2 ** 31 - 1).optional(),
    allowHalfOpen: z.boolean().optional(),
    readableHighWaterMark: HWM.optional(),
    writableHighWaterMark: HWM.optional(),
    signal: signal.optional(),
    sendOptions: z.custom<object>(isObject).optional(),
    receiveOptions: z.custom<object>(isObject).optional(),
    localPacing: z.boolean().optional(),
  })
  .passthrough();

/** connect() / socket.connect() options. */
export const ConnectOptionsSchema = SocketOptionsSchema.extend({
  port: PORT,
  host: z.string().min(1).optional(),
  family: z.union([z.literal(4), z.literal(6)]).optional(),
  noDelay: z.boolean().optional(),
  keepAlive: z.boolean().optional(),
  keepAliveInitialDelay: MS.optional(),
  timeout: MS.optional(),
  localAddress: z.string().refine((v) => isIP(v) !== 0).optional(),
  localPort: PORT.optional(),
}).passthrough();

/** createServer() options. */
export const ServerOptionsSchema = z
  .object({
    ring: ringRef.optional(),
    backend: backend.optional(),
    allowHalfOpen: z.boolean().optional(),
    noDelay: z.boolean().optional(),
    keepAlive: z.boolean().optional(),
    keepAliveInitialDelay: MS.optional(),
    reusePort: z.boolean().optional(),
    backlog: int(0, 2 ** 31 - 1).optional(),
    highWaterMark: HWM.optional(),
    sendOptions: z.custom<object>(isObject).optional(),
    receiveOptions: z.custom<object>(isObject).optional(),
    localPacing: z.boolean().optional(),
    pauseOnConnect: z.boolean().optional(),
  })
  .passthrough();

/** server.listen(options) (and the port/host/backlog arguments). */
export const ListenOptionsSchema = z
  .object({
    port: PORT.optional(),
    host: z.string().min(1).optional(),
    backlog: int(0, 2 ** 31 - 1).optional(),
    reusePort: z.boolean().optional(),
    ipv6Only: z.boolean().optional(),
    signal: signal.optional(),
  })
  .passthrough();

ALLOWED['DatagramOptions'] = {
  ring: SOCKET_FIELDS.ring,
  host: 'an IP literal or host name to bind to',
  port: 'an integer in 0..65535 (0: any free port)',
  family: '4 or 6 (the number)',
  connect: 'a peer { host, port } to connect to',
  'connect.host': 'an IP literal or host name',
  'connect.port': 'an integer in 0..65535',
  sendOptions: SOCKET_FIELDS.sendOptions,
};
ALLOWED['PairOptions'] = {
  ring: SOCKET_FIELDS.ring,
  sendOptions: SOCKET_FIELDS.sendOptions,
  receiveOptions: SOCKET_FIELDS.receiveOptions,
  allowHalfOpen: 'a boolean',
  readableHighWaterMark: SOCKET_FIELDS.readableHighWaterMark,
  writableHighWaterMark: SOCKET_FIELDS.writableHighWaterMark,
  signal: SOCKET_FIELDS.signal,
};

/** ZcDatagram.open() options. */
export const DatagramOptionsSchema = z
  .object({
    ring: ringRef.optional(),
    host: z.string().min(1).optional(),
    port: PORT.optional(),
    family: z.union([z.literal(4), z.literal(6)]).optional(),
    connect: z.object({ host: z.string().min(1), port: PORT }).strict().optional(),
    sendOptions: z.custom<object>(isObject).optional(),
  })
  .strict();

/** ZcSocket.pair() / ZcDatagram.pair() options (an object, not a socket kind). */
export const PairOptionsSchema = SocketOptionsSchema.omit({ fd: true, backend: true }).strict();

/** Validate socket, connect, server, listen, datagram or pair options; throws ZcConfigError naming the field. */
export function checkNetOptions(
  which: 'SocketOptions' | 'ConnectOptions' | 'ServerOptions' | 'ListenOptions' | 'DatagramOptions' | 'PairOptions',
  input: unknown,
): void {
  // http.Agent hands `path: null` to createConnection: only a path given means IPC (as in net)
  const path = (input as { path?: unknown } | null)?.path;
  if ((which === 'ConnectOptions' || which === 'ListenOptions') && path !== undefined && path !== null && path !== '') {
    throw new ZcConfigError(which, [{
      field: 'path',
      value: path,
      allowed: 'no path: IPC (AF_UNIX path) sockets are not supported; use node:net for them (ZcSocket.pair() gives a connected AF_UNIX pair)',
    }]);
  }
  const schema = {
    SocketOptions: SocketOptionsSchema,
    ConnectOptions: ConnectOptionsSchema,
    ServerOptions: ServerOptionsSchema,
    ListenOptions: ListenOptionsSchema,
    DatagramOptions: DatagramOptionsSchema,
    PairOptions: PairOptionsSchema,
  }[which];
  parseWith(schema, which, input);
}

/** Error for a send range outside its buffer (same shape as schema errors). */
export function rangeError(field: 'offset' | 'length', value: number, max: number): ZcConfigError {
  return new ZcConfigError('SendOptions', [{ field, value, allowed: `an integer in 0..${max}` }]);
}

// ---------------------------------------------------------------------------
// socket.sendFile() (ts/socket/send-file.ts)

const FILE_POS = z.union([
  z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  z.bigint().min(0n).max(2n ** 63n - 1n),
]);

/** socket.sendFile(file, options) options. */
export const SendFileOptionsSchema = z
  .object({
    /** First byte of the file to send (bigint for files past 2^53). */
    offset: FILE_POS.default(0),
    /** Bytes to send; default: to the end of the file.  Past the end: ZcConfigError, nothing sent. */
    length: FILE_POS.optional(),
    /**
     * How the kernel moves the bytes: 'auto' (splice; a file that refuses
     * splice is read instead), 'splice' (only splice: refusal fails),
     * 'read' (read into registered buffers, sent zero-copy from there),
     * 'read-copy' (the same with copying sends), 'direct' ('read' with
     * O_DIRECT where the file allows it).  docs/PERFORMANCE.md compares them.
     */
    method: z.enum(['auto', 'splice', 'read', 'read-copy', 'direct']).default('auto'),
    /** More data follows soon (MSG_MORE on the last piece: corks it). */
    more: z.boolean().default(false),
    /** Aborting cancels the transfer: it rejects with an AbortError carrying bytesSent. */
    signal: signal.optional(),
  })
  .strict();

ALLOWED['SendFileOptions'] = {
  offset: 'an integer (number or bigint) >= 0',
  length: 'an integer (number or bigint) >= 0',
  method: '"auto", "splice", "read", "read-copy" or "direct"',
  more: 'a boolean',
  signal: 'an AbortSignal',
};

export type SendFileOptionsInput = z.input<typeof SendFileOptionsSchema>;
export type SendFileOptions = z.output<typeof SendFileOptionsSchema>;
export type SendFileMethod = SendFileOptions['method'];

/** Validate sendFile options and fill defaults; throws ZcConfigError. */
export function parseSendFileOptions(input?: SendFileOptionsInput): SendFileOptions {
  return parseWith(SendFileOptionsSchema, 'SendFileOptions', input);
}

/** Error for a sendFile range outside the file (same shape as schema errors). */
export function fileRangeError(field: 'offset' | 'length', value: number | bigint, max: bigint, size: bigint): ZcConfigError {
  return new ZcConfigError('SendFileOptions', [
    { field, value, allowed: `an integer in 0..${max} (the file has ${size} bytes; omit length to send to its end)` },
  ]);
}
