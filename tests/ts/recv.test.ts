// SPDX-License-Identifier: MIT
/**
 * Zero-copy receive on the running kernel: byte-exact long streams from
 * the zero-copy send path, concurrent connections, slow consumers,
 * ownership of chunks, every ending (EOF, reset, cancel, receiver close,
 * ring close) and every refusal, in each mode the kernel offers (host:
 * bufring; 7.2 VMs: zcrx-nodev too).  URING_ZC_SCALE scales the streams.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LAYOUT } from '../../ts/ffi/abi.gen.ts';
import { recvLayout } from '../../ts/ffi/recv.ts';
import { ZcConfigError, ZcError, ZcOwnershipError } from '../../ts/errors.ts';
import { probe } from '../../ts/probe.ts';
import {
  Receiver,
  availableRecvModes,
  parseReceiveOptions,
  receive,
  type RecvMode,
  type RecvStream,
} from '../../ts/recv.ts';
import { Ring } from '../../ts/ring.ts';
import { ZcDatagram } from '../../ts/socket/datagram.ts';
import { childJson, fdCount, runTs, scaled, sleep, vmKb } from './helpers.ts';
import { checkPattern, netSend, patternSlice, zcSend } from './recv-helpers.ts';
import { connected, listening, portOf, tcpPair } from './net-helpers.ts';

const MiB = 1024 * 1024;
const caps = probe().caps;
const nodev = caps.ZCRX_NODEV;
/** modes to run the stream tests in */
const MODES: RecvMode[] = nodev ? ['bufring', 'zcrx-nodev'] : ['bufring'];
let totalVerified = 0;

console.log(
  `recv suite: kernel ${probe().kernelRelease}, modes ${MODES.join(', ')}` +
    (nodev ? '' : ' (zcrx-nodev skipped: kernel without ZCRX_REG_NODEV, needs >= 7.1)'),
);

function ringFor(mode: RecvMode | 'auto'): Ring {
  return mode === 'bufring' || mode === 'auto' ? Ring.create() : Ring.create({ deferTaskrun: true, cqe32: true });
}

/** A connected pair: a ZcSocket client and the accepted ZcSocket. */
const zcPair = tcpPair;

/** Drain a stream, verifying every byte; releases each chunk (or holds `hold` at a time). */
async function drain(s: RecvStream, opts: { hold?: number; delayMs?: number; maxChunk?: number } = {}): Promise<number> {
  let got = 0;
  const held: { release(): void }[] = [];
  for await (const c of s) {
    expect(c.streamOffset).toBe(got);
    if (opts.maxChunk !== undefined) expect(c.length).toBeLessThanOrEqual(opts.maxChunk);
    const bad = checkPattern(c.data, got);
    if (bad >= 0) throw new Error(`mismatch at stream offset ${bad}`);
    got += c.length;
    if (opts.hold) {
      held.push(c);
      if (held.length >= opts.hold) {
        if (opts.delayMs) await sleep(opts.delayMs);
        for (const h of held.splice(0)) h.release();
      }
    } else {
      c.release();
    }
  }
  for (const h of held) h.release();
  totalVerified += got;
  return got;
}

const rings: Ring[] = [];
afterEach(() => {
  for (const r of rings.splice(0)) r.close();
});
function track(r: Ring): Ring {
  rings.push(r);
  return r;
}

