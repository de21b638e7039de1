// SPDX-License-Identifier: MIT
// A TCP connection to a peer on this host does not pace (issue 9): a BBR
// socket (BBR needs pacing, and with no fq qdisc on loopback TCP paces
// itself with an hrtimer) is switched to cubic or reno; any other
// congestion control is kept.  Both ends of a loopback connection made
// by the library (connect and accept) get it, unless localPacing: true.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ring, ZcSocket } from '../../ts/index.ts';
import { SYS } from '../../ts/ffi/abi.gen.ts';
import { congestionControlOf, unpacedToLocalPeer } from '../../ts/socket/sockopt.ts';
import { connected, listening, portOf, tcpPair } from './net-helpers.ts';

const sysctl = (name: string): string => readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim();
const systemDefault = sysctl('tcp_congestion_control');
const available = sysctl('tcp_available_congestion_control').split(/\s+/);
const UNPACED = ['cubic', 'reno'];

/** setsockopt(TCP_CONGESTION, name); false when the kernel refuses it */
function setCc(ring: Ring, fd: number, name: string): boolean {
  const b = new TextEncoder().encode(name);
  return ring.libc.setsockopt(fd, SYS.IPPROTO_TCP, SYS.TCP_CONGESTION, b, b.length) === 0;
}

describe('congestion control to a peer on this host', () => {
  it('connect and accept over loopback: no BBR, any other default kept', async () => {
    const ring = Ring.create();
    try {
      const { client, server, listener } = await tcpPair(ring);
      for (const s of [client, server]) {
        const cc = congestionControlOf(ring, s.fd);
        if (systemDefault.startsWith('bbr')) expect(UNPACED).toContain(cc);
        else expect(cc).toBe(systemDefault);
      }
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });

  it('switches a bbr socket to cubic (or reno) and keeps the others', async (ctx) => {
    const ring = Ring.create();
    try {
      const { client, server, listener } = await tcpPair(ring);
      const fd = client.fd;
      if (!available.includes('bbr') && !setCc(ring, fd, 'bbr')) {
        ctx.skip(); // tcp_bbr is neither built in nor loadable here: nothing to switch from
      }
      expect(setCc(ring, fd, 'bbr'), 'setsockopt(TCP_CONGESTION, "bbr")').toBe(true);
      expect(congestionControlOf(ring, fd)).toBe('bbr');
      const now = unpacedToLocalPeer(ring, fd);
      expect(UNPACED).toContain(now);
      expect(congestionControlOf(ring, fd)).toBe(now);
      // reno is always there; a non-pacing congestion control stays as it is
      expect(setCc(ring, fd, 'reno')).toBe(true);
      expect(unpacedToLocalPeer(ring, fd)).toBe('reno');
      expect(congestionControlOf(ring, fd)).toBe('reno');
      // the connection still carries data after the switches
      const got = new Promise<number>((resolve) => server.once('data', (b: Buffer) => resolve(b.length)));
      await client.send(new Uint8Array(1000));
      expect(await got).toBeGreaterThan(0);
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });

  it('localPacing: true keeps the system default (and bbr when set): connect and server', async () => {
    const ring = Ring.create();
    const saved = systemDefault;
    try {
      const listener = await listening({ ring, localPacing: true });
      const [client, server] = await Promise.all([
        connected({ ring, host: '127.0.0.1', port: portOf(listener), localPacing: true }),
        listener.accept(),
      ]);
      for (const s of [client, server]) expect(congestionControlOf(ring, s.fd)).toBe(saved);
      // a bbr socket adopted with localPacing: true stays bbr
      if (available.includes('bbr') || setCc(ring, client.fd, 'bbr')) {
        expect(setCc(ring, client.fd, 'bbr')).toBe(true);
        const fd = ring.libc.fcntl(client.fd, SYS.F_DUPFD_CLOEXEC, 0);
        expect(fd).toBeGreaterThanOrEqual(0);
        const adopted = new ZcSocket({ ring, fd, localPacing: true });
        expect(congestionControlOf(ring, fd)).toBe('bbr');
        adopted.destroy();
        const fd2 = ring.libc.fcntl(client.fd, SYS.F_DUPFD_CLOEXEC, 0);
        const adopted2 = new ZcSocket({ ring, fd: fd2 });
        expect(UNPACED).toContain(congestionControlOf(ring, fd2));
        adopted2.destroy();
      }
      client.destroy();
      server.destroy();
      await listener.close();
    } finally {
      ring.close();
    }
  });

  it('localPacing is validated', () => {
    expect(() => new ZcSocket({ localPacing: 'yes' as never })).toThrow(/localPacing/);
  });

  it('a descriptor that is not TCP has no congestion control', () => {
    const ring = Ring.create();
    try {
      expect(congestionControlOf(ring, -1)).toBeNull();
      expect(unpacedToLocalPeer(ring, 0)).toBeNull(); // stdin: not a socket
    } finally {
      ring.close();
    }
  });
});
