// SPDX-License-Identifier: MIT
/**
 * `socket.sendFile(file, { offset, length, signal })`: a file range to a
 * stream socket without a byte of it passing through JavaScript.
 *
 * On the io_uring backend it is one libzc request (`zc_sendfile`, contract
 * in libzc/libzc.h): queued with the socket's sends, so what was written
 * before it leaves before its first byte and what is written after it,
 * after its last; one record when the last byte was handed to the socket.
 * The kernel moves the bytes by splice (page-cache pages go out as they
 * are, like sendfile(2)) or, for files that refuse splice or on request,
 * by reads into registered buffers sent zero-copy from there (optionally
 * O_DIRECT).  On the node:net backend the file is read and written by
 * JavaScript (one copy each way), in the same order.
 *
 * Resolves `{ bytes, method, ... }` only when the whole range was sent;
 * otherwise rejects with a ZcError (or AbortError) carrying `bytesSent`,
 * the bytes the peer got.  A range past the end of the file is a
 * ZcConfigError and nothing is sent; a file that shrinks while sending
 * rejects with ENODATA.  The file (a path, an fd or a FileHandle) is
 * opened or duplicated synchronously at the call: closing the caller's fd
 * afterwards cannot make the transfer read another file.
 */
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ERRNO, SENDFILE_FLAGS, SENDFILE_PATH, SYS } from '../ffi/abi.gen.ts';
import type { SendfileStatsStruct } from '../ffi/libzc.ts';
import { decodeStruct, structBuffer } from '../ffi/structs.ts';
import { fileRangeError, parseSendFileOptions, type SendFileOptionsInput } from '../config.ts';
import { ZcError } from '../errors.ts';
import type { Completion, Ring } from '../ring.ts';
import { abortError, onAbort } from './abort.ts';
import type { SendLane } from './lane.ts';

/** What sendFile() sends from: a path, an open fd, or a FileHandle. */
export type FileSource = string | number | FileHandle;

/** How the bytes went. */
export type SendFileHow = 'splice' | 'read' | 'direct' | 'copy';

export interface SendFileResult {
  /** bytes sent: always the whole range */
  bytes: number;
  /**
   * 'splice': page-cache pages handed to the socket (no copy here);
   * 'read': read into registered buffers, sent from them; 'direct': the
   * same with O_DIRECT; 'copy': the node:net backend (read and written by
   * JavaScript)
   */
  method: SendFileHow;
  /** the file refused splice, so it was read instead */
  spliceRefused: boolean;
  /** the file refused O_DIRECT, so it was read through the page cache */
  directRefused: boolean;
}

/**
 * A resolved transfer: an fd this module owns until it settles.  Kept in
 * the declarations (no internal tag): the engines' declarations name it,
 * and scripts/build-package.ts fails on a stripped type still in use.
 */
export interface FileSpec {
  /** our own fd (opened from the path, or a dup of the caller's) */
  fd: number;
  offset: bigint;
  length: bigint;
  /** enum zc_sendfile_flags */
  flags: number;
  signal: AbortSignal | undefined;
}

let dupFd: ((fd: number) => number) | undefined;

/** fcntl(F_DUPFD_CLOEXEC) through libc (Node has no dup()). */
function dup(fd: number, ring: Ring | null): number {
  if (!dupFd) {
    if (ring) {
      const c = ring.libc;
      dupFd = (f) => c.fcntl(f, SYS.F_DUPFD_CLOEXEC, 0);
    } else {
      return fs.openSync(`/proc/self/fd/${fd}`, 'r');
    }
  }
  const d = dupFd(fd);
  if (d < 0) throw new ZcError({ errno: ERRNO.EBADF, op: 'sendFile', hint: `fd ${fd} is not an open file` });
  return d;
}

function methodFlags(m: string, more: boolean): number {
  let f = more ? SENDFILE_FLAGS.MORE : 0;
  if (m === 'splice') f |= SENDFILE_FLAGS.SPLICE;
  else if (m === 'read') f |= SENDFILE_FLAGS.READ;
  else if (m === 'read-copy') f |= SENDFILE_FLAGS.READ | SENDFILE_FLAGS.COPY;
  else if (m === 'direct') f |= SENDFILE_FLAGS.DIRECT;
  return f;
}

/**
 * Open (path) or duplicate (fd, FileHandle) the file and check the range,
 * synchronously.  Throws ZcConfigError (options, range), ZcError EINVAL
 * (not a regular file) or the fs error of the open (ENOENT...).
 */
