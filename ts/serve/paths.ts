// SPDX-License-Identifier: MIT
/**
 * From a request target to an open file inside the served root, refusing
 * everything that could reach outside it:
 *
 *  - the target is decoded once, strictly: a bad or truncated escape, an
 *    encoded NUL, '/' or '\' (%00, %2F, %5C), bytes that are not UTF-8: 400
 *  - a '..' segment, however written ('..', '%2e%2e', '.%2E'): 400
 *  - segments starting with '.' (dotfiles, '.git'): 404 unless allowed
 *  - a path longer than {@link MAX_PATH} bytes or a segment over 255: 414
 *  - the file actually opened must lie under the root's real path (the
 *    kernel's own name for the open file, /proc/self/fd): a symlink that
 *    leads out of the root, anywhere on the path, is 403
 *  - only regular files are served; a directory is 404 unless an index
 *    file name is configured (listings are never generated)
 *
 * The file is opened O_NONBLOCK (a FIFO placed in the root cannot stall
 * the server), then set back to blocking for the transfer.
 */
import fs from 'node:fs';

/** Longest decoded path. */
export const MAX_PATH = 4096;

export type Resolved =
  | { ok: true; rel: string; dir: boolean }
  | { ok: false; status: number; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * The path of a request target relative to the root ('' for the root
 * itself), or the status to refuse it with.  `dotfiles`: serve names
 * starting with '.' (except '.' and '..', which are never names).
 */
export function resolveTarget(target: string, dotfiles: boolean): Resolved {
  let path = target;
  // absolute-form (proxies): http://host/path
  const abs = /^https?:\/\/[^/?#]*/i.exec(path);
  if (abs) path = path.slice(abs[0].length) || '/';
  if (path[0] !== '/') return { ok: false, status: 400, reason: 'the request target is not a path' };
  const q = path.search(/[?#]/);
  if (q >= 0) path = path.slice(0, q);
  if (path.length > 3 * MAX_PATH) return { ok: false, status: 414, reason: 'path too long' };

  const bytes = new Uint8Array(path.length);
  let n = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c !== 0x25) {
      bytes[n++] = c;
      continue;
    }
    const hi = i + 2 < path.length ? hex(path.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hex(path.charCodeAt(i + 2)) : -1;
    if (lo < 0) return { ok: false, status: 400, reason: 'bad percent-encoding' };
    const b = hi * 16 + lo;
    if (b === 0) return { ok: false, status: 400, reason: 'encoded NUL in the path' };
    if (b === 0x2f || b === 0x5c) return { ok: false, status: 400, reason: 'encoded slash in the path' };
    bytes[n++] = b;
    i += 2;
  }
  if (n > MAX_PATH) return { ok: false, status: 414, reason: 'path too long' };
  let decoded: string;
  try {
    decoded = utf8.decode(bytes.subarray(0, n));
  } catch {
    return { ok: false, status: 400, reason: 'the path is not UTF-8' };
  }
  const segs: string[] = [];
  for (const s of decoded.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') return { ok: false, status: 400, reason: "'..' in the path" };
    if (Buffer.byteLength(s) > 255) return { ok: false, status: 414, reason: 'a path segment is too long' };
    if (s[0] === '.' && !dotfiles) return { ok: false, status: 404, reason: 'dotfile' };
    segs.push(s);
  }
  return { ok: true, rel: segs.join('/'), dir: decoded.endsWith('/') };
}

export type Opened =
  | { ok: true; fd: number; stat: fs.BigIntStats; viaIndex: boolean }
  | { ok: false; status: number; reason: string };

const O_OPEN = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

function statusOf(e: unknown): { status: number; reason: string } {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return { status: 404, reason: 'no such file' };
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      return { status: 403, reason: code };
    case 'ENAMETOOLONG':
      return { status: 414, reason: 'path too long' };
    case 'EMFILE':
    case 'ENFILE':
      return { status: 503, reason: 'out of file descriptors' };
    default:
      return { status: 500, reason: code ?? String(e) };
  }
}

/** A served root: its real path, and how to open files under it. */
export class Root {
  /** the real path (symlinks resolved) everything must stay under */
  readonly real: string;
  readonly #prefix: string;
  /** clear O_NONBLOCK on an fd (fcntl), or null to skip */
  readonly #blocking: ((fd: number) => void) | null;

  constructor(dir: string, blocking: ((fd: number) => void) | null) {
    this.real = fs.realpathSync(dir);
    if (!fs.statSync(this.real).isDirectory()) throw new Error(`serve: ${dir} is not a directory`);
    this.#prefix = this.real === '/' ? '/' : `${this.real}/`;
    this.#blocking = blocking;
  }

  /**
   * Open rel (from {@link resolveTarget}) for reading: a regular file, or
   * `index` inside a directory.  The caller closes the fd.
   */
  open(rel: string, index: string | null): Opened {
    let fd = -1;
    try {
      fd = fs.openSync(rel === '' ? this.real : this.#prefix + rel, O_OPEN);
      let stat = fs.fstatSync(fd, { bigint: true });
      const viaIndex = stat.isDirectory();
      if (viaIndex) {
        if (index === null) {
          fs.closeSync(fd);
          return { ok: false, status: 404, reason: 'a directory (no index configured)' };
        }
        const dirFd = fd;
        fd = -1;
        try {
          fd = fs.openSync(`/proc/self/fd/${dirFd}/${index}`, O_OPEN);
        } finally {
          fs.closeSync(dirFd);
        }
        stat = fs.fstatSync(fd, { bigint: true });
      }
      // Where the kernel says the open file is: the check no symlink can fool.
      const where = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (!where.startsWith(this.#prefix)) {
        fs.closeSync(fd);
        return { ok: false, status: 403, reason: 'outside the served directory (symlink)' };
      }
      if (!stat.isFile()) {
        fs.closeSync(fd);
        return { ok: false, status: 404, reason: 'not a regular file' };
      }
      this.#blocking?.(fd);
      return { ok: true, fd, stat, viaIndex };
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      return { ok: false, ...statusOf(e) };
    }
  }
}
