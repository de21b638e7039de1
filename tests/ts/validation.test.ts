// SPDX-License-Identifier: MIT
// Bad input to the socket API is named (issue 8, item 10): a ZcConfigError
// with the schema, field, value as written and what is allowed; never a
// TypeError from inside the library, a koffi message, a silent default or
// a raw resolver error.  Kernel errors carry their text and a hint.
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, Ring, ZcConfigError, ZcDatagram, ZcError, ZcSocket } from '../../ts/index.ts';
import { decodeSockaddr, encodeSockaddr } from '../../ts/addr.ts';
import { MAX_VIEW, parseBufferPoolOptions, parseRingOptions } from '../../ts/config.ts';
import { parseReceiveOptions } from '../../ts/recv.ts';
import { errnoName, hintFor } from '../../ts/errors.ts';
import { connect } from '../../ts/socket/socket.ts';
import { listening } from './net-helpers.ts';

function configError(fn: () => unknown): ZcConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ZcConfigError);
    return e as ZcConfigError;
  }
  throw new Error('expected a ZcConfigError, nothing was thrown');
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the Promise to reject');
}

describe('values are shown as written, each field once', () => {
  it.each([
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [Number.NEGATIVE_INFINITY, '-Infinity'],
    [-0, '-0'],
    [1e12, '1000000000000'],
  ])('entries = %s', (v, text) => {
    const e = configError(() => parseRingOptions({ entries: v }));
    expect(e.message).toContain(`RingOptions.entries = ${text}:`);
    // one line for the field, though it fails more than one check
    expect(e.issues.filter((i) => i.field === 'entries')).toHaveLength(1);
  });
});