export function resolveFile(file: FileSource, options: SendFileOptionsInput | undefined, ring: Ring | null): FileSpec {
  const o = parseSendFileOptions(options);
  let fd: number;
  if (typeof file === 'string') {
    fd = fs.openSync(file, 'r');
  } else if (typeof file === 'number') {
    if (!Number.isInteger(file) || file < 0) throw new TypeError(`sendFile: file must be a path, an fd or a FileHandle, not ${file}`);
    fd = dup(file, ring);
  } else if (file && typeof file === 'object' && typeof (file as FileHandle).fd === 'number') {
    const h = (file as FileHandle).fd;
    if (h < 0) throw new ZcError({ errno: ERRNO.EBADF, op: 'sendFile', hint: 'the FileHandle is closed' });
    fd = dup(h, ring);
  } else {
    throw new TypeError('sendFile: file must be a path, an fd or a FileHandle');
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) {
      throw new ZcError({
        errno: ERRNO.EINVAL,
        op: 'sendFile',
        hint: `${typeof file === 'string' ? file : `fd ${fd}`} is not a regular file (directory, pipe or device): only regular files can be sent`,
      });
    }
    const size = st.size;
    const offset = BigInt(o.offset);
    if (offset > size) throw fileRangeError('offset', o.offset, size, size);
    const length = o.length === undefined ? size - offset : BigInt(o.length);
    if (length > size - offset) throw fileRangeError('length', o.length ?? 0, size - offset, size);
    return { fd, offset, length, flags: methodFlags(o.method, o.more), signal: o.signal };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Close the spec's fd (we own it). */
export function releaseFile(spec: FileSpec): void {
  if (spec.fd >= 0) fs.closeSync(spec.fd);
  spec.fd = -1;
}

function methodOf(aux2: number): SendFileHow {
  const p = aux2 & SENDFILE_PATH.PATH_MASK;
  return p === SENDFILE_PATH.PATH_DIRECT ? 'direct' : p === SENDFILE_PATH.PATH_READ ? 'read' : 'splice';
}

/** The rejection of a transfer that did not go whole. */
function failure(errno: number, bytesSent: number, signal: AbortSignal | undefined, aborted: boolean): Error {
  if (aborted && signal) {
    const e = abortError(signal) as Error & { bytesSent: number };
    e.bytesSent = bytesSent;
    return e;
  }
  const hint =
    errno === ERRNO.ENODATA
      ? 'the file is shorter than offset + length: it shrank while being sent (truncated?)'
      : errno === ERRNO.EINVAL
        ? 'the file refused splice (method "splice"): use method "auto" to read it instead'
        : undefined;
  return new ZcError({ errno, op: 'sendFile', bytesSent, ...(hint ? { hint } : {}) });
}

/**
 * The io_uring way: one zc_sendfile request on the lane's socket, after
 * the lane's same-tick sends.  Takes ownership of spec.fd.
 */
export function sendFileOnRing(lane: SendLane, spec: FileSpec): Promise<SendFileResult> {
  const ring = lane.ring;
  const sock = lane.fd;
  lane.flush(); // this tick's coalesced sends go first
  const done = lane.begin();
  const { signal } = spec;
  return new Promise<SendFileResult>((resolve, reject) => {
    let ud = -1;
    let aborted = false;
    let settled = false;
    const cancel = (): void => {
      aborted = true;
      if (ud < 0 || settled) return; // not issued yet: issue() refuses it
      ring.zc.zc_sendfile_cancel(ring.ptr, ud);
      ring.submit(); // the cancel requests go to the kernel now
    };
    const stop = onAbort(signal, cancel);
    const end = (): void => {
      settled = true;
      stop();
      releaseFile(spec);
      done();
    };
    ring.enqueue({
      opName: 'sendFile',
      issue: (userData) => {
        if (aborted || sock < 0) return -ERRNO.ECANCELED;
        ud = userData;
        return ring.zc.zc_sendfile(ring.ptr, sock, spec.fd, spec.offset, spec.length, spec.flags, userData);
      },
      done: (c: Completion) => {
        const bytes = c.auxNumber;
        const aux2 = c.aux2;
        lane.bytesSent += bytes;
        end();
        if (c.res < 0) {
          reject(failure(-c.res, bytes, signal, aborted && -c.res === ERRNO.ECANCELED));
          return;
        }
        resolve({
          bytes,
          method: methodOf(aux2),
          spliceRefused: (aux2 & SENDFILE_PATH.FELL_BACK_SPLICE) !== 0,
          directRefused: (aux2 & SENDFILE_PATH.FELL_BACK_DIRECT) !== 0,
        });
      },
      fail: (e: ZcError) => {
        end();
        reject(aborted && e.errno === ERRNO.ECANCELED ? failure(e.errno, 0, signal, true) : e);
      },
    });
    if (signal?.aborted) cancel();
  });
}

/** Bytes per read on the node:net backend. */
const COPY_CHUNK = 256 * 1024;

/**
 * The node:net way: read the range in chunks and write each, waiting for
 * the previous one (the socket's own backpressure).  Takes ownership of
 * spec.fd.  `write` resolves when the socket took the chunk.
 */
export async function sendFileByCopy(spec: FileSpec, write: (b: Buffer) => Promise<void>): Promise<SendFileResult> {
  let sent = 0;
  let pos = spec.offset;
  let left = spec.length;
  const { signal } = spec;
  try {
    while (left > 0n) {
      if (signal?.aborted) throw failure(ERRNO.ECANCELED, sent, signal, true);
      const n = left > BigInt(COPY_CHUNK) ? COPY_CHUNK : Number(left);
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await new Promise<{ bytesRead: number }>((res, rej) =>
        fs.read(spec.fd, buf, 0, n, pos, (err, bytesRead) => (err ? rej(err) : res({ bytesRead }))),
      );
      if (bytesRead === 0) throw failure(ERRNO.ENODATA, sent, signal, false);
      try {
        await write(bytesRead === n ? buf : buf.subarray(0, bytesRead));
      } catch (e) {
        if (e instanceof ZcError) throw new ZcError({ errno: e.errno, op: 'sendFile', bytesSent: sent, hint: e.hint });
        const err = e as NodeJS.ErrnoException;
        const errno = typeof err.errno === 'number' ? err.errno : ERRNO.EPIPE;
        throw new ZcError({ errno, op: 'sendFile', bytesSent: sent });
      }
      sent += bytesRead;
      pos += BigInt(bytesRead);
      left -= BigInt(bytesRead);
    }
  } finally {
    releaseFile(spec);
  }
  return { bytes: sent, method: 'copy', spliceRefused: false, directRefused: false };
}

/** A ring's sendFile counters (zc_sendfile_stats). */
export interface SendFileStats {
  /** transfers finished */
  transfers: number;
  /** bytes sent per method */
  bytesSplice: number;
  bytesRead: number;
  bytesDirect: number;
  /** transfers whose file refused splice (read instead) */
  spliceRefused: number;
  /** transfers whose file refused O_DIRECT (read through the page cache) */
  directRefused: number;
  /** transfers running now */
  active: number;
  /** pipes open now (in use + kept for reuse), and how many are idle */
  pipes: number;
  pipesIdle: number;
  /** bytes per pipe the kernel granted */
  pipeSize: number;
  /** registered staging buffers of the read methods, and how many are free */
  buffers: number;
  buffersFree: number;
  /** finished transfers whose staging buffers the kernel still holds (unacked zero-copy data) */
  releasing: number;
}

/** Counters of the ring's sendFile machinery (pipes, staging buffers, fallbacks). */
export function sendFileStats(ring: Ring): SendFileStats {
  const b = structBuffer('zc_sendfile_stats');
  const ret = ring.zc.zc_sendfile_stats(ring.ptr, b);
  const s = decodeStruct('zc_sendfile_stats', b) as unknown as SendfileStatsStruct;
  if (ret < 0) throw new ZcError({ errno: ret < 0 ? ret : ERRNO.EINVAL, op: 'sendFile.stats' });
  return {
    transfers: Number(s.transfers),
    bytesSplice: Number(s.bytes_splice),
    bytesRead: Number(s.bytes_read),
    bytesDirect: Number(s.bytes_direct),
    spliceRefused: Number(s.splice_refused),
    directRefused: Number(s.direct_refused),
    active: s.active,
    pipes: s.pipes,
    pipesIdle: s.pipes_idle,
    pipeSize: s.pipe_size,
    buffers: s.bufs,
    buffersFree: s.bufs_free,
    releasing: s.releasing,
  };
}
