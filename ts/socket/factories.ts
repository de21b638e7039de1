// SPDX-License-Identifier: MIT
/**
 * Opening sockets through the ring: host names resolved (dns.lookup), then
 * socket + connect, socket + bind + listen, UDP bind/connect, socketpair.
 * Each returns the open fd; on failure the fd is closed and the error thrown.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import { domainOf, encodeSockaddr } from '../addr.ts';
import type { Ring } from '../ring.ts';
import { closeFdNow } from './close.ts';
import { ringOp } from './ring-op.ts';
import { setIntOption } from './sockopt.ts';
import type { ConnectOptions, ListenOptions, SocketKind, UdpOptions } from './types.ts';

/** An IP literal as is, a host name through dns.lookup. */
export async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  const r = await lookup(host);
  return r.address;
}

/** Run `setup` on a fresh fd; close the fd if it throws. */
async function withFd(ring: Ring, fd: number, kind: SocketKind, setup: () => Promise<void> | void): Promise<number> {
  try {
    await setup();
  } catch (e) {
    closeFdNow(ring, fd, kind);
    throw e;
  }
  return fd;
}

/** A connected TCP socket (socket + connect through the ring). */
export async function openConnected(ring: Ring, options: ConnectOptions): Promise<number> {
  const host = await resolveHost(options.host);
  const sa = encodeSockaddr(host, options.port, 'ConnectOptions');
  const fd = await ringOp(ring, 'socket', (ud) =>
    ring.zc.zc_socket(ring.ptr, domainOf(host), SYS.SOCK_STREAM, SYS.IPPROTO_TCP, ud),
  );
  return withFd(ring, fd, 'stream', async () => {
    if (options.noDelay ?? false) setIntOption(ring, fd, SYS.IPPROTO_TCP, SYS.TCP_NODELAY, 1);
    await ringOp(ring, 'connect', (ud) => ring.zc.zc_connect(ring.ptr, fd, sa, sa.length, ud));
  });
}

/** A listening TCP socket (socket + bind + listen through the ring). */
export async function openListener(ring: Ring, options: ListenOptions): Promise<number> {
  const host = await resolveHost(options.host ?? '127.0.0.1');
  const sa = encodeSockaddr(host, options.port ?? 0, 'ListenOptions');
  const fd = await ringOp(ring, 'socket', (ud) =>
    ring.zc.zc_socket(ring.ptr, domainOf(host), SYS.SOCK_STREAM, SYS.IPPROTO_TCP, ud),
  );
  return withFd(ring, fd, 'listener', async () => {
    setIntOption(ring, fd, SYS.SOL_SOCKET, SYS.SO_REUSEADDR, 1);
    await ringOp(ring, 'bind', (ud) => ring.zc.zc_bind(ring.ptr, fd, sa, sa.length, ud));
    const backlog = options.backlog ?? 511;
    await ringOp(ring, 'listen', (ud) => ring.zc.zc_listen(ring.ptr, fd, backlog, ud));
  });
}

/** A UDP socket, optionally bound and/or connected. */
export async function openUdp(ring: Ring, options: UdpOptions): Promise<number> {
  const family = options.family ?? (options.host !== undefined && isIP(options.host) === 6 ? 6 : 4);
  const domain = family === 6 ? SYS.AF_INET6 : SYS.AF_INET;
  const fd = await ringOp(ring, 'socket', (ud) => ring.zc.zc_socket(ring.ptr, domain, SYS.SOCK_DGRAM, SYS.IPPROTO_UDP, ud));
  return withFd(ring, fd, 'dgram', async () => {
    if (options.host !== undefined || options.port !== undefined) {
      const host = await resolveHost(options.host ?? (family === 6 ? '::' : '0.0.0.0'));
      const sa = encodeSockaddr(host, options.port ?? 0, 'UdpOptions');
      await ringOp(ring, 'bind', (ud) => ring.zc.zc_bind(ring.ptr, fd, sa, sa.length, ud));
    }
    if (options.connect) {
      const host = await resolveHost(options.connect.host);
      const sa = encodeSockaddr(host, options.connect.port, 'UdpOptions.connect');
      await ringOp(ring, 'connect', (ud) => ring.zc.zc_connect(ring.ptr, fd, sa, sa.length, ud));
    }
  });
}

/** socketpair(AF_UNIX) of the kind: two connected fds. */
export function openPair(ring: Ring, kind: 'stream' | 'dgram'): [number, number] {
  const sv = new Int32Array(2);
  const type = (kind === 'stream' ? SYS.SOCK_STREAM : SYS.SOCK_DGRAM) | SYS.SOCK_CLOEXEC;
  if (ring.libc.socketpair(SYS.AF_UNIX, type, 0, sv) < 0) {
    throw new ZcError({ errno: ring.libc.errno(), op: 'socketpair' });
  }
  return [sv[0] as number, sv[1] as number];
}
