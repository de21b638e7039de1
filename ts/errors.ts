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

const MESSAGES: Partial<Record<ErrnoName, string>> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EINTR: 'interrupted',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'resource busy',
  EINVAL: 'invalid argument',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in system',
  EPIPE: 'broken pipe',
  ENOSYS: 'function not implemented',
  ENOBUFS: 'no buffer space available',
  ENOTSOCK: 'not a socket',
  EMSGSIZE: 'message too long',
  EOPNOTSUPP: 'operation not supported',
  EAFNOSUPPORT: 'address family not supported',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  ENETUNREACH: 'network unreachable',
  ECONNABORTED: 'connection aborted',
  ECONNRESET: 'connection reset by peer',
  ENOTCONN: 'socket not connected',
  ETIMEDOUT: 'timed out',
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'host unreachable',
  ECANCELED: 'operation canceled',
  EALREADY: 'operation already in progress',
  EINPROGRESS: 'operation in progress',
};

/** Default hints by errno for any operation; specific sites pass better ones. */
function defaultHint(code: string, op: string): string | undefined {
  switch (code) {
    case 'EOPNOTSUPP':
      return op.startsWith('send')
        ? 'this socket family has no zero-copy send (e.g. AF_UNIX): use mode "copy" or "auto"'
        : undefined;
    case 'ECONNRESET':
      return 'the peer reset the connection (closed it with unread data or aborted)';
    case 'EPIPE':
      return 'the connection is closed for sending: the peer closed or reset it, or it was shut down here';
    case 'ECANCELED':
      return 'canceled because the ring or the socket was closed while the request was in flight';
    case 'EMFILE':
    case 'ENFILE':
      return 'out of file descriptors: raise `ulimit -n` or close sockets';
    default:
      return undefined;
  }
}

/** Fields of a {@link ZcError}. */
export interface ZcErrorInit {
  /** errno as a positive or negative number */
  errno: number;
  /** what failed, e.g. `'ring.create'`, `'pool.create'`, `'send'`, `'connect'` */
  op: string;
  /** what to do about it; a default is derived from errno and op */
  hint?: string;
  /** extra machine-readable facts (e.g. memlock limits) */
  details?: Readonly<Record<string, number | string | boolean | null>>;
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
  readonly details: Readonly<Record<string, number | string | boolean | null>> | undefined;

  constructor(init: ZcErrorInit) {
    const errno = Math.abs(init.errno);
    const code = errnoName(errno);
    const hint = init.hint ?? defaultHint(code, init.op);
    const text = MESSAGES[code as ErrnoName] ?? `errno ${errno}`;
    super(`${init.op}: ${code} (${text})${hint ? `: ${hint}` : ''}`);
    this.errno = errno;
    this.code = code;
    this.op = init.op;
    this.hint = hint;
    this.details = init.details;
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

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(v);
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

  constructor(schema: string, issues: readonly ConfigIssue[]) {
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
