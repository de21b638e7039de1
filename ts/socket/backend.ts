// SPDX-License-Identifier: MIT
/**
 * Which I/O sockets and servers use, and the ring they share.
 *
 * `backend: 'auto'` (the default, also settable per process with
 * {@link setDefaultBackend} or URING_ZC_BACKEND) uses io_uring when a ring
 * can be set up, and node:net when it cannot: EPERM/EACCES (the sysctl
 * kernel.io_uring_disabled, a seccomp profile as container runtimes ship),
 * ENOSYS (no io_uring in the kernel or filtered), ENOMEM (the ring's memory
 * cannot be locked).  The reason is reported once per process as a warning
 * (`process.on('warning')`, code URING_ZC_FALLBACK) and by
 * {@link backendStatus}.  'uring' never falls back (it throws); 'net'
 * never tries io_uring.
 */
import { ZcError } from '../errors.ts';
import { Ring } from '../ring.ts';
import type { Backend } from './engine.ts';

/** What a socket or server is asked to use. */
export type BackendPreference = 'auto' | Backend;

const FALLBACK_CODES = new Set(['EPERM', 'EACCES', 'ENOSYS', 'ENOMEM']);

function envDefault(): BackendPreference {
  const v = process.env['URING_ZC_BACKEND'];
  return v === 'uring' || v === 'net' ? v : 'auto';
}

let processDefault: BackendPreference = envDefault();
let shared: Ring | null = null;
/** why io_uring is not used by 'auto' in this process (sticky: tried once) */
let unavailable: ZcError | null = null;
let warned = false;

/** The backend used when an object is created without `backend`. */
export function setDefaultBackend(b: BackendPreference): void {
  if (b !== 'auto' && b !== 'uring' && b !== 'net') {
    throw new TypeError(`setDefaultBackend: backend must be 'auto', 'uring' or 'net', not ${JSON.stringify(b)}`);
  }
  processDefault = b;
}

/** The process default and, once 'auto' fell back, why. */
export function backendStatus(): { default: BackendPreference; uringUnavailable: ZcError | null } {
  return { default: processDefault, uringUnavailable: unavailable };
}

/**
 * SQ entries of the thread's shared ring; it tracks twice as many requests
 * (maxRequests 4096).  Every socket on it keeps one receive in flight for
 * good, and a ring lets such requests hold all but 256 of its slots
 * (Ring.standingLimit), so the shared ring serves 3840 connections (less
 * its listeners' accepts) at once; the next socket's receive fails with
 * ENOBUFS.  A server for more connections makes its own ring with
 * `entries` / `maxRequests`.
 */
export const SHARED_RING_ENTRIES = 2048;

/**
 * The ring shared by this thread's sockets and servers that were given no
 * ring (created on first use; idle, it costs nothing and keeps nothing
 * alive).  Throws ZcError when io_uring cannot be set up.
 */
export function defaultRing(): Ring {
  if (!shared || shared.closed) shared = Ring.create({ entries: SHARED_RING_ENTRIES });
  return shared;
}

/** The choice for one object: a ring, or node:net. */
export type BackendChoice = { backend: 'uring'; ring: Ring } | { backend: 'net'; ring: null };

/** Resolve a preference (and an explicit ring) into a backend. */
export function chooseBackend(pref: BackendPreference | undefined, ring: Ring | undefined): BackendChoice {
  const want = pref ?? processDefault;
  if (want === 'net') return { backend: 'net', ring: null };
  if (ring) return { backend: 'uring', ring };
  if (want === 'auto' && unavailable) return { backend: 'net', ring: null };
  try {
    return { backend: 'uring', ring: defaultRing() };
  } catch (e) {
    if (want === 'uring' || !(e instanceof ZcError) || !FALLBACK_CODES.has(e.code)) throw e;
    unavailable = e;
    if (!warned) {
      warned = true;
      process.emitWarning(`io_uring is not available, using node:net instead: ${e.message}`, {
        type: 'UringZcWarning',
        code: 'URING_ZC_FALLBACK',
      });
    }
    return { backend: 'net', ring: null };
  }
}
