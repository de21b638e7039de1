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

/** TCP_CA_NAME_MAX: a congestion control's name, NUL-terminated */
const CC_NAME = new Uint8Array(16);
const CC_LEN = new Int32Array(1);
/** what a pacing congestion control is replaced with to a peer on this host, in order of preference */
const UNPACED = ['cubic', 'reno'].map((n) => new TextEncoder().encode(n));

/** getsockopt(TCP_CONGESTION): the socket's congestion control, or null when it has none (not TCP). */
export function congestionControlOf(ring: Ring, fd: number): string | null {
  CC_LEN[0] = CC_NAME.length;
  CC_NAME.fill(0);
  if (fd < 0 || ring.libc.getsockopt(fd, SYS.IPPROTO_TCP, SYS.TCP_CONGESTION, CC_NAME, CC_LEN) < 0) return null;
  const end = CC_NAME.indexOf(0);
  return new TextDecoder().decode(CC_NAME.subarray(0, end < 0 ? Math.min(CC_LEN[0] as number, CC_NAME.length) : end));
}

/**
 * A TCP connection to a peer on this host (see peerIsLocal) gets a
 * congestion control that does not pace: a BBR socket ('bbr...', a common
 * system default) is switched to cubic (reno where cubic may not be set).
 * BBR needs pacing; with no fq qdisc on the path (loopback has none) TCP
 * paces itself with a per-socket hrtimer, which on loopback only adds
 * timer interrupts and pauses: a copying sender to 127.0.0.1 arms one
 * every ~28 sends of 4 KiB, and a copying io_uring send of 4 KiB cost
 * 0.86-1.37 us of CPU with BBR against 0.49-0.62 us with cubic
 * (docs/PERFORMANCE.md, issue 9, session 9).  There is no link to share
 * and no queue to keep short between two sockets of one host.  Any other
 * congestion control is kept, and so is BBR when the switch is refused
 * (net.ipv4.tcp_allowed_congestion_control).  Returns the name in use.
 */
export function unpacedToLocalPeer(ring: Ring, fd: number): string | null {
  const cc = congestionControlOf(ring, fd);
  if (cc === null || !cc.startsWith('bbr')) return cc;
  for (const name of UNPACED) {
    if (ring.libc.setsockopt(fd, SYS.IPPROTO_TCP, SYS.TCP_CONGESTION, name, name.length) === 0) {
      return new TextDecoder().decode(name);
    }
  }
  return cc;
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
