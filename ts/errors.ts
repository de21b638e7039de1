// SPDX-License-Identifier: MIT
/**
 * Typed errors of uring-zc.
 *
 * - {@link ZcError}: an operation failed with an errno (from libzc, the
 *   kernel or a completion record); carries the errno number and name,
 *   the operation and a hint that says what to do about it.
 * - {@link ZcOwnershipError}: a pool buffer was used while the kernel owns
 *   it (a ZcError with code `EBUSY`), or after it was released.
 * - {@link ZcConfigError}: invalid options; names the field, the bad value
 *   and what is allowed.
 */
import { ERRNO } from './ffi/abi.gen.ts';

/** Name of an errno this library knows, e.g. `'ENOMEM'`. */
export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, ErrnoName>();
for (const [name, value] of Object.entries(ERRNO) as [ErrnoName, number][]) {
  if (!NAMES.has(value)) NAMES.set(value, name);
}

/** errno number → name (`'E123'` style fallback for unknown numbers). */
export function errnoName(errno: number): string {
  return NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** errno name → number, e.g. `errnoNumber('EPIPE') === 32`. */
export function errnoNumber(name: ErrnoName): number {
  return ERRNO[name];
}

/** strerror()-like text of every errno in {@link ERRNO}. */
const MESSAGES: Record<ErrnoName, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  E2BIG: 'argument list too long',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'resource busy',
  EEXIST: 'already exists',
  EXDEV: 'cross-device link',
  ENODEV: 'no such device',
  EINVAL: 'invalid argument',
  ENFILE: 'too many open files in system',
  EMFILE: 'too many open files',
  ENOSPC: 'no space left',
  EPIPE: 'broken pipe',
  ERANGE: 'out of range',
  ENOSYS: 'function not implemented',
  EOVERFLOW: 'value too large',
  ENOTSOCK: 'not a socket',
  EDESTADDRREQ: 'destination address required',
  EMSGSIZE: 'message too long',
  EPROTOTYPE: 'protocol wrong type for socket',
  ENOPROTOOPT: 'protocol not available',
  EPROTONOSUPPORT: 'protocol not supported',
  EOPNOTSUPP: 'operation not supported',
  EAFNOSUPPORT: 'address family not supported',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  ENETDOWN: 'network is down',
  ENETUNREACH: 'network unreachable',
  ECONNABORTED: 'connection aborted',
  ECONNRESET: 'connection reset by peer',
  ENOBUFS: 'no buffer space available',
  EISCONN: 'socket already connected',
  ENOTCONN: 'socket not connected',
  ESHUTDOWN: 'cannot send after shutdown',
  ETIMEDOUT: 'timed out',
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'host unreachable',
  EALREADY: 'operation already in progress',
  EINPROGRESS: 'operation in progress',
  ECANCELED: 'operation canceled',
  ENODATA: 'no data available',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
};

/** Machine-readable facts of an error, also what its hint is built from. */
export type ErrorDetails = Readonly<Record<string, number | string | boolean | null>>;

type Hint = string | ((d: ErrorDetails) => string | undefined);

const num = (d: ErrorDetails, k: string): number | null => (typeof d[k] === 'number' ? (d[k] as number) : null);
const str = (d: ErrorDetails, k: string): string | null => (typeof d[k] === 'string' ? (d[k] as string) : null);

const IO_URING_UNAVAILABLE: Hint = (d) => {
  const v = num(d, 'ioUringDisabled');
  return (
    'io_uring is not available to this process: check `sysctl kernel.io_uring_disabled`' +
    ` (now ${v === null || v < 0 ? 'unknown' : v}; 0 allows everyone, 1 only the` +
    ' group in kernel.io_uring_group, 2 nobody) and, in a container, the seccomp profile' +
    ' (io_uring_setup/io_uring_enter/io_uring_register must be allowed, e.g. docker --security-opt seccomp=...)'
  );
};

