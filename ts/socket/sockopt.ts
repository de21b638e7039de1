// SPDX-License-Identifier: MIT
/** Socket options and names read or set with plain libc calls. */
import { LAYOUT, SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import { decodeSockaddr, type SocketAddress } from '../addr.ts';
import type { Ring } from '../ring.ts';

const SO_INT = new Int32Array(1);
const SO_LEN = new Int32Array(1);
const NAME = new Uint8Array(LAYOUT.sockaddr_storage.size);
const NAME_LEN = new Int32Array(1);

/** setsockopt(fd, level, name, int); throws ZcError. */
export function setIntOption(ring: Ring, fd: number, level: number, name: number, value: number): void {
  SO_INT[0] = value;
  if (ring.libc.setsockopt(fd, level, name, SO_INT, 4) < 0) {
    throw new ZcError({ errno: ring.libc.errno(), op: 'setsockopt' });
  }
}

/** SOCK_STREAM, SOCK_DGRAM... from getsockopt(SO_TYPE); throws ZcError when fd is not a socket. */
export function socketTypeOf(ring: Ring, fd: number, op: string): number {
  SO_LEN[0] = 4;
  if (ring.libc.getsockopt(fd, SYS.SOL_SOCKET, SYS.SO_TYPE, SO_INT, SO_LEN) < 0) {
    throw new ZcError({ errno: ring.libc.errno(), op, hint: `fd ${fd} is not a socket` });
  }
  return SO_INT[0] as number;
}

/**
 * Whether the socket's family has zero-copy sends (SEND_ZC): AF_INET and
 * AF_INET6.  AF_UNIX and the rest answer EOPNOTSUPP.
 */
export function zeroCopyCapable(ring: Ring, fd: number): boolean {
  SO_LEN[0] = 4;
  if (fd < 0 || ring.libc.getsockopt(fd, SYS.SOL_SOCKET, SYS.SO_DOMAIN, SO_INT, SO_LEN) < 0) return true;
  return SO_INT[0] === SYS.AF_INET || SO_INT[0] === SYS.AF_INET6;
}

/**
 * Whether a connected socket's peer is on this host: 127.0.0.0/8, ::1
 * (also IPv4-mapped), or the socket's own address (a connection to one of
 * this host's addresses).  The kernel delivers such traffic locally and
 * copies every zero-copy payload when it does (skb_copy_ubufs at local
 * delivery), so zero-copy there only adds the notification and page
 * references to a copy that happens anyway.  False when not connected or
 * not IP.  Read once per socket.
 */
export function peerIsLocal(ring: Ring, fd: number): boolean {
  const peer = peerAddressOf(ring, fd);
  if (!peer) return false;
  const a = peer.address;
  if (a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.')) return true;
  const self = localAddressOf(ring, fd);
  return self !== null && self.address === a;
}

/** getsockname(fd), or null when it fails or is not IP (closed, AF_UNIX...). */
export function localAddressOf(ring: Ring, fd: number): SocketAddress | null {
  NAME_LEN[0] = NAME.length;
  if (fd < 0 || ring.libc.getsockname(fd, NAME, NAME_LEN) < 0) return null;
  return decodeSockaddr(NAME);
}

/** getpeername(fd), or null when not connected or not IP. */
export function peerAddressOf(ring: Ring, fd: number): SocketAddress | null {
  NAME_LEN[0] = NAME.length;
  if (fd < 0 || ring.libc.getpeername(fd, NAME, NAME_LEN) < 0) return null;
  return decodeSockaddr(NAME);
}

/** SO_LINGER { on, 0 }: close() then resets the connection instead of a FIN. */
export function setLingerZero(ring: Ring, fd: number): void {
  const linger = new Int32Array([1, 0]); // struct linger { l_onoff = 1, l_linger = 0 }
  ring.libc.setsockopt(fd, SYS.SOL_SOCKET, SYS.SO_LINGER, linger, 8);
}

/** TCP keep-alive on/off; initialDelay in ms (0: the system default), like net.Socket.setKeepAlive. */
export function setKeepAlive(ring: Ring, fd: number, enable: boolean, initialDelayMs: number): void {
  setIntOption(ring, fd, SYS.SOL_SOCKET, SYS.SO_KEEPALIVE, enable ? 1 : 0);
  if (enable && initialDelayMs > 0) {
    setIntOption(ring, fd, SYS.IPPROTO_TCP, SYS.TCP_KEEPIDLE, Math.max(1, Math.floor(initialDelayMs / 1000)));
  }
}
