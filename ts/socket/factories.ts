// SPDX-License-Identifier: MIT
/**
 * Opening sockets through the ring: host names resolved (dns.lookup), then
 * socket, connect, bind + listen, socketpair.  Functions return fds; an fd
 * a failing step leaves behind is closed before the error is thrown.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ERRNO, SYS } from '../ffi/abi.gen.ts';
import { ZcError } from '../errors.ts';
import { domainOf, encodeSockaddr } from '../addr.ts';
import type { Ring } from '../ring.ts';
import { closeFdNow } from './close.ts';
import { ringOp } from './ring-op.ts';
import { setIntOption } from './sockopt.ts';

/**
 * An IP literal as is, a host name through dns.lookup (the first address,
 * of `family` if given).  A failed lookup keeps Node's error (code
 * ENOTFOUND, EAI_AGAIN..., syscall, hostname) and says what to do.
 */
export async function resolveHost(host: string, family?: 4 | 6): Promise<string> {
  if (isIP(host)) return host;
  try {
    const r = await lookup(host, family ? { family } : {});
    return r.address;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { hint?: string };
    const hint =
      err.code === 'ENOTFOUND'
        ? `no address for host ${JSON.stringify(host)}${family ? ` (IPv${family})` : ''}: check the host name, or give an IP literal`
        : `name resolution of ${JSON.stringify(host)} failed (${err.code ?? 'unknown'}): check the resolver (/etc/resolv.conf) or give an IP literal`;
    err.hint = hint;
    err.message = `${err.message}: ${hint}`;
    throw err;
  }
}

/**
 * socket(2) through the ring.  The fd is the ring's from here (Ring.ownFd:
 * closed with the ring should the thread be terminated while it is still
 * binding or connecting); every way to close it goes through close.ts.
 */
export async function openSocket(ring: Ring, domain: number, type: number, protocol: number): Promise<number> {
  const fd = await ringOp(ring, 'socket', (ud) => ring.zc.zc_socket(ring.ptr, domain, type, protocol, ud));
  ring.ownFd(fd);
  return fd;
}

/** A TCP socket for `host`'s address family. */
export function openStream(ring: Ring, host: string): Promise<number> {
  return openSocket(ring, domainOf(host), SYS.SOCK_STREAM, SYS.IPPROTO_TCP);
}

/** connect(2) through the ring; `host` is an IP literal. */
export function connectFd(ring: Ring, fd: number, host: string, port: number, what: string): Promise<number> {
  const sa = encodeSockaddr(host, port, what);
  return ringOp(ring, 'connect', (ud) => ring.zc.zc_connect(ring.ptr, fd, sa, sa.length, ud));
}

/** Run `setup` on a fresh fd; close the fd if it throws. */
export async function withFd(ring: Ring, fd: number, stream: boolean, setup: () => Promise<unknown> | void): Promise<number> {
  try {
    await setup();
  } catch (e) {
    closeFdNow(ring, fd, stream);
    throw e;
  }
  return fd;
}

/** What a listening socket is opened with. */
export interface ListenSpec {
  /** IP literal or host name; undefined: every address ('::' dual-stack, else '0.0.0.0') */
  host?: string;
  port: number;
  backlog: number;
  reusePort: boolean;
  ipv6Only: boolean;
}

/** A listening TCP socket (socket + bind + listen through the ring). */
export async function openListener(ring: Ring, spec: ListenSpec): Promise<number> {
  let host = spec.host === undefined ? '::' : await resolveHost(spec.host);
  let fd: number;
  try {
    fd = await openStream(ring, host);
  } catch (e) {
    // No IPv6 on this host: every address is every IPv4 address.
    if (spec.host !== undefined || !(e instanceof ZcError && e.code === 'EAFNOSUPPORT')) throw e;
    host = '0.0.0.0';
    fd = await openStream(ring, host);
  }
  const sa = encodeSockaddr(host, spec.port, 'ListenOptions');
  return withFd(ring, fd, false, async () => {
    setIntOption(ring, fd, SYS.SOL_SOCKET, SYS.SO_REUSEADDR, 1);
    if (spec.reusePort) setIntOption(ring, fd, SYS.SOL_SOCKET, SYS.SO_REUSEPORT, 1);
    if (isIP(host) === 6) setIntOption(ring, fd, SYS.IPPROTO_IPV6, SYS.IPV6_V6ONLY, spec.ipv6Only ? 1 : 0);
    await ringOp(ring, 'bind', (ud) => ring.zc.zc_bind(ring.ptr, fd, sa, sa.length, ud));
    await ringOp(ring, 'listen', (ud) => ring.zc.zc_listen(ring.ptr, fd, spec.backlog, ud));
  });
}

/** What a UDP socket is opened with. */
export interface UdpSpec {
  host?: string;
  port?: number;
  family?: 4 | 6;
  connect?: { host: string; port: number };
}

/** A UDP socket, optionally bound and/or connected. */
export async function openUdp(ring: Ring, spec: UdpSpec): Promise<number> {
  const family = spec.family ?? (spec.host !== undefined && isIP(spec.host) === 6 ? 6 : 4);
  const domain = family === 6 ? SYS.AF_INET6 : SYS.AF_INET;
  const fd = await openSocket(ring, domain, SYS.SOCK_DGRAM, SYS.IPPROTO_UDP);
  return withFd(ring, fd, false, async () => {
    if (spec.host !== undefined || spec.port !== undefined) {
      const host = await resolveHost(spec.host ?? (family === 6 ? '::' : '0.0.0.0'), family);
      const sa = encodeSockaddr(host, spec.port ?? 0, 'UdpOptions');
      await ringOp(ring, 'bind', (ud) => ring.zc.zc_bind(ring.ptr, fd, sa, sa.length, ud));
    }
    if (spec.connect) {
      const host = await resolveHost(spec.connect.host, family);
      await connectFd(ring, fd, host, spec.connect.port, 'UdpOptions.connect');
    }
  });
}

/** socketpair(AF_UNIX) of the type: two connected fds. */
export function openPair(ring: Ring, type: number): [number, number] {
  // Refused before the fds exist: a closed ring could not take them.
  if (ring.closed) throw new ZcError({ errno: ERRNO.EBADF, op: 'socketpair', hint: 'the ring is closed' });
  const sv = new Int32Array(2);
  if (ring.libc.socketpair(SYS.AF_UNIX, type | SYS.SOCK_CLOEXEC, 0, sv) < 0) {
    throw new ZcError({ errno: ring.libc.errno(), op: 'socketpair' });
  }
  ring.ownFd(sv[0]!);
  ring.ownFd(sv[1]!);
  return [sv[0] as number, sv[1] as number];
}
