// SPDX-License-Identifier: MIT
/** Socket options and names read or set with plain libc calls. */
import { LAYOUT, SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import { decodeSockaddr, type SocketAddress } from '../addr.ts';
import type { Ring } from '../ring.ts';
import type { SocketKind } from './types.ts';

const SO_INT = new Int32Array(1);
const SO_LEN = new Int32Array(1);

/** setsockopt(fd, level, name, int); throws ZcError. */
export function setIntOption(ring: Ring, fd: number, level: number, name: number, value: number): void {
  const v = new Int32Array([value]);
  if (ring.libc.setsockopt(fd, level, name, v, 4) < 0) {
    throw new ZcError({ errno: ring.libc.errno(), op: 'setsockopt' });
  }
}

/** 'dgram' or 'stream', from getsockopt(SO_TYPE); throws ZcError when fd is not a socket. */
export function socketKindOf(ring: Ring, fd: number, op: string): SocketKind {
  SO_LEN[0] = 4;
  if (ring.libc.getsockopt(fd, SYS.SOL_SOCKET, SYS.SO_TYPE, SO_INT, SO_LEN) < 0) {
    throw new ZcError({ errno: ring.libc.errno(), op, hint: `fd ${fd} is not a socket` });
  }
  return SO_INT[0] === SYS.SOCK_DGRAM ? 'dgram' : 'stream';
}

/** getsockname(fd), or null when it fails (closed, AF_UNIX...). */
export function localAddressOf(ring: Ring, fd: number): SocketAddress | null {
  const b = new Uint8Array(LAYOUT.sockaddr_storage.size);
  const len = new Int32Array([b.length]);
  if (fd < 0 || ring.libc.getsockname(fd, b, len) < 0) return null;
  return decodeSockaddr(b);
}

/** SO_LINGER { on, 0 }: close() then resets the connection instead of a FIN. */
export function setLingerZero(ring: Ring, fd: number): void {
  const linger = new Int32Array([1, 0]); // struct linger { l_onoff = 1, l_linger = 0 }
  ring.libc.setsockopt(fd, SYS.SOL_SOCKET, SYS.SO_LINGER, linger, 8);
}