describe('receive ABI and options', () => {
  it('koffi layouts match libzc.h', () => {
    for (const t of ['zc_rx_config', 'zc_rx_info'] as const) {
      const k = recvLayout(t);
      const c = LAYOUT[t];
      expect(k.size).toBe(c.size);
      for (const [f, v] of Object.entries(c.fields)) expect(k.offsets[f], `${t}.${f}`).toBe(v.offset);
    }
  });

  it('defaults', () => {
    const o = parseReceiveOptions();
    expect(o).toMatchObject({ mode: 'auto', areaSize: 16 * MiB, rxQueue: 0 });
  });

  const bad: [unknown, string][] = [
    [{ mode: 'fast' }, 'mode'],
    [{ areaSize: 1000 }, 'areaSize'],
    [{ areaSize: -4096 }, 'areaSize'],
    [{ areaSize: 2 ** 41 }, 'areaSize'],
    [{ areaSize: 4096 * 3, bufferSize: 8192 }, 'areaSize'],
    [{ bufferSize: 4097 }, 'bufferSize'],
    [{ bufferSize: 2 ** 31 }, 'bufferSize'],
    [{ mode: 'bufring', bufferSize: 4096, areaSize: 4096 * 65536 }, 'areaSize'],
    [{ ringEntries: 3 }, 'ringEntries'],
    [{ ringEntries: 65536 }, 'ringEntries'],
    [{ mode: 'bufring', bufferSize: 4096, areaSize: 16 * 4096, ringEntries: 8 }, 'ringEntries'],
    [{ mode: 'zcrx' }, 'ifname'],
    [{ mode: 'zcrx', ifname: 'eth0', bufferSize: 12288, areaSize: 12288 }, 'bufferSize'],
    [{ mode: 'zcrx-nodev', ifname: 'eth0' }, 'ifname'],
    [{ mode: 'zcrx-nodev', bufferSize: 8192 }, 'bufferSize'],
    [{ ifname: '' }, 'ifname'],
    [{ ifname: 'a-very-long-interface-name' }, 'ifname'],
    [{ ifname: 'eth0:1' }, 'ifname'],
    [{ rxQueue: -1 }, 'rxQueue'],
    [{ rxQueue: 1.5 }, 'rxQueue'],
    [{ chunk: 1 }, 'chunk'],
    ['fast', '(root)'],
  ];
  it.each(bad)('rejects %j naming %s', (input, field) => {
    let err: unknown;
    try {
      parseReceiveOptions(input as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ZcConfigError);
    const e = err as ZcConfigError;
    expect(e.field).toBe(field);
    expect(e.message).toContain(`ReceiveOptions.${field}`);
    expect(e.message).toMatch(/expected /);
  });

  it('zcrx-nodev is there on kernels >= 7.1 run as root (checked in the VMs)', () => {
    const [maj, min] = probe().kernelRelease.split('.').map((x) => parseInt(x, 10)) as [number, number];
    const want = (maj > 7 || (maj === 7 && min >= 1)) && process.getuid?.() === 0;
    console.log(`kernel ${maj}.${min}, root ${process.getuid?.() === 0}: zcrx-nodev ${nodev ? 'available' : 'not available'}`);
    if (want || process.env['URING_ZC_VM'] === '1') expect(nodev).toBe(want);
  });

  it('lists the receive modes of this kernel', () => {
    const modes = availableRecvModes(caps);
    expect(modes.map((m) => m.mode)).toEqual(['zcrx', 'zcrx-nodev', 'bufring']);
    expect(modes.find((m) => m.mode === 'bufring')?.available).toBe(true);
    expect(modes.find((m) => m.mode === 'zcrx-nodev')?.available).toBe(nodev);
  });
});

describe('zcrx refusals are clear errors', () => {
  it('zcrx modes on a ring without 32-byte CQEs', () => {
    const ring = track(Ring.create());
    for (const mode of ['zcrx-nodev', 'zcrx'] as const) {
      const e = catchErr(() => Receiver.create(ring, { mode, ifname: mode === 'zcrx' ? 'lo' : undefined }));
      expect(e.code).toBe('EINVAL');
      expect(e.hint).toMatch(/cqe32: true/);
    }
  });

  it('zcrx on a device without zcrx queues (lo), and on no device', () => {
    const ring = track(Ring.create({ deferTaskrun: true, cqe32: true }));
    const e = catchErr(() => Receiver.create(ring, { mode: 'zcrx', ifname: 'lo', areaSize: MiB }));
    console.log(`zcrx on lo: ${e.message}`);
    expect(['EOPNOTSUPP', 'EPERM', 'EINVAL']).toContain(e.code);
    expect(e.hint).toBeTruthy();
    const e2 = catchErr(() => Receiver.create(ring, { mode: 'zcrx', ifname: 'nosuchif9', areaSize: MiB }));
    expect(e2.code).toBe('ENODEV');
    expect(e2.hint).toMatch(/nosuchif9/);
  });

  it.skipIf(!probe().caps.RECV_ZC)('zcrx without CAP_NET_ADMIN: EPERM naming the capability, in both zcrx modes (child process)', async () => {
    // root keeps CAP_NET_ADMIN: drop it for the child (setpriv, util-linux)
    const wrap = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-net_admin', '--bounding-set=-net_admin'] : [];
    const r = await runTs('tests/ts/fixtures/zcrx-eperm-child.ts', [], { wrap });
    expect(r.stderr).toBe('');
    const out = childJson<Record<string, { ok: boolean; code?: string; op?: string; hint?: string }>>(r);
    for (const mode of ['zcrx', 'zcrx-nodev']) {
      // the kernel checks the capability before anything else
      expect(out[mode]).toMatchObject({ ok: false, code: 'EPERM', op: 'recv.create' });
      expect(out[mode]?.hint).toMatch(/CAP_NET_ADMIN/);
      expect(out[mode]?.hint).toMatch(/bufring/);
    }
  });

  it('auto with a named interface falls back to bufring and says why', () => {
    const ring = track(Ring.create({ deferTaskrun: true, cqe32: true }));
    const rx = Receiver.create(ring, { ifname: 'lo', areaSize: MiB });
    expect(rx.mode).toBe('bufring');
    expect(rx.fallback).toBeInstanceOf(ZcError);
    expect(rx.fallback?.op).toBe('recv.zcrx');
    rx.close();
  });

  it(`zcrx-nodev ${nodev ? 'registers' : 'is refused with EOPNOTSUPP'} on this kernel`, () => {
    const ring = track(Ring.create({ deferTaskrun: true, cqe32: true }));
    if (nodev) {
      const rx = Receiver.create(ring, { mode: 'zcrx-nodev', areaSize: MiB });
      expect(rx.mode).toBe('zcrx-nodev');
      expect(rx.bufferSize).toBe(4096);
      rx.close();
    } else {
      const e = catchErr(() => Receiver.create(ring, { mode: 'zcrx-nodev', areaSize: MiB }));
      expect(e.code).toBe(process.getuid?.() === 0 ? 'EOPNOTSUPP' : 'EPERM');
      expect(e.hint).toMatch(/7\.1|CAP_NET_ADMIN/);
    }
  });
});

describe.each(MODES)('%s streams', (mode) => {
  it('one long stream from zero-copy sends, byte-exact', async () => {
    const ring = track(ringFor(mode));
    const pool = ring.createPool({ count: 16, size: 256 * 1024 });
    const { client, server, listener } = await zcPair(ring);
    const total = scaled(mode === 'bufring' ? 768 : 256) * MiB;
    const s = receive(ring, server.fd, { mode, areaSize: 8 * MiB });
    expect(s.mode).toBe(mode);
    const [got] = await Promise.all([drain(s, { maxChunk: s.receiver.bufferSize }), zcSend(client, pool, total)]);
    expect(got).toBe(total);
    const info = s.receiver.info();
    expect(info.held).toBe(0);
    expect(info.active).toBe(0);
    console.log(`${mode}: ${total / MiB} MiB in ${info.chunks} chunks, ${info.rearms} re-arms, ${info.flushes} flushes`);
    await Promise.all([client.close(), server.close(), listener.close()]);
  });

  it('4 concurrent connections into one receiver', async () => {
    const ring = track(ringFor(mode));
    const pool = ring.createPool({ count: 32, size: 64 * 1024 });
    const rx = Receiver.create(ring, { mode, areaSize: 4 * MiB, bufferSize: mode === 'bufring' ? 16384 : undefined });
    const each = scaled(64) * MiB;
    const pairs = await Promise.all([0, 1, 2, 3].map(() => zcPair(ring)));
    const results = await Promise.all(
      pairs.map(async (p, i) => {
        const total = each + i * 12345;
        const [got] = await Promise.all([drain(rx.receive(p.server.fd)), zcSend(p.client, pool, total, { depth: 4 })]);
        return got === total;
      }),
    );
    expect(results).toEqual([true, true, true, true]);
    expect(rx.info().held).toBe(0);
    for (const p of pairs) await Promise.all([p.client.close(), p.server.close(), p.listener.close()]);
    rx.close();
  });

  it('slow consumers holding chunks: backpressure, nothing lost or repeated', async () => {
    const ring = track(ringFor(mode));
    const pool = ring.createPool({ count: 8, size: 64 * 1024 });
    // 16 buffers for two streams; each consumer holds 6 at a time and sleeps
    // (recvQuota 8: each may hold half the area, so together they run it dry)
    const rx = Receiver.create(ring, { mode, areaSize: 16 * 4096, bufferSize: 4096, recvQuota: 8 });
    const total = scaled(8) * MiB;
    const pairs = await Promise.all([0, 1].map(() => zcPair(ring)));
    const got = await Promise.all(
      pairs.map(async (p) => {
        const [n] = await Promise.all([drain(rx.receive(p.server.fd), { hold: 6, delayMs: 1 }), zcSend(p.client, pool, total, { depth: 4 })]);
        return n;
      }),
    );
    expect(got).toEqual([total, total]);
    const info = rx.info();
    console.log(`${mode}: slow consumers, ${info.rearms} re-arms`);
    expect(info.rearms).toBeGreaterThan(0);
    expect(info.held).toBe(0);
    for (const p of pairs) await Promise.all([p.client.close(), p.server.close(), p.listener.close()]);
  });

  it('a consumer that does not iterate: the area fills, then everything arrives', async () => {
    const ring = track(ringFor(mode));
    // recvQuota 8: the one stream may take the whole area
    const rx = Receiver.create(ring, { mode, areaSize: 8 * 4096, bufferSize: 4096, recvQuota: 8 });
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const conn = connected({ ring, host: '127.0.0.1', port });
    const peer = await new Promise<net.Socket>((r) => server.once('connection', r));
    const sock = await conn;
    const s = rx.receive(sock.fd);
    const total = 4 * MiB;
    peer.end(Buffer.concat([0, 1, 2, 3].map((i) => Buffer.from(patternSlice(i * MiB, MiB)))));
    await sleep(100); // the kernel fills the 8 buffers and parks the receive
    expect(s.queued).toBe(8);
    expect(rx.info().held).toBe(8);
    expect(await drain(s)).toBe(total);
    await sock.close();
    server.close();
  });
});

function catchErr(f: () => unknown): ZcError {
  try {
    f();
  } catch (e) {
    if (e instanceof ZcError) return e;
    throw e;
  }
  throw new Error('expected a ZcError');
}

describe('chunks and endings (bufring)', () => {
  let ring: Ring;

  it('a chunk is a view until release(); afterwards it throws', async () => {
    ring = track(Ring.create());
    const { client, server, listener } = await zcPair(ring);
    const pool = ring.createPool({ count: 4, size: 65536 });
    const s = receive(ring, server.fd, { mode: 'bufring', areaSize: MiB });
    await zcSend(client, pool, 65536);
    const first = await s.next();
    expect(first.done).toBe(false);
    const c = first.value as NonNullable<typeof first.value>;
    const view = c.data;
    expect(checkPattern(view, 0)).toBe(-1);
    expect(c.released).toBe(false);
    expect(s.receiver.info().held).toBe(1);
    const copy = c.copy();
    c.release();
    expect(c.released).toBe(true);
    expect(() => c.data).toThrow(ZcOwnershipError);
    expect(() => c.release()).toThrow(ZcOwnershipError);
    expect(() => c.copy()).toThrow(ZcOwnershipError);
    expect(checkPattern(copy, 0)).toBe(-1);
    await Promise.resolve();
    expect(s.receiver.info().held).toBe(0);
    expect(await drain(s)).toBe(65536 - c.length);
    await Promise.all([client.close(), server.close(), listener.close()]);
  });

  it('empty stream: the iterator just ends', async () => {
    ring = track(Ring.create());
    const { client, server, listener } = await zcPair(ring);
    const s = receive(ring, server.fd, { mode: 'bufring', areaSize: MiB });
    client.end();
    expect(await drain(s)).toBe(0);
    expect(s.done).toBe(true);
    await s.finished;
    await Promise.all([client.close(), server.close(), listener.close()]);
  });

  it('peer reset mid-stream: a verified prefix, then ZcError ECONNRESET', async () => {
    ring = track(Ring.create());
    const listener = await listening({ ring });
    const port = portOf(listener);
    const accepted = listener.accept();
    const sender = netSend(port, 8 * MiB, { reset: true });
    const server = await accepted;
    const s = receive(ring, server.fd, { mode: 'bufring', areaSize: MiB });
    let err: unknown;
    try {
      await drain(s);
    } catch (e) {
      err = e;
    }
    await sender;
    console.log(`reset: ${s.bytes} bytes before the error`);
    expect(err).toBeInstanceOf(ZcError);
    expect((err as ZcError).code).toBe('ECONNRESET');
    expect((err as ZcError).op).toBe('recv');
    expect(s.bytes).toBeLessThanOrEqual(8 * MiB);
    // the iterator is over after the error
    expect(await s.next()).toEqual({ value: undefined, done: true });
    await server.close();
    await listener.close();
  });

  it('break out of for-await cancels; queued chunks are released; the socket receives again', async () => {
    ring = track(Ring.create());
    const { client, server, listener } = await zcPair(ring);
    const pool = ring.createPool({ count: 8, size: 65536 });
    const rx = Receiver.create(ring, { mode: 'bufring', areaSize: MiB, bufferSize: 16384 });
    const total = 4 * MiB;
    const sending = zcSend(client, pool, total);
    let got = 0;
    const s1 = rx.receive(server.fd);
    for await (const c of s1) {
      expect(checkPattern(c.data, got)).toBe(-1);
      got += c.length;
      c.release();
      if (got >= MiB) break;
    }
    await s1.finished;
    // chunks that arrived after the break were released, counted in bytes
    expect(s1.done).toBe(true);
    await Promise.resolve();
    expect(rx.info().held).toBe(0);
    expect(rx.info().active).toBe(0);
    const delivered = s1.bytes;
    // resume: the stream continues exactly where the last record ended
    const s2 = rx.receive(server.fd);
    let rest = 0;
    for await (const c of s2) {
      expect(checkPattern(c.data, delivered + rest)).toBe(-1);
      rest += c.length;
      c.release();
    }
    await sending;
    expect(delivered + rest).toBe(total);
    await Promise.all([client.close(), server.close(), listener.close()]);
    rx.close();
  });

  it('receiver.close() with streams running ends them and unregisters', async () => {
    ring = track(Ring.create());
    const { client, server, listener } = await zcPair(ring);
    const rx = Receiver.create(ring, { mode: 'bufring', areaSize: MiB });
    const s = rx.receive(server.fd);
    const pool = ring.createPool({ count: 4, size: 65536 });
    await zcSend(client, pool, 65536 * 2, { end: false });
    const c = (await s.next()).value as NonNullable<Awaited<ReturnType<RecvStream['next']>>['value']>;
    rx.close();
    await s.finished;
    expect(rx.closed).toBe(true);
    expect(() => c.data).toThrow(ZcOwnershipError);
    expect(() => rx.receive(server.fd)).toThrow(ZcError);
    expect((await s.next()).done).toBe(true);
    await Promise.all([client.close(), server.close(), listener.close()]);
  });

  it('ring close with chunks held and a receive in flight: iterator rejects ECANCELED, nothing leaks', async () => {
    const fds0 = fdCount();
    for (let round = 0; round < 3; round++) {
      const r = Ring.create();
      const { client, server, listener } = await zcPair(r);
      const pool = r.createPool({ count: 4, size: 65536 });
      const s = receive(r, server.fd, { mode: 'bufring', areaSize: 8 * 65536 });
      // 4 x 64K fit the 8-buffer area: the receive stays armed (in flight).
      // (More, unread, could stall the zero-copy sends on a small receive window.)
      await zcSend(client, pool, 65536 * 4, { end: false });
      const held = (await s.next()).value as NonNullable<Awaited<ReturnType<RecvStream['next']>>['value']>;
      const pending = s.next().then(() => s.next());
      r.close();
      const res = await Promise.race([pending.then(() => 'resolved', (e: unknown) => e), sleep(2000).then(() => 'timeout')]);
      if (res instanceof ZcError) expect(res.code).toBe('ECANCELED');
      else expect(res).toBe('resolved'); // queued chunks may come first; the end must come
      expect(() => held.data).toThrow(ZcOwnershipError);
      await s.finished;
    }
    expect(fdCount()).toBeLessThanOrEqual(fds0 + 1);
  });

  it('closing the socket ends its stream with ECANCELED and really closes it', async () => {
    ring = track(Ring.create());
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const conn = connected({ ring, host: '127.0.0.1', port });
    const peer = await new Promise<net.Socket>((r) => server.once('connection', r));
    const peerEnded = new Promise<void>((r) => peer.once('end', () => r()));
    const sock = await conn;
    const s = receive(ring, sock.fd, { mode: 'bufring', areaSize: MiB });
    const pending = s.next();
    await sleep(10);
    await sock.close();
    // Our own close ends the stream: ECANCELED when the cancel wins, or a
    // plain end when the shutdown's EOF reaches the receive first (which
    // one depends on when task work runs, e.g. without DEFER_TASKRUN).
    const end = await pending.then(
      (r) => r,
      (e: unknown) => e,
    );
    if (end instanceof ZcError) expect(end).toMatchObject({ code: 'ECANCELED', op: 'recv' });
    else expect(end).toEqual({ value: undefined, done: true });
    await s.finished;
    await peerEnded; // the fd was really closed: the peer got FIN
    peer.destroy();
    server.close();
  });

  it.runIf(nodev)('zcrx-nodev: the area is pinned while registered and unpinned after ring close', async () => {
    const pin0 = vmKb('VmPin');
    const r = Ring.create({ deferTaskrun: true, cqe32: true });
    const rx = Receiver.create(r, { mode: 'zcrx-nodev', areaSize: 8 * MiB });
    const pinned = vmKb('VmPin') - pin0;
    console.log(`zcrx-nodev: VmPin +${pinned} kB while registered`);
    expect(pinned).toBeGreaterThanOrEqual(8 * 1024);
    const { client, server, listener } = await zcPair(r);
    const pool = r.createPool({ count: 4, size: 65536 });
    const s = rx.receive(server.fd);
    await zcSend(client, pool, 65536 * 4, { end: false });
    const held = (await s.next()).value as NonNullable<Awaited<ReturnType<RecvStream['next']>>['value']>;
    r.close(); // chunk held, receive in flight
    expect(() => held.data).toThrow(ZcOwnershipError);
    // the kernel frees the ifq from its ring-exit work: give it a moment
    for (let i = 0; i < 50 && vmKb('VmPin') > pin0; i++) await sleep(100);
    expect(vmKb('VmPin')).toBeLessThanOrEqual(pin0);
    void client;
    void listener;
  });

  it('a receive on a non-socket fails with a typed error', async () => {
    ring = track(Ring.create());
    const rx = Receiver.create(ring, { mode: 'bufring', areaSize: MiB });
    const s = rx.receive(0 + ring.eventFd);
    await expect(s.next()).rejects.toMatchObject({ code: 'ENOTSOCK', op: 'recv' });
    expect(() => rx.receive(-1)).toThrow(ZcConfigError);
    rx.close();
  });

  it.runIf(nodev)('zcrx-nodev takes TCP only', async () => {
    ring = track(Ring.create({ deferTaskrun: true, cqe32: true }));
    const rx = Receiver.create(ring, { mode: 'zcrx-nodev', areaSize: MiB });
    const u = await ZcDatagram.open({ ring, host: '127.0.0.1', port: 0 });
    await expect(rx.receive(u.fd).next()).rejects.toMatchObject({ code: 'EPROTONOSUPPORT' });
    await u.close();
    rx.close();
  });

  it('verified at least 1 GiB in this run (unless scaled down)', () => {
    console.log(`recv suite verified ${(totalVerified / MiB).toFixed(0)} MiB`);
    if (scaled(1024) >= 1024) expect(totalVerified).toBeGreaterThanOrEqual(1024 * MiB);
  });
});
