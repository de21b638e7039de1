// SPDX-License-Identifier: MIT
/**
 * socket.sendFile(): byte-exact (sha256 at a node:net receiver) on every
 * method and both backends, in order with writes and sends, ranges as
 * numbers and bigints, refusals up front, a file truncated while sending,
 * abort and destroy mid-transfer; fds, pipes and staging buffers back to
 * idle afterwards.
 */
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, ZcConfigError, ZcError, type ZcSocket } from '../../ts/index.ts';
import { sendFileStats, type SendFileStats } from '../../ts/socket/send-file.ts';
import { IN_VM, fillPattern, scaled } from './helpers.ts';
import { connected } from './net-helpers.ts';

/** A node:net peer that hashes what it gets; paused until read() says so. */
class HashPeer {
  readonly server: net.Server;
  sock: net.Socket | null = null;
  hash = createHash('sha256');
  bytes = 0;
  ended: Promise<void>;
  #endResolve!: () => void;
  #conn: Promise<net.Socket>;

  private constructor(server: net.Server, paused: boolean) {
    this.server = server;
    this.ended = new Promise((r) => (this.#endResolve = r));
    this.#conn = new Promise((resolve) => {
      server.once('connection', (s) => {
        this.sock = s;
        s.on('error', () => {});
        s.on('data', (d: Buffer) => {
          this.hash.update(d);
          this.bytes += d.length;
        });
        s.on('end', () => this.#endResolve());
        s.on('close', () => this.#endResolve());
        if (paused) s.pause();
        resolve(s);
      });
    });
  }

  static async start(paused = false): Promise<HashPeer> {
    const server = net.createServer();
    const p = new HashPeer(server, paused);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async resume(): Promise<void> {
    (await this.#conn).resume();
  }

  async digest(): Promise<string> {
    await this.ended;
    return this.hash.digest('hex');
  }

  close(): Promise<void> {
    this.sock?.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const sha = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

const dir = mkdtempSync(join(tmpdir(), 'zc-sendfile-ts-'));
const SIZE = 3 * 1024 * 1024 + 12345;
const fileBytes = new Uint8Array(SIZE);
fillPattern(fileBytes, 0);
const path = join(dir, 'data.bin');
writeFileSync(path, fileBytes);
/** Larger than what the socket buffers of a paused peer absorb: a transfer to it stalls. */
const BIG = 64 << 20;
const bigBytes = new Uint8Array(BIG);
fillPattern(bigBytes, 0);
const bigPath = join(dir, 'big.bin');
writeFileSync(bigPath, bigBytes);

/** The ring's sendFile stats once the kernel gave back every staging buffer (the peer acked). */
async function idleStats(ring: Ring): Promise<SendFileStats> {
  let st = sendFileStats(ring);
  for (let i = 0; i < 200 && (st.releasing > 0 || st.active > 0); i++) {
    await new Promise((r) => setTimeout(r, 10));
    st = sendFileStats(ring);
  }
  return st;
}

/** What this process has open that a transfer could leak: fds on our files, pipes beyond the ring's pool. */
function openFiles(ring: Ring): { files: number; pipes: number } {
  let files = 0;
  let pipes = 0;
  for (const f of readdirSync('/proc/self/fd')) {
    let l = '';
    try {
      l = readlinkSync(`/proc/self/fd/${f}`);
    } catch {
      continue; // the directory's own fd, gone
    }
    if (l.startsWith(dir)) files++;
    else if (l.startsWith('pipe:')) pipes++;
  }
  return { files, pipes: pipes - 2 * sendFileStats(ring).pipes };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const methods = ['auto', 'splice', 'read', 'read-copy', 'direct'] as const;

describe.each([false, true])('sendFile, deferTaskrun %s', (deferTaskrun) => {
  let ring: Ring;

  beforeAll(() => {
    ring = Ring.create({ deferTaskrun });
  });

  afterAll(() => ring.close());

  async function pair(paused = false): Promise<{ peer: HashPeer; sock: ZcSocket }> {
    const peer = await HashPeer.start(paused);
    const sock = await connected({ ring, backend: 'uring', host: '127.0.0.1', port: peer.port });
    return { peer, sock };
  }

  it.each(methods)('method %s: header, whole file, range, trailer, byte-exact and in order', async (method) => {
    const fds = openFiles(ring);
    const { peer, sock } = await pair();
    const head = Buffer.from('HTTP/1.1 200 OK\r\n\r\n');
    const tail = Buffer.from('trailer');
    sock.write(head);
    const r1 = await sock.sendFile(path, { method });
    const r2 = sock.sendFile(path, { method, offset: 4095n, length: 1_000_001 });
    const sent = sock.send(tail);
    expect(r1.bytes).toBe(SIZE);
    expect(r1.method).toBe(method === 'auto' ? 'splice' : method === 'read-copy' ? 'read' : method);
    expect((await r2).bytes).toBe(1_000_001);
    await sent;
    await sock.close();
    expect(await peer.digest()).toBe(sha(head, fileBytes, fileBytes.subarray(4095, 4095 + 1_000_001), tail));
    await peer.close();
    const st = await idleStats(ring);
    expect(st.active).toBe(0);
    expect(st.releasing).toBe(0);
    expect(st.pipes).toBe(st.pipesIdle);
    expect(st.buffersFree).toBe(st.buffers);
    expect(openFiles(ring)).toEqual({ files: 0, pipes: fds.pipes });
  });

  it('keeps its place behind buffered writes and before later ones', async () => {
    const { peer, sock } = await pair();
    const big = new Uint8Array(1 << 20).fill(7); // over the high-water mark: the Duplex buffers
    const parts: Uint8Array[] = [];
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < scaled(4); i++) {
      sock.write(big);
      parts.push(big);
      waits.push(sock.sendFile(path, { offset: i * 1000, length: 70_000 + i }));
      parts.push(fileBytes.subarray(i * 1000, i * 1000 + 70_000 + i));
      const small = Buffer.from(`part ${i}`);
      sock.write(small);
      parts.push(small);
    }
    await Promise.all(waits);
    await sock.close();
    expect(await peer.digest()).toBe(sha(...parts));
    await peer.close();
  });

  it('takes a FileHandle or an fd, and the caller may close its own at once', async () => {
    const { peer, sock } = await pair();
    const h = await open(path, 'r');
    const p1 = sock.sendFile(h, { offset: 1, length: 100_000 });
    await h.close(); // the transfer has its own duplicate
    const fd = openSync(path, 'r');
    const p2 = sock.sendFile(fd, { offset: 2n });
    closeSync(fd);
    expect((await p1).bytes).toBe(100_000);
    expect((await p2).bytes).toBe(SIZE - 2);
    await sock.close();
    expect(await peer.digest()).toBe(sha(fileBytes.subarray(1, 100_001), fileBytes.subarray(2)));
    await peer.close();
  });

  it('refuses bad ranges, options and files up front, sending nothing', async () => {
    const { peer, sock } = await pair();
    const fds = openFiles(ring);
    expect(() => sock.sendFile(path, { length: SIZE + 1 })).toThrow(ZcConfigError);
    try {
      sock.sendFile(path, { offset: 10, length: SIZE });
    } catch (e) {
      expect(e).toBeInstanceOf(ZcConfigError);
      expect((e as ZcConfigError).field).toBe('length');
      expect((e as Error).message).toContain(`the file has ${SIZE} bytes`);
    }
    expect(() => sock.sendFile(path, { offset: SIZE + 1 })).toThrow(/SendFileOptions.offset/);
    expect(() => sock.sendFile(path, { offset: -1 })).toThrow(ZcConfigError);
    expect(() => sock.sendFile(path, { method: 'mmap' as 'auto' })).toThrow(/method/);
    expect(() => sock.sendFile(path, { bogus: 1 } as object)).toThrow(/no such option/);
    expect(() => sock.sendFile(dir)).toThrow(/not a regular file/);
    expect(() => sock.sendFile(join(dir, 'missing'))).toThrow(/ENOENT/);
    expect(openFiles(ring)).toEqual({ files: 0, pipes: fds.pipes });
    const empty = await sock.sendFile(path, { offset: SIZE });
    expect(empty.bytes).toBe(0);
    await sock.close();
    expect(peer.bytes).toBe(0);
    await peer.close();
  });

  it.each(['splice', 'read'] as const)('a file truncated while sending (%s) rejects with ENODATA and bytesSent', async (method) => {
    const big = join(dir, `trunc-${method}.bin`);
    const data = new Uint8Array(64 << 20);
    fillPattern(data, 0);
    writeFileSync(big, data);
    const { peer, sock } = await pair(true);
    const p = sock.sendFile(big, { method });
    await new Promise((r) => setTimeout(r, 100)); // stalled: the peer reads nothing
    const fd = openSync(big, 'r+');
    ftruncateSync(fd, 1 << 20);
    closeSync(fd);
    await peer.resume();
    const e = (await p.then(
      () => null,
      (x: unknown) => x,
    )) as ZcError;
    expect(e).toBeInstanceOf(ZcError);
    expect(e.code).toBe('ENODATA');
    expect(e.bytesSent).toBeGreaterThanOrEqual(1 << 20);
    expect(e.bytesSent).toBeLessThan(64 << 20);
    await sock.close();
    await peer.ended;
    expect(peer.bytes).toBe(e.bytesSent);
    await peer.close();
  });

  it.each(['splice', 'read'] as const)('abort (%s) rejects with AbortError and bytesSent; the socket goes on', async (method) => {
    const fds = openFiles(ring);
    const { peer, sock } = await pair(true);
    const ac = new AbortController();
    const p = sock.sendFile(bigPath, { method, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const e = (await p.then(
      () => null,
      (x: unknown) => x,
    )) as Error & { bytesSent: number };
    expect(e.name).toBe('AbortError');
    expect(e.bytesSent).toBeGreaterThanOrEqual(0);
    expect(e.bytesSent).toBeLessThan(BIG);
    const tail = Buffer.from('after the abort');
    await peer.resume();
    await sock.send(tail);
    await sock.close();
    expect(await peer.digest()).toBe(sha(bigBytes.subarray(0, e.bytesSent), tail));
    await peer.close();
    // an already-aborted signal: nothing starts
    const { peer: p2, sock: s2 } = await pair();
    await expect(s2.sendFile(path, { signal: AbortSignal.abort() })).rejects.toThrow(/aborted/);
    await s2.close();
    await p2.close();
    const st = await idleStats(ring);
    expect(st.active).toBe(0);
    expect(st.pipes).toBe(st.pipesIdle);
    expect(openFiles(ring)).toEqual({ files: 0, pipes: fds.pipes });
  });

  it('destroy mid-transfer settles it with bytesSent and leaks nothing', async () => {
    const fds = openFiles(ring);
    const { peer, sock } = await pair(true);
    const p = sock.sendFile(bigPath);
    const q = sock.sendFile(bigPath, { method: 'read' });
    await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    // Both handled at once: q may reject while p is still awaited.
    const errors = await Promise.all(
      [p, q].map((x) =>
        x.then(
          () => null,
          (err: unknown) => err as ZcError,
        ),
      ),
    );
    for (const e of errors) {
      expect(e).toBeInstanceOf(ZcError);
      expect(e?.code).toBe('ECANCELED');
      expect(e?.bytesSent).toBeLessThan(BIG);
    }
    await peer.close();
    const st = await idleStats(ring);
    expect(st.active).toBe(0);
    expect(st.pipes).toBe(st.pipesIdle);
    expect(openFiles(ring)).toEqual({ files: 0, pipes: fds.pipes });
  });
});

// Kernel-independent: the VM suites (TCG) skip it.
describe.skipIf(IN_VM)('sendFile on the node:net backend', () => {
  it('is byte-exact and ordered with writes (read and written by JavaScript)', async () => {
    const peer = await HashPeer.start();
    const sock = await connected({ backend: 'net', host: '127.0.0.1', port: peer.port });
    const head = Buffer.from('head');
    sock.write(head);
    const r = await sock.sendFile(path, { offset: 3, length: SIZE - 10 });
    expect(r).toEqual({ bytes: SIZE - 10, method: 'copy', spliceRefused: false, directRefused: false });
    const big = new Uint8Array(1 << 20).fill(1);
    sock.write(big);
    const p = sock.sendFile(path, { length: 5000 });
    sock.write(head);
    await p;
    await sock.close();
    expect(await peer.digest()).toBe(sha(head, fileBytes.subarray(3, SIZE - 7), big, fileBytes.subarray(0, 5000), head));
    await peer.close();
  });
});
