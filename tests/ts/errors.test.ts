// SPDX-License-Identifier: MIT
// Error paths on the real kernel: EOPNOTSUPP (zero-copy on AF_UNIX),
// ECONNRESET/EPIPE after a peer reset, ENOMEM from pinning under a lowered
// RLIMIT_MEMLOCK (child process), EBUSY pool close while in flight, buffer
// ownership violations, missing library.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Ring, ZcError, ZcOwnershipError, ZcSocket, type SendResult } from '../../ts/index.ts';
import { childJson, fillPattern, PatternReceiver, run, runTs, sleep } from './helpers.ts';
import { connected } from './net-helpers.ts';

async function rejection(p: Promise<unknown>): Promise<ZcError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ZcError);
    return e as ZcError;
  }
  throw new Error('expected the Promise to reject');
}

describe('EOPNOTSUPP: zero-copy on a socket family without it (AF_UNIX)', () => {
  it.each([true, false])('rejects zc sends with a hint, copy sends work (deferTaskrun=%s)', async (deferTaskrun) => {
    const ring = Ring.create({ deferTaskrun });
    try {
      const [a, b] = ZcSocket.pair({ ring });
      const e = await rejection(a.send(new Uint8Array(100), { mode: 'zc' }));
      expect(e.code).toBe('EOPNOTSUPP');
      expect(e.errno).toBe(95);
      expect(e.op).toBe('send');
      expect(e.hint).toMatch(/AF_UNIX/);
      expect(e.hint).toMatch(/"copy"/);

      const pool = ring.createPool({ count: 1, size: 4096 });
      const pb = pool.acquire();
      const e2 = await rejection(a.send(pb, { mode: 'zc', length: 10 }));
      expect(e2.code).toBe('EOPNOTSUPP');
      expect(pb.inFlight).toBe(false); // given back after the failure
      pb.release();

      const data = new Uint8Array(777);
      fillPattern(data, 0);
      const r = await a.send(data, { mode: 'copy' });
      expect(r).toEqual({ bytes: 777, zeroCopy: 'copied' });
      // auto below the threshold is a plain send, so it works here too
      expect((await a.send(data, { mode: 'auto' })).bytes).toBe(777);
      const got = new Uint8Array(777);
      expect(ring.libc.read(b.fd, got, 777)).toBe(777);
      expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
      await Promise.all([a.close(), b.close()]);
    } finally {
      ring.close();
    }
  });
});