const PIN_REFUSED: Hint = (d) => {
  const bytes = num(d, 'neededBytes') ?? 0;
  if (d['hugePages'] === true) {
    return `no huge pages for ${bytes} bytes: reserve them (sysctl vm.nr_hugepages) or use hugePages: false`;
  }
  const cur = num(d, 'memlockCurrent');
  const max = num(d, 'memlockMax');
  const kib = Math.ceil(bytes / 1024);
  return (
    `registering (pinning) ${bytes} bytes of buffers failed; RLIMIT_MEMLOCK is ` +
    `${cur === null ? 'unlimited or unknown' : `${cur} bytes`}` +
    ` (hard limit ${max === null ? 'unlimited or unknown' : `${max} bytes`}); the pool needs ${bytes} bytes` +
    ' on top of what this user has locked already: raise the limit (`ulimit -l ' +
    `${kib * 2}\` in KiB, or` +
    ' `prlimit --memlock=...`, LimitMEMLOCK= in systemd, --ulimit memlock=-1 in docker) or use fewer/smaller buffers'
  );
};

/** zcrx needs these ring flags; said by mode so zcrx and zcrx-nodev each get their own words. */
const RX_RING_FLAGS = 'Ring.create({ deferTaskrun: true, cqe32: true })';

const RX_EINVAL: Hint = (d) => {
  const mode = str(d, 'mode');
  const ifname = str(d, 'ifname') ?? '';
  const q = num(d, 'rxQueue') ?? 0;
  if (mode === 'zcrx') {
    return (
      `the ring needs deferTaskrun and 32-byte CQEs (${RX_RING_FLAGS}), or the NIC refused queue ${q} of ${ifname}:` +
      ` enable header split (\`ethtool -G ${ifname} tcp-data-split on\`, hds-thresh 0) and steer the flow to the` +
      ` queue (\`ethtool -N ${ifname} flow-type ... action ${q}\`)`
    );
  }
  if (mode === 'zcrx-nodev') return `zcrx-nodev needs a ring created with deferTaskrun and 32-byte CQEs: ${RX_RING_FLAGS}`;
  return 'the kernel rejected the buffer ring (sizes?)';
};

const RX_EOPNOTSUPP: Hint = (d) => {
  const mode = str(d, 'mode');
  if (mode === 'zcrx-nodev') {
    return 'this kernel has no ZCRX_REG_NODEV (Linux >= 7.1) or no IORING_OP_RECV_ZC (>= 6.15); use mode "bufring"';
  }
  if (mode === 'zcrx') {
    return (
      `no zcrx on ${str(d, 'ifname') ?? ''} queue ${num(d, 'rxQueue') ?? 0}: the kernel lacks IORING_OP_RECV_ZC (>= 6.15),` +
      ' or the driver has no queue-management/memory-provider support (virtual devices like lo/veth never do), or it' +
      ' does not take this rx_buf_len; use mode "bufring"'
    );
  }
  return undefined;
};

const RX_HINTS: Partial<Record<ErrnoName, Hint>> = {
  EPERM: (d) =>
    str(d, 'mode') === 'bufring'
      ? undefined
      : 'zcrx registration needs CAP_NET_ADMIN (run as root or grant the capability); use mode "bufring"',
  EINVAL: RX_EINVAL,
  EOPNOTSUPP: RX_EOPNOTSUPP,
  EEXIST: (d) =>
    `queue ${num(d, 'rxQueue') ?? 0} of ${str(d, 'ifname') ?? ''} is already bound (another zcrx instance, AF_XDP or an XDP program)`,
  EBUSY: (d) =>
    `queue ${num(d, 'rxQueue') ?? 0} of ${str(d, 'ifname') ?? ''} is already bound (another zcrx instance, AF_XDP or an XDP program)`,
  ERANGE: (d) => `${str(d, 'ifname') ?? ''} has no RX queue ${num(d, 'rxQueue') ?? 0} (see \`ethtool -l ${str(d, 'ifname') ?? ''}\`)`,
  ENODEV: (d) => `no network interface named ${JSON.stringify(str(d, 'ifname') ?? '')}`,
  ENOMEM: 'the area could not be allocated or pinned: lower areaSize or raise RLIMIT_MEMLOCK (`ulimit -l`)',
};

