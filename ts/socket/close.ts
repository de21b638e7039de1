// SPDX-License-Identifier: MIT
/**
 * How a socket's fd closes.  Three ways, all ending every request of the
 * fd (nothing stays pending):
 * - `destroy`: sends still queued in libzc end with ECANCELED, sends the
 *   kernel is blocked in end with EPIPE (shutdown), what the kernel already
 *   took is still delivered (FIN), the fd is closed through the ring;
 * - `reset`: the same with SO_LINGER 0, so the kernel drops unsent data
 *   and sends RST: zero-copy buffers held for a peer that does not read
 *   come back at once;
 * - `closeFdNow`: the synchronous version of `reset` for error paths and
 *   ring teardown.
 * The graceful close (FIN after everything, then close) is the socket's:
 * end(), wait for the sends, then `destroy`.
 * Each first takes the fd back from the ring's watcher (Ring.disownFd):
 * every close of a socket fd goes through here.
 */
import { ERRNO, SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import type { Ring } from '../ring.ts';
import { ringOp } from './ring-op.ts';
import { setLingerZero } from './sockopt.ts';

/** struct sockaddr with sa_family AF_UNSPEC: connect() to it disconnects a TCP socket. */
const UNSPEC = new Uint8Array(16);

/**
 * Reset a TCP connection now, while requests in flight still hold the file
 * (so close(2) alone would not): connect(AF_UNSPEC) runs tcp_disconnect,
 * which sends RST, drops unsent data and fails every waiting operation.
 * Also ends a connect in progress.
 */
export function resetFd(ring: Ring, fd: number): void {
  setLingerZero(ring, fd);
  ring.libc.connect(fd, UNSPEC, UNSPEC.length);
}

/**
 * Where discardUnread reads to: TCP discards with MSG_TRUNC without
 * writing it; AF_UNIX streams copy into it (they have no discard).
 */
const SCRATCH = new Uint8Array(64 * 1024);

/**
 * Discard what the peer sent and nobody read: close(2) of a TCP socket
 * with unread bytes resets the connection (RFC 2525) and drops what we
 * sent that the peer has not read yet.  net.Socket reads eagerly, so its
 * destroy() closes with FIN; a ZcSocket reads only for a consumer, so it
 * empties the queue (MSG_TRUNC: no copy) right before the close.  Bytes
 * arriving after this still reset, as with net.Socket.
 */
export function discardUnread(ring: Ring, fd: number): void {
  const libc = ring.libc;
  // at most 64 MiB (a receive queue holds a few MiB)
  for (let i = 0; i < 1024 && libc.recv(fd, SCRATCH, SCRATCH.length, SYS.MSG_DONTWAIT | SYS.MSG_TRUNC) > 0; i++);
}

/**
 * Stop both directions now: queued sends end (ECANCELED), and the close is
 * not held behind sends in flight (with the kernel's unified sends their
 * completion waits for the buffers, which only a reset frees).  Without
 * `reset` the kernel still sends what it took, then FIN (shutdown wakes
 * sends waiting for room with EPIPE).
 */
export function abortFd(ring: Ring, fd: number, reset: boolean): void {
  if (reset) resetFd(ring, fd);
  else {
    ring.libc.shutdown(fd, SYS.SHUT_RDWR);
    discardUnread(ring, fd);
  }
  const rp = ring.rawPtr;
  if (rp) ring.zc.zc_sock_abort(rp, fd);
}

/** Reset (stream sockets) and close an fd libzc may know, synchronously. */
export function closeFdNow(ring: Ring, fd: number, stream: boolean): void {
  ring.disownFd(fd);
  const rp = ring.rawPtr;
  if (rp) ring.zc.zc_sock_forget(rp, fd);
  abortFd(ring, fd, stream);
  ring.libc.close(fd);
}

/**
 * Ring teardown (Ring.close(), after zc_cancel_all): abort, then close
 * through libzc without waiting.  Closing with close(2) here could let a
 * link of the socket's send chain still in the kernel (the kernel looks up
 * a link's fd only when the link before it ends) reach whatever socket
 * gets the number next; libzc keeps the number taken until the chain is
 * over.  The record (user_data 0) is nobody's.
 */
export function closeFdForTeardown(ring: Ring, fd: number, reset: boolean): void {
  ring.disownFd(fd);
  const rp = ring.rawPtr;
  abortFd(ring, fd, reset);
  const rc = rp ? ring.zc.zc_close(rp, fd, 0) : -ERRNO.EBADF;
  if (rc < 0 && rc !== -ERRNO.EALREADY) ring.libc.close(fd);
}

/** Close `fd` through the ring after aborting it (`reset`: with RST); never rejects. */
export async function closeFd(ring: Ring, fd: number, reset: boolean): Promise<void> {
  ring.disownFd(fd);
  if (ring.closed) {
    closeFdNow(ring, fd, reset);
    return;
  }
  abortFd(ring, fd, reset);
  try {
    await ringOp(ring, 'close', (ud) => ring.zc.zc_close(ring.ptr, fd, ud));
  } catch (e) {
    // Canceled before it ran (the ring is closing): the fd is still open.
    if (e instanceof ZcError && e.code === 'ECANCELED') ring.libc.close(fd);
    // Any other failure of close(2) still released the fd.
  }
}