describe('ECONNRESET / EPIPE after the peer reset the connection', () => {
  it.each([true, false])('rejects later sends with a peer-closed hint (deferTaskrun=%s)', async (deferTaskrun) => {
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const ring = Ring.create({ deferTaskrun });
    try {
      const port = (server.address() as net.AddressInfo).port;
      const sock = await connected({ ring, host: '127.0.0.1', port });
      await sock.send(new Uint8Array(10)); // triggers the reset
      let err: ZcError | undefined;
      for (let i = 0; i < 1000 && !err; i++) {
        try {
          await sock.send(new Uint8Array(4096), { mode: i % 2 ? 'zc' : 'copy' });
        } catch (e) {
          err = e as ZcError;
        }
        if (!err) await sleep(2);
      }
      expect(err).toBeInstanceOf(ZcError);
      expect(['ECONNRESET', 'EPIPE']).toContain(err?.code);
      expect(err?.hint).toMatch(/peer/);
      await sock.resetAndDestroy().close().catch(() => undefined);
    } finally {
      ring.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('ENOMEM from pinning under a lowered RLIMIT_MEMLOCK', () => {
  it('names the limit and the bytes needed (child process via prlimit)', async (ctx) => {
    const which = await run('sh', ['-c', 'command -v prlimit && command -v setpriv']);
    expect(which.code, 'prlimit and setpriv (util-linux) are needed for this test').toBe(0);
    // root has CAP_IPC_LOCK, which exempts it from RLIMIT_MEMLOCK: drop it
    const dropCap = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'] : [];
    // The child starts with the default limit (8 MiB here): its ring, and
    // Node >= 24's libuv rings, are checked against the limit plus all the
    // uid has locked, which other processes of root (perf buffers,
    // accounted rings) raise at times.  It lowers the limit to 1 MiB once
    // its ring exists: the 4 MiB pool must then fail.
    const limit = 1 << 20;
    const wrap = dropCap;
    const r = await runTs('tests/ts/fixtures/pin-child.ts', ['64', '65536'], { wrap, env: { ...process.env, PIN_CHILD_MEMLOCK: String(limit) } });
    expect(r.stderr).toBe('');
    const out = childJson(r);
    if (out['ok'] === true && out['vmPinDuring'] === out['vmPinBefore']) {
      // The kernel neither limited nor accounted the pinning (7.2 as root in
      // a VM keeps CAP_IPC_LOCK's exemption despite setpriv): say so.
      ctx.skip('this kernel does not account pinned memory for this process: ENOMEM cannot be provoked');
    }
    expect(out['ok']).toBe(false);
    expect(out['code']).toBe('ENOMEM');
    expect(out['op']).toBe('pool.create');
    expect(out['details']).toMatchObject({ memlockCurrent: limit, memlockMax: limit, neededBytes: 64 * 65536 });
    expect(out['hint']).toMatch(/RLIMIT_MEMLOCK is 1048576 bytes/);
    expect(out['hint']).toMatch(/needs 4194304 bytes/);
    expect(out['hint']).toMatch(/ulimit -l/);
    // Nothing of the refused pool stays pinned.  VmPin also counts io_uring
    // rings' own memory, and libuv's ring appears whenever Node first needs
    // it: allow a few pages, far below one 64 KiB pool buffer.
    const ringSlackKb = 64;
    expect(Math.abs(Number(out['vmPinAfter']) - Number(out['vmPinBefore']))).toBeLessThan(ringSlackKb);
    // the same child without the limit pins fine (the test can tell them
    // apart), still without CAP_IPC_LOCK so the kernel accounts it in VmPin
    // (the default 8 MiB RLIMIT_MEMLOCK holds the 4 MiB pool)
    const ok = await runTs('tests/ts/fixtures/pin-child.ts', ['64', '65536'], { wrap });
    expect(ok.stderr).toBe('');
    const okOut = childJson(ok);
    expect(okOut['ok']).toBe(true);
    expect(Number(okOut['vmPinDuring']) - Number(okOut['vmPinBefore'])).toBeGreaterThanOrEqual(4096 - ringSlackKb);
    expect(Number(okOut['vmPinDuring']) - Number(okOut['vmPinBefore'])).toBeLessThan(4096 + ringSlackKb);
  });
});

describe('buffer ownership and EBUSY', () => {
  it.each([true, false])(
    'in-flight buffers cannot be touched, pools cannot close, ring close settles everything (deferTaskrun=%s)',
    async (deferTaskrun) => {
      // a receiver that never reads: sends pile up until the socket buffers are full
      const rx = await PatternReceiver.start({ paused: true });
      const ring = Ring.create({ deferTaskrun });
      try {
        const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
        const pool = ring.createPool({ count: 64, size: 256 * 1024 });
        const buffers = Array.from({ length: 64 }, () => pool.acquire());
        const settled: ('ok' | 'err')[] = [];
        const errors: ZcError[] = [];
        const ps: Promise<SendResult | void>[] = buffers.map((b) =>
          sock.send(b, { mode: 'zc' }).then(
            (r) => {
              settled.push('ok');
              return r;
            },
            (e: ZcError) => {
              settled.push('err');
              errors.push(e);
            },
          ),
        );
        const first = buffers[0]!;
        // synchronously after send(): the kernel owns it
        expect(first.inFlight).toBe(true);
        expect(() => first.bytes).toThrow(ZcOwnershipError);
        expect(() => first.write(new Uint8Array(1))).toThrow(ZcOwnershipError);
        expect(() => first.release()).toThrow(ZcOwnershipError);
        expect(() => sock.send(first)).toThrow(ZcOwnershipError);
        try {
          void first.bytes;
        } catch (e) {
          expect((e as ZcOwnershipError).code).toBe('EBUSY');
          expect((e as ZcOwnershipError).hint).toMatch(/await the send/);
        }
        // let the kernel take what fits; 16 MiB cannot all fit into loopback buffers
        await sleep(200);
        expect(settled.length).toBeLessThan(64);
        const last = buffers[63]!;
        expect(last.inFlight).toBe(true);
        expect(pool.inFlight).toBeGreaterThan(0);
        // close() waits for the sends that hold its buffers: not closed yet
        let poolClosed = false;
        const closingPool = pool.close().then(() => (poolClosed = true));
        expect(pool.closing).toBe(true);
        expect(() => pool.acquire()).toThrow(/closed/);
        await sleep(50);
        expect(poolClosed).toBe(false);
        expect(pool.closed).toBe(false);

        const closing = ring.close();
        await Promise.all(ps);
        await closing;
        await closingPool;
        expect(settled.length).toBe(64);
        expect(errors.length).toBeGreaterThan(0);
        for (const e of errors) expect(['ECANCELED', 'EPIPE', 'ECONNRESET', 'EINTR']).toContain(e.code);
        expect(pool.closed).toBe(true);
        expect(last.inFlight).toBe(false);
        expect(() => last.bytes).toThrow(/released|closed/);
        expect(sock.destroyed).toBe(true);
        expect(() => sock.send(new Uint8Array(1))).toThrow(/closed/);
        await expect(connected({ ring, host: '127.0.0.1', port: rx.port })).rejects.toThrow(/closed/);
      } finally {
        ring.close();
        await rx.close();
      }
    },
  );

  it('a settled buffer is usable again; a released one is not', async () => {
    const ring = Ring.create();
    try {
      const [a, b] = ZcSocket.pair({ ring });
      const pool = ring.createPool({ count: 2, size: 4096 });
      const pb = pool.acquire();
      pb.write(new Uint8Array([1, 2, 3]));
      const p = a.send(pb, { mode: 'copy', length: 3 });
      expect(() => pb.bytes).toThrow(ZcOwnershipError);
      await p;
      expect(pb.bytes[0]).toBe(1);
      expect(pool.available).toBe(1);
      pb.release();
      expect(pool.available).toBe(2);
      expect(() => pb.bytes).toThrow(/released/);
      expect(() => a.send(pb)).toThrow(ZcOwnershipError);
      pool.acquire();
      pool.acquire();
      expect(() => pool.acquire()).toThrow(/ENOBUFS/);
      expect(pool.tryAcquire()).toBeNull();
      await Promise.all([a.close(), b.close()]);
    } finally {
      ring.close();
    }
  });
});

describe('socket close with sends in flight', () => {
  it.each([true, false])('settles every send and frees the buffers (deferTaskrun=%s)', async (deferTaskrun) => {
    const rx = await PatternReceiver.start({ paused: true });
    const ring = Ring.create({ deferTaskrun });
    try {
      const sock = await connected({ ring, host: '127.0.0.1', port: rx.port });
      const pool = ring.createPool({ count: 32, size: 256 * 1024 });
      const bufs = Array.from({ length: 32 }, () => pool.acquire());
      const results = await Promise.allSettled([
        ...bufs.map((b) => sock.send(b, { mode: 'zc' })),
        ...Array.from({ length: 8 }, () => sock.send(new Uint8Array(100_000), { mode: 'copy' })),
        (async () => {
          await sleep(100);
          await sock.resetAndDestroy().close();
        })(),
      ]);
      const rejected = results.filter((r) => r.status === 'rejected');
      expect(rejected.length).toBeGreaterThan(0);
      for (const r of rejected) {
        expect(r.status === 'rejected' && r.reason).toBeInstanceOf(ZcError);
        expect(['EPIPE', 'ECONNRESET', 'ECANCELED']).toContain((r as PromiseRejectedResult).reason.code);
      }
      expect(bufs.every((b) => !b.inFlight)).toBe(true);
      expect(pool.inFlight).toBe(0);
      pool.close(); // nothing holds a buffer any more
      expect(sock.fd).toBe(-1);
      expect(ring.inFlight).toBe(0);
    } finally {
      ring.close();
      await rx.close();
    }
  });
});

describe('library loading', () => {
  it('names URING_ZC_LIB and the fix when the library it names is missing', async () => {
    const r = await runTs('tests/ts/fixtures/load-child.ts', [], {
      env: { ...process.env, URING_ZC_LIB: '/nonexistent/libzc.so' },
    });
    expect(r.stdout).toMatch(
      /LibraryLoadError: libzc not found at \/nonexistent\/libzc\.so \(URING_ZC_LIB\): set it to an existing libzc\.so, or unset it/,
    );
  });
});