const SEND_HINTS: Partial<Record<ErrnoName, Hint>> = {
  EOPNOTSUPP: 'this socket family has no zero-copy send (e.g. AF_UNIX): use mode "copy" or "auto"',
  EFAULT:
    "the Uint8Array's ArrayBuffer was detached (transferred or resized) before the send was issued: nothing was sent",
  EDESTADDRREQ: 'the socket has no peer: connect it first, or give each datagram an address with sendTo()',
  EMSGSIZE: 'a datagram larger than the socket allows (UDP: at most 65507 bytes over IPv4): split it',
  EXDEV: 'the pool buffer belongs to another ring: send it on a socket of its own ring',
};

/**
 * Every hint of the library, by operation and errno.  An operation is
 * looked up whole (`'pool.create'`), then by its first word (`'send'` for
 * `'sendTo'`, `'recv'` for `'recv.create'`), then under `'*'`.  Call sites
 * pass facts (limits, names) as `details`; a site-specific `hint` in
 * {@link ZcErrorInit} still wins.
 */
const HINTS: Record<string, Partial<Record<ErrnoName, Hint>>> = {
  'ring.create': {
    EPERM: IO_URING_UNAVAILABLE,
    ENOSYS: IO_URING_UNAVAILABLE,
    EACCES: IO_URING_UNAVAILABLE,
    ENOMEM: 'the ring memory could not be allocated or locked: lower entries or raise `ulimit -l`',
    EINVAL: 'the kernel rejected the ring flags: DEFER_TASKRUN needs Linux >= 6.1, SINGLE_ISSUER >= 6.0; try deferTaskrun: false',
    EOPNOTSUPP: 'unified: "native" needs a kernel with the uring-zc series (IORING_SEND_ZC_SINGLE_CQE); use "auto"',
  },
  'pool.create': {
    ENOMEM: PIN_REFUSED,
    ENOSPC: (d) =>
      `the ring has no ${num(d, 'slotsNeeded') ?? 1} free fixed-buffer slot(s) in a row (one per GiB of pool):` +
      ` raise maxFixedBuffers (now ${num(d, 'maxFixedBuffers') ?? '?'}) or close pools`,
    EOPNOTSUPP: 'this kernel cannot register a sparse fixed-buffer table (needs Linux >= 5.19)',
  },
  recv: RX_HINTS,
  send: SEND_HINTS,
  '*': {
    ECONNRESET: 'the peer reset the connection (closed it with unread data or aborted)',
    EPIPE: 'the connection is closed for sending: the peer closed or reset it, or it was shut down here',
    ECANCELED: 'canceled because the ring or the socket was closed while the request was in flight',
    EMFILE: 'out of file descriptors: raise `ulimit -n` or close sockets',
    ENFILE: 'out of file descriptors: raise `ulimit -n` or close sockets',
    ENOSPC: 'a kernel table is full (fixed-buffer slots, buffer group ids, CQ ring): close what you do not use',
    ENOTSOCK: 'the file descriptor is not a socket',
    EBADF: 'the file descriptor is not open (closed already?)',
  },
};

/** The hint for `errno` failing in `op`, from the one table above. */
export function hintFor(op: string, errno: number, details: ErrorDetails = {}): string | undefined {
  const name = NAMES.get(Math.abs(errno));
  if (name === undefined) return undefined;
  const family = op.split(/[.A-Z]/)[0] ?? op;
  for (const key of [op, family, '*']) {
    const h = HINTS[key]?.[name];
    if (h === undefined) continue;
    const text = typeof h === 'string' ? h : h(details);
    if (text !== undefined) return text;
  }
  return undefined;
}