describe('socket API arguments', () => {
  const ring = Ring.create();
  afterAll(() => ring.close());
  it('null options are not options: send(x, null), connect(null), open(null)', async () => {
    const [a, b] = ZcSocket.pair({ ring });
    try {
      const e = configError(() => a.send(new Uint8Array(3), null as never));
      expect(e.schema).toBe('SendOptions');
      expect(e.field).toBe('(root)');
      expect(e.message).toContain('= null');
      expect(configError(() => connect(null as never)).schema).toBe('ConnectOptions');
      const d = await rejection(ZcDatagram.open(null as never));
      expect(d).toBeInstanceOf(ZcConfigError);
      expect((d as ZcConfigError).schema).toBe('DatagramOptions');
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('fd, noDelay, backlog, family and pair options are checked', async () => {
    expect(configError(() => new ZcSocket({ ring, fd: '3' as never })).field).toBe('fd');
    expect(configError(() => connect({ ring, port: 1, noDelay: 'yes' as never })).field).toBe('noDelay');
    for (const backlog of [-1, Number.NaN, 1e12, 2.5]) {
      expect(configError(() => createServer({ ring, backlog })).field).toBe('backlog');
    }
    const srv = createServer({ ring });
    expect(configError(() => srv.listen(0, '127.0.0.1', '5' as never)).field).toBe('backlog');
    expect(configError(() => srv.listen({ port: 0, backlog: Number.NaN })).message).toContain('backlog = NaN');
    for (const family of [5, '6', 0]) {
      const e = await rejection(ZcDatagram.open({ ring, family: family as never }));
      expect(e).toBeInstanceOf(ZcConfigError);
      expect((e as ZcConfigError).field).toBe('family');
    }
    expect(configError(() => ZcSocket.pair('bogus' as never)).schema).toBe('PairOptions');
    expect(configError(() => ZcDatagram.pair('stream' as never)).schema).toBe('PairOptions');
    expect(configError(() => ZcSocket.pair({ ring, kind: 'dgram' } as never)).field).toBe('kind');
    srv.close();
  });

  it('a host that does not resolve: Node\'s error (ENOTFOUND, or EAI_AGAIN with no resolver) saying what to do', async () => {
    const s = connect({ ring, host: 'no-such-host.invalid', port: 80 });
    const err = await new Promise<NodeJS.ErrnoException & { hint?: string }>((resolve) => s.once('error', resolve));
    // a machine without a reachable resolver (the test VMs) answers EAI_AGAIN
    expect(['ENOTFOUND', 'EAI_AGAIN']).toContain(err.code);
    if (err.code === 'ENOTFOUND') {
      expect(err.hint).toMatch(/no address for host "no-such-host\.invalid".*IP literal/);
      expect(err.message).toMatch(/check the host name/);
    } else {
      expect(err.hint).toMatch(/name resolution of "no-such-host\.invalid" failed \(EAI_AGAIN\).*resolv\.conf.*IP literal/);
    }
  });

  it('an IPv6 zone becomes the scope id (a link-local peer needs it), an unknown one is named', async () => {
    const sa = encodeSockaddr('fe80::1%lo', 9, 'test');
    expect(sa.readUInt32LE(24)).toBe(ring.libc.ifNameToIndex('lo'));
    expect(encodeSockaddr('fe80::1%7', 9, 'test').readUInt32LE(24)).toBe(7);
    expect(decodeSockaddr(sa)).toMatchObject({ address: 'fe80::1', port: 9, family: 6 });
    const bad = configError(() => encodeSockaddr('fe80::1%nosuchif0', 9, 'ConnectOptions'));
    expect(bad.allowed).toMatch(/no interface "nosuchif0"/);
    // the kernel sees the zone: without one a link-local peer is EINVAL
    const codeOf = async (host: string): Promise<string> => {
      const s = connect({ ring, host, port: 9 });
      const e = await new Promise<ZcError>((resolve) => s.once('error', resolve));
      return e.code;
    };
    expect(await codeOf('fe80::1')).toBe('EINVAL');
    expect(await codeOf('fe80::1%lo')).not.toBe('EINVAL');
  });

  it('closing a server with accept() waiting rejects it with ECANCELED', async () => {
    const srv = await listening({ ring });
    const p = srv.accept();
    await srv.close();
    const e = await rejection(p);
    expect(e).toBeInstanceOf(ZcError);
    expect((e as ZcError).code).toBe('ECANCELED');
    // after the close, accept() says the server is not listening
    expect(((await rejection(srv.accept())) as ZcError).code).toBe('EINVAL');
  });

  it('kernel errors name themselves: EDESTADDRREQ, ENOSPC, EXDEV', async () => {
    const d = await ZcDatagram.open({ ring });
    const e = (await rejection(d.send(new Uint8Array(3)))) as ZcError;
    expect(e.code).toBe('EDESTADDRREQ');
    expect(e.message).toMatch(/destination address required/);
    expect(e.hint).toMatch(/sendTo/);
    await d.close();
    expect(new ZcError({ errno: 28, op: 'recv.create' }).message).toMatch(/ENOSPC \(no space left\)/);
    expect(errnoName(18)).toBe('EXDEV');
    expect(hintFor('pool.create', 28, { slotsNeeded: 2, maxFixedBuffers: 4 })).toMatch(/2 free fixed-buffer slot\(s\).*now 4/);
    expect(hintFor('recv.create', 22, { mode: 'zcrx', ifname: 'eth0', rxQueue: 1 })).toMatch(/header split/);
    expect(hintFor('recv.create', 22, { mode: 'zcrx', ifname: 'eth0', rxQueue: 1 })).not.toMatch(/zcrx-nodev/);
    expect(hintFor('recv.create', 22, { mode: 'zcrx-nodev' })).toMatch(/zcrx-nodev needs/);
  });
});

describe('memory larger than one view can show', () => {
  // A pool's or receive area's memory is one ArrayBuffer: past this Node's
  // largest (4 GiB in Node 20), refused with the options, before anything
  // is mapped or pinned; up to it, accepted.
  it('areaSize and count * size above buffer.constants.MAX_LENGTH are ZcConfigErrors', () => {
    const big = Math.min(2 ** 40, Math.ceil((MAX_VIEW + 1) / 2 ** 30) * 2 ** 30);
    if (big <= MAX_VIEW) return; // a Node whose views reach past 2^40
    const e = configError(() => parseReceiveOptions({ areaSize: big, bufferSize: 1 << 30 }));
    expect(e.issues[0]).toMatchObject({ field: 'areaSize' });
    expect(e.message).toMatch(/largest ArrayBuffer/);
    const size = 1 << 30;
    const count = Math.ceil((MAX_VIEW + 1) / size);
    const p = configError(() => parseBufferPoolOptions({ count, size }));
    expect(p.issues[0]).toMatchObject({ field: 'size' });
    expect(() => parseReceiveOptions({ areaSize: 2 ** 30, bufferSize: 1 << 30 })).not.toThrow();
    expect(() => parseBufferPoolOptions({ count: 4, size })).not.toThrow();
  });
});