/** Fields of a {@link ZcError}. */
export interface ZcErrorInit {
  /** errno as a positive or negative number */
  errno: number;
  /** what failed, e.g. `'ring.create'`, `'pool.create'`, `'send'`, `'connect'` */
  op: string;
  /** what to do about it; by default looked up by op and errno ({@link hintFor}) */
  hint?: string;
  /** extra machine-readable facts (e.g. memlock limits); hints are built from them */
  details?: ErrorDetails;
  /** sends: bytes the kernel took before the send failed (it did not go whole) */
  bytesSent?: number;
}

/** An operation failed with an errno. */
export class ZcError extends Error {
  override readonly name: string = 'ZcError';
  /** positive errno number */
  readonly errno: number;
  /** errno name, e.g. `'ENOMEM'` */
  readonly code: string;
  /** the failed operation */
  readonly op: string;
  /** how to fix or what it means, when known */
  readonly hint: string | undefined;
  readonly details: ErrorDetails | undefined;
  /**
   * Sends: how many bytes the kernel took before the send failed (from 0
   * to one less than its length).  Undefined for other operations, and for
   * a send the ring gave up on before the kernel reported (ring closed
   * while the kernel still held it).
   */
  readonly bytesSent: number | undefined;

  constructor(init: ZcErrorInit) {
    const errno = Math.abs(init.errno);
    const code = errnoName(errno);
    const hint = init.hint ?? hintFor(init.op, errno, init.details);
    const text = MESSAGES[code as ErrnoName] ?? `errno ${errno}`;
    const sent = init.bytesSent === undefined ? '' : ` after ${init.bytesSent} bytes`;
    super(`${init.op}: ${code} (${text})${sent}${hint ? `: ${hint}` : ''}`);
    this.errno = errno;
    this.code = code;
    this.op = init.op;
    this.hint = hint;
    this.details = init.details;
    this.bytesSent = init.bytesSent;
  }
}

/** A pool buffer was touched while the kernel owns it, or after release. */
export class ZcOwnershipError extends ZcError {
  override readonly name: string = 'ZcOwnershipError';
  constructor(op: string, hint: string) {
    super({ errno: ERRNO.EBUSY, op, hint });
  }
}

/** One invalid field of an options object. */
export interface ConfigIssue {
  /** dotted path, e.g. `'entries'` */
  field: string;
  /** the value given (undefined when missing) */
  value: unknown;
  /** what is allowed, e.g. `'a power of two in 1..32768'` */
  allowed: string;
}

/** A value as the user wrote it: NaN is NaN (JSON would say null), 1e12 stays a number. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol' || typeof v === 'function') return String(v).slice(0, 60);
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    // a bigint inside, a cycle, a throwing toJSON; and String() throws for
    // objects without a prototype: '[object Object]' and the like
    try {
      return String(v);
    } catch {
      return Object.prototype.toString.call(v);
    }
  }
}

/** Invalid options: names the field, the bad value and what is allowed. */
export class ZcConfigError extends Error {
  override readonly name = 'ZcConfigError';
  /** e.g. `'RingOptions'` */
  readonly schema: string;
  /** first invalid field */
  readonly field: string;
  readonly value: unknown;
  readonly allowed: string;
  /** every invalid field */
  readonly issues: readonly ConfigIssue[];

  constructor(schema: string, all: readonly ConfigIssue[]) {
    // One issue per field: a value failing two checks is one mistake.
    const issues = all.filter((i, k) => all.findIndex((j) => j.field === i.field) === k);
    const first = issues[0] ?? { field: '(root)', value: undefined, allowed: 'an options object' };
    const lines = issues.map((i) => `${schema}.${i.field} = ${show(i.value)}: expected ${i.allowed}`);
    super(`invalid ${schema}: ${lines.join('; ')}`);
    this.schema = schema;
    this.field = first.field;
    this.value = first.value;
    this.allowed = first.allowed;
    this.issues = issues;
  }
}

/**
 * Throw `e` from a microtask of its own: an uncaught exception, as from
 * queueMicrotask.  How a throw of a user callback (send, write, chunk
 * handler) is reported without stopping the dispatch that called it.
 */
export function rethrowLater(e: unknown): void {
  queueMicrotask(() => {
    throw e;
  });
}
