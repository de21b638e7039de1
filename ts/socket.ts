// SPDX-License-Identifier: MIT
/**
 * {@link ZcSocket}: a TCP or UDP socket whose operations go through a
 * {@link Ring}: socket/bind/listen/accept/connect/close as ring ops, and
 * sends that resolve once the kernel released the data:
 * `{ bytes, zeroCopy: 'used' | 'copied' | 'unknown' }`.
 *
 * Sends on one stream socket reach the peer in call order, whatever the
 * number in flight (libzc orders them).  A Uint8Array passed to send() must
 * not be modified until its Promise settles (it is read in place, not
 * copied); a PoolBuffer is locked by the library for that time.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ERRNO, LAYOUT, LIMITS, OP, SEND_FLAGS, SYS } from './ffi/abi.gen.ts';
import {
  DEFAULT_SEND_OPTIONS,
  parseSendOptions,
  rangeError,
  resolveSendOptions,
  type SendOptions,
  type SendOptionsInput,
} from './config.ts';
import { ZcError } from './errors.ts';
import { decodeSockaddr, domainOf, encodeSockaddr, type SocketAddress } from './addr.ts';
import { PoolBuffer, type BufferPool } from './pool.ts';
import { receive, type ReceiveOptionsInput, type RecvStream } from './recv.ts';
import { zeroCopyOf, type Completion, type Ring, type RingRequest, type RingResource } from './ring.ts';

/** What a settled send reports. */
export interface SendResult {
  /** bytes sent (the whole length: short sends are completed by libzc) */
  bytes: number;
  /** 'used': sent without a copy; 'copied': the kernel (or plain send) copied; 'unknown': not reported */
  zeroCopy: 'used' | 'copied' | 'unknown';
}

/** Kind of socket. */
export type SocketKind = 'stream' | 'listener' | 'dgram';

/** ZcSocket.connect() options. */
export interface ConnectOptions {
  /** IP literal or host name (resolved with dns.lookup) */
  host: string;
  port: number;
  /**
   * TCP_NODELAY (default false, like Node's net).  With Nagle off, a
   * 65536-byte send on loopback leaves as a full MSS segment plus a tiny
   * runt, each a separate zero-copy skb: measured about half the 64 KiB
   * zero-copy throughput.  Turn it on for latency-sensitive small messages.
   */
  noDelay?: boolean;
  /** defaults for every send on this socket */
  sendOptions?: SendOptionsInput;
}

/** ZcSocket.listen() options. */
export interface ListenOptions {
  /** default '127.0.0.1' */
  host?: string;
  /** default 0 (any free port; see localAddress()) */
  port?: number;
  /** default 511 */
  backlog?: number;
  /** defaults for every send on accepted sockets */
  sendOptions?: SendOptionsInput;
}

/** ZcSocket.udp() options. */
export interface UdpOptions {
  /** bind address (default: '0.0.0.0' or '::' by family); bind only if host or port given */
  host?: string;
  port?: number;
  /** default 4, or 6 when host is an IPv6 literal */
  family?: 4 | 6;
  /** connect to this peer (then send() works without an address) */
  connect?: { host: string; port: number };
  sendOptions?: SendOptionsInput;
}

/** ZcSocket.adopt() options. */
export interface AdoptOptions {
  /** default: looked up with getsockopt(SO_TYPE) */
  kind?: SocketKind;
  /** close the fd when the socket closes (default true) */
  owned?: boolean;
  sendOptions?: SendOptionsInput;
}

/** Run one ring op to its record; resolves res, rejects ZcError. */
function ringOp(ring: Ring, opName: string, issue: (ud: number) => number, hint?: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    ring.enqueue({
      opName,
      issue,
      done: (c) => {
        if (c.res < 0) reject(new ZcError({ errno: c.res, op: opName, hint }));
        else resolve(c.res);
      },
      fail: reject,
    });
  });
}

async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  const r = await lookup(host);
  return r.address;
}

/** Copying sends up to this size are coalesced into one sendmsg per tick. */
export const COALESCE_MAX_SEND = 64 * 1024;
/**
 * Bytes one coalesced request carries at most (unless one send is larger).
 * Also what keeps a window of zero-copy sends pipelined: a request's
 * buffers come back together, so one huge request would drain the pipe.
 */
export const COALESCE_MAX_BATCH = 256 * 1024;
const IOV_SIZE = LAYOUT.iovec.size;
const IOV_BASE = LAYOUT.iovec.fields.iov_base.offset;
const IOV_LEN = LAYOUT.iovec.fields.iov_len.offset;
const SPAN = LAYOUT.zc_span;
const ZC_MAX_IOV = LIMITS.ZC_MAX_IOV;

interface BatchEntry {
  off: number;
  len: number;
  pb: PoolBuffer | null;
  keep: Uint8Array | null;
  resolve: (r: SendResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Sends of one tick that leave as one request: copying sends as one
 * sendmsg (iovecs), or zero-copy sends from one registered region of a
 * pool as one SENDMSG_ZC (struct zc_span list).
 */
interface SendBatch {
  flags: number;
  /** zero-copy from this pool's registered region; null: copying sendmsg */
  pool: BufferPool | null;
  region: number;
  bytes: number;
  /** ZC_MAX_IOV iovecs or zc_spans (both 16 bytes) */
  vec: Buffer;
  entries: BatchEntry[];
}

/**
 * Address of a Uint8Array's first byte.  Backing stores of ArrayBuffers do
 * not move once native code has seen them, so the base is cached per buffer.
 */
const bases = new WeakMap<ArrayBufferLike, bigint>();
function addressOf(ring: Ring, v: Uint8Array): bigint {
  const ab = v.buffer;
  let base = bases.get(ab);
  if (base === undefined) {
    if (v.byteLength === 0) return 0n;
    base = ring.libc.addressOf(v) - BigInt(v.byteOffset);
    bases.set(ab, base);
  }
  return base + BigInt(v.byteOffset);
}

const SO_INT = new Int32Array(1);
const SO_LEN = new Int32Array(1);

function iovecFor(addr: bigint, len: number): Buffer {
  const b = Buffer.alloc(LAYOUT.iovec.size);
  b.writeBigUInt64LE(addr, LAYOUT.iovec.fields.iov_base.offset);
  b.writeBigUInt64LE(BigInt(len), LAYOUT.iovec.fields.iov_len.offset);
  return b;
}

/** A socket driven through a Ring. */
export class ZcSocket implements RingResource {
  readonly ring: Ring;
  /** the file descriptor (-1 once closed) */
  fd: number;
  readonly kind: SocketKind;
  #owned: boolean;
  #sendDefaults: SendOptions;
  #pending = 0;
  #drained: (() => void)[] = [];
  #closing: Promise<void> | null = null;
  #closed = false;
  #closeIssued = false;
  #addrCache = new Map<string, Buffer>();

  private constructor(ring: Ring, fd: number, kind: SocketKind, owned: boolean, sendDefaults: SendOptions) {
    this.ring = ring;
    this.fd = fd;
    this.kind = kind;
    this.#owned = owned;
    this.#sendDefaults = sendDefaults;
    ring.track(this);
  }

  /** Open a TCP connection (socket + connect through the ring). */
  static async connect(ring: Ring, options: ConnectOptions): Promise<ZcSocket> {
    const defaults = parseSendOptions(options.sendOptions);
    const host = await resolveHost(options.host);
    const sa = encodeSockaddr(host, options.port, 'ConnectOptions');
    const fd = await ringOp(ring, 'socket', (ud) =>
      ring.zc.zc_socket(ring.ptr, domainOf(host), SYS.SOCK_STREAM, SYS.IPPROTO_TCP, ud),
    );
    const s = new ZcSocket(ring, fd, 'stream', true, defaults);
    try {
      if (options.noDelay ?? false) s.#setInt(SYS.IPPROTO_TCP, SYS.TCP_NODELAY, 1);
      await ringOp(ring, 'connect', (ud) => ring.zc.zc_connect(ring.ptr, fd, sa, sa.length, ud));
    } catch (e) {
      s.#closeNow();
      throw e;
    }
    return s;
  }

  /** A listening TCP socket (socket + bind + listen through the ring). */
  static async listen(ring: Ring, options: ListenOptions = {}): Promise<ZcSocket> {
    const defaults = parseSendOptions(options.sendOptions);
    const host = await resolveHost(options.host ?? '127.0.0.1');
    const sa = encodeSockaddr(host, options.port ?? 0, 'ListenOptions');
    const fd = await ringOp(ring, 'socket', (ud) =>
      ring.zc.zc_socket(ring.ptr, domainOf(host), SYS.SOCK_STREAM, SYS.IPPROTO_TCP, ud),
    );
    const s = new ZcSocket(ring, fd, 'listener', true, defaults);
    try {
      s.#setInt(SYS.SOL_SOCKET, SYS.SO_REUSEADDR, 1);
      await ringOp(ring, 'bind', (ud) => ring.zc.zc_bind(ring.ptr, fd, sa, sa.length, ud));
      const backlog = options.backlog ?? 511;
      await ringOp(ring, 'listen', (ud) => ring.zc.zc_listen(ring.ptr, fd, backlog, ud));
    } catch (e) {
      s.#closeNow();
      throw e;
    }
    return s;
  }

  /** A UDP socket, optionally bound and/or connected. */
  static async udp(ring: Ring, options: UdpOptions = {}): Promise<ZcSocket> {
    const defaults = parseSendOptions(options.sendOptions);
    const family = options.family ?? (options.host !== undefined && isIP(options.host) === 6 ? 6 : 4);
    const domain = family === 6 ? SYS.AF_INET6 : SYS.AF_INET;
    const fd = await ringOp(ring, 'socket', (ud) =>
      ring.zc.zc_socket(ring.ptr, domain, SYS.SOCK_DGRAM, SYS.IPPROTO_UDP, ud),
    );
    const s = new ZcSocket(ring, fd, 'dgram', true, defaults);
    try {
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
    } catch (e) {
      s.#closeNow();
      throw e;
    }
    return s;
  }

  /**
   * Wrap a socket fd opened elsewhere (e.g. an AF_UNIX socketpair).  With
   * `owned: false` close() leaves the fd open and only makes libzc forget it.
   */
  static adopt(ring: Ring, fd: number, options: AdoptOptions = {}): ZcSocket {
    const defaults = parseSendOptions(options.sendOptions);
    let kind = options.kind;
    if (kind === undefined) {
      SO_LEN[0] = 4;
      if (ring.libc.getsockopt(fd, SYS.SOL_SOCKET, SYS.SO_TYPE, SO_INT, SO_LEN) < 0) {
        throw new ZcError({ errno: ring.libc.errno(), op: 'adopt', hint: `fd ${fd} is not a socket` });
      }
      kind = SO_INT[0] === SYS.SOCK_DGRAM ? 'dgram' : 'stream';
    }
    return new ZcSocket(ring, fd, kind, options.owned ?? true, defaults);
  }

  /**
   * A connected pair of AF_UNIX sockets (socketpair(2)), both driven by
   * the ring.  AF_UNIX has no zero-copy: mode 'zc' sends fail with
   * EOPNOTSUPP, 'copy' works.  Useful for local IPC and tests.
   */
  static pair(ring: Ring, kind: 'stream' | 'dgram' = 'stream', options: { sendOptions?: SendOptionsInput } = {}): [ZcSocket, ZcSocket] {
    const defaults = parseSendOptions(options.sendOptions);
    const sv = new Int32Array(2);
    const type = (kind === 'stream' ? SYS.SOCK_STREAM : SYS.SOCK_DGRAM) | SYS.SOCK_CLOEXEC;
    if (ring.libc.socketpair(SYS.AF_UNIX, type, 0, sv) < 0) {
      throw new ZcError({ errno: ring.libc.errno(), op: 'socketpair' });
    }
    return [new ZcSocket(ring, sv[0] as number, kind, true, defaults), new ZcSocket(ring, sv[1] as number, kind, true, defaults)];
  }

  /** Set TCP_NODELAY (see ConnectOptions.noDelay). */
  setNoDelay(on = true): void {
    this.#checkOpen('setNoDelay');
    this.#setInt(SYS.IPPROTO_TCP, SYS.TCP_NODELAY, on ? 1 : 0);
  }

  #setInt(level: number, name: number, value: number): void {
    const v = new Int32Array([value]);
    if (this.ring.libc.setsockopt(this.fd, level, name, v, 4) < 0) {
      throw new ZcError({ errno: this.ring.libc.errno(), op: 'setsockopt' });
    }
  }

  /** true once close() started */
  get closed(): boolean {
    return this.#closed || this.#closing !== null;
  }

  /** sends (and accepts) of this socket not settled yet */
  get pending(): number {
    return this.#pending;
  }

  /** Local address (getsockname). */
  localAddress(): SocketAddress | null {
    const b = new Uint8Array(LAYOUT.sockaddr_storage.size);
    const len = new Int32Array([b.length]);
    if (this.fd < 0 || this.ring.libc.getsockname(this.fd, b, len) < 0) return null;
    return decodeSockaddr(b);
  }

  /** Change the default options of later sends on this socket. */
  setSendDefaults(options: SendOptionsInput): void {
    this.#sendDefaults = parseSendOptions(options);
    this.#optIn = undefined;
  }

  /** Current default send options. */
  get sendDefaults(): Readonly<SendOptions> {
    return this.#sendDefaults;
  }

  #checkOpen(op: string): void {
    if (this.#closed || this.#closing) throw new ZcError({ errno: ERRNO.EBADF, op, hint: 'the socket is closed' });
  }

  /** Accept one connection (listener sockets). */
  accept(): Promise<ZcSocket> {
    this.#checkOpen('accept');
    if (this.kind !== 'listener') {
      return Promise.reject(new ZcError({ errno: ERRNO.EINVAL, op: 'accept', hint: 'not a listening socket' }));
    }
    this.#pending++;
    const fd = this.fd;
    const ring = this.ring;
    return ringOp(ring, 'accept', (ud) => ring.zc.zc_accept(ring.ptr, fd, ud)).then(
      (nfd) => {
        this.#settled();
        return new ZcSocket(ring, nfd, 'stream', true, this.#sendDefaults);
      },
      (e: unknown) => {
        this.#settled();
        throw e;
      },
    );
  }

  #settled(): void {
    this.#pending--;
    if (this.#pending === 0 && this.#drained.length > 0) {
      const w = this.#drained;
      this.#drained = [];
      for (const f of w) f();
    }
  }

  /**
   * Send bytes.  `data` is a PoolBuffer (registered memory: zero-copy from
   * a fixed buffer, no pinning per send) or any Uint8Array.  Mode 'zc' uses
   * SEND_ZC, 'copy' a plain send, 'auto' zero-copy from `autoThreshold`
   * bytes on for pool buffers, `autoThresholdUnregistered` for Uint8Arrays.
   * Resolves when the kernel no longer needs the memory.
   * On a stream socket, sends made in the same tick leave together unless
   * `coalesce: false`: copying sends of up to {@link COALESCE_MAX_SEND}
   * bytes as one sendmsg (like Node's writev), zero-copy sends from pool
   * buffers as one SENDMSG_ZC from registered memory (Linux >= 6.15,
   * `ring.sendvFixed`); at most 16 sends / {@link COALESCE_MAX_BATCH} bytes
   * per request.  Each still gets its own result (settled together, when
   * the request's buffers are released), and stream order is kept.
   * Throws at once (ZcOwnershipError) if a PoolBuffer is already in flight
   * or released, ZcConfigError for bad options; rejects with ZcError for
   * kernel errors (EPIPE, ECONNRESET, EOPNOTSUPP for zero-copy on AF_UNIX,
   * ECANCELED when closed meanwhile).
   */
  send(data: Uint8Array | PoolBuffer, options?: SendOptionsInput): Promise<SendResult> {
    return this.#send(data, options, null, 'send');
  }

  /**
   * Send one datagram to `to` (UDP), with SENDMSG_ZC in zero-copy mode.
   * `to.address` must be an IP literal.
   */
  sendTo(data: Uint8Array | PoolBuffer, to: { address: string; port: number }, options?: SendOptionsInput): Promise<SendResult> {
    const key = `${to.address}|${to.port}`;
    let sa = this.#addrCache.get(key);
    if (!sa) {
      sa = encodeSockaddr(to.address, to.port, 'sendTo');
      if (this.#addrCache.size > 64) this.#addrCache.clear();
      this.#addrCache.set(key, sa);
    }
    return this.#send(data, options, sa, 'sendTo');
  }

  #send(data: Uint8Array | PoolBuffer, options: SendOptionsInput | undefined, to: Buffer | null, opName: string): Promise<SendResult> {
    this.#checkOpen(opName);
    const o = this.#resolve(options);
    const ring = this.ring;
    const zc = ring.zc;
    const fd = this.fd;
    let len: number;
    let off: number;
    let pb: PoolBuffer | null = null;
    let view: Uint8Array | null = null;

    if (data instanceof PoolBuffer) {
      off = o.offset ?? 0;
      if (off > data.size) throw rangeError('offset', off, data.size);
      len = o.length ?? data.size - off;
      if (off + len > data.size) throw rangeError('length', len, data.size - off);
      pb = data;
    } else if (data instanceof Uint8Array) {
      off = o.offset ?? 0;
      if (off > data.length) throw rangeError('offset', off, data.length);
      len = o.length ?? data.length - off;
      if (off + len > data.length) throw rangeError('length', len, data.length - off);
      view = off === 0 && len === data.length ? data : data.subarray(off, off + len);
    } else {
      throw new TypeError(`${opName}: data must be a Uint8Array or a PoolBuffer`);
    }
    const flags = this.#flags(o, len, pb !== null);
    const wantZc = (flags & SEND_FLAGS.ZEROCOPY) !== 0;

    // Sends on a stream socket made in one tick leave together, like Node's
    // writev: small copying sends as one sendmsg, zero-copy sends from pool
    // buffers as one SENDMSG_ZC from registered memory.  One kernel op, one
    // notification and one record for all of them.
    if (o.coalesce && to === null && this.kind === 'stream' && len > 0) {
      if (!wantZc && len <= COALESCE_MAX_SEND) {
        if (pb) pb.lend(opName); // throws if in flight or released
        return this.#coalesce(null, pb, view, off, len, flags);
      }
      if (wantZc && pb && ring.sendvFixed) {
        pb.lend(opName);
        return this.#coalesce(pb.pool, pb, null, off, len, flags);
      }
    }
    if (this.#batch) this.#issueBatch(); // keep stream order

    let issue: (ud: number) => number;
    if (pb) {
      pb.lend(opName); // throws if in flight or released
      const pool = pb.pool;
      if (to === null) {
        const poolPtr = pool.ptr;
        const idx = pb.index;
        issue = (ud) => zc.zc_send_fixed(ring.ptr, fd, poolPtr, idx, off, len, flags, ud);
      } else {
        const iov = iovecFor(pool.baseAddress + BigInt(pb.index * pool.size + off), len);
        const sa = to;
        issue = (ud) => zc.zc_sendmsg(ring.ptr, fd, iov, 1, sa, sa.length, flags, ud);
      }
    } else {
      const v = view as Uint8Array;
      if (to === null) {
        issue = (ud) => zc.zc_send(ring.ptr, fd, v, len, flags, ud);
      } else {
        const iov = iovecFor(len > 0 ? addressOf(ring, v) : 0n, len);
        const sa = to;
        issue = (ud) => zc.zc_sendmsg(ring.ptr, fd, iov, 1, sa, sa.length, flags, ud);
      }
    }

    this.#pending++;
    const lent = pb;
    return new Promise<SendResult>((resolve, reject) => {
      const req: RingRequest = {
        opName,
        keep: view,
        issue,
        done: (c: Completion) => {
          if (lent) lent.unlend();
          this.#settled();
          if (c.res < 0) reject(new ZcError({ errno: c.res, op: opName }));
          else resolve({ bytes: c.res, zeroCopy: zeroCopyOf(c, wantZc) });
        },
        fail: (e: ZcError) => {
          if (lent) lent.unlend();
          this.#settled();
          reject(e);
        },
      };
      ring.enqueue(req);
    });
  }

  #batch: SendBatch | null = null;
  readonly #issueBatchHook = (): void => this.#issueBatch();

  #coalesce(
    pool: BufferPool | null, pb: PoolBuffer | null, view: Uint8Array | null, off: number, len: number, flags: number,
  ): Promise<SendResult> {
    const region = pool && pb ? Math.floor(pb.index / pool.regionBuffers) : 0;
    let b = this.#batch;
    if (
      b &&
      (b.flags !== flags ||
        b.pool !== pool ||
        b.region !== region ||
        b.entries.length === ZC_MAX_IOV ||
        b.bytes + len > COALESCE_MAX_BATCH)
    ) {
      this.#issueBatch();
      b = null;
    }
    if (!b) {
      b = { flags, pool, region, bytes: 0, vec: Buffer.alloc(ZC_MAX_IOV * IOV_SIZE), entries: [] };
      this.#batch = b;
      this.ring.beforeFlush(this.#issueBatchHook);
    }
    if (pool && pb) {
      const at = b.entries.length * SPAN.size;
      b.vec.writeUInt32LE(pb.index, at + SPAN.fields.buf.offset);
      b.vec.writeUInt32LE(off, at + SPAN.fields.off.offset);
      b.vec.writeUInt32LE(len, at + SPAN.fields.len.offset);
    } else {
      const addr = pb ? pb.pool.baseAddress + BigInt(pb.index * pb.pool.size + off) : addressOf(this.ring, view as Uint8Array);
      const at = b.entries.length * IOV_SIZE;
      b.vec.writeBigUInt64LE(addr, at + IOV_BASE);
      b.vec.writeBigUInt64LE(BigInt(len), at + IOV_LEN);
    }
    b.bytes += len;
    this.#pending++;
    return new Promise<SendResult>((resolve, reject) => {
      (b as SendBatch).entries.push({ off, len, pb, keep: view, resolve, reject });
    });
  }

  /** Issue the coalesced sends of this tick as one request. */
  #issueBatch(): void {
    const b = this.#batch;
    if (!b) return;
    this.#batch = null;
    const ring = this.ring;
    const zc = ring.zc;
    const fd = this.fd;
    const n = b.entries.length;
    const pool = b.pool;
    const finish = (each: (e: BatchEntry) => void): void => {
      for (const e of b.entries) {
        if (e.pb) e.pb.unlend();
        this.#settled();
        each(e);
      }
    };
    let issue: (ud: number) => number;
    if (!pool) {
      issue = (ud) => zc.zc_sendmsg(ring.ptr, fd, b.vec, n, null, 0, b.flags, ud);
    } else if (n === 1) {
      const e = b.entries[0] as BatchEntry;
      const idx = (e.pb as PoolBuffer).index;
      issue = (ud) => zc.zc_send_fixed(ring.ptr, fd, pool.ptr, idx, e.off, e.len, b.flags, ud);
    } else {
      issue = (ud) => zc.zc_sendv_fixed(ring.ptr, fd, pool.ptr, b.vec, n, b.flags, ud);
    }
    ring.enqueue({
      opName: 'send',
      keep: b,
      issue,
      done: (c: Completion) => {
        if (c.res < 0) {
          finish((e) => e.reject(new ZcError({ errno: c.res, op: 'send' })));
          return;
        }
        // libzc completes short sends on stream sockets: res is the total,
        // handed out in order.
        const zeroCopy = pool ? zeroCopyOf(c, true) : 'copied';
        let left = c.res;
        finish((e) => {
          const bytes = Math.min(e.len, left);
          left -= bytes;
          e.resolve({ bytes, zeroCopy });
        });
      },
      fail: (err: ZcError) => finish((e) => e.reject(err)),
    });
  }

  // Callers usually pass the same options object on every send: reuse the
  // resolved options while its fields are unchanged.
  #optIn: SendOptionsInput | undefined;
  #optSnap: unknown[] = [];
  #optOut: SendOptions = DEFAULT_SEND_OPTIONS;

  #resolve(options: SendOptionsInput | undefined): SendOptions {
    if (options === undefined) return this.#sendDefaults;
    const snap = this.#optSnap;
    if (
      options === this.#optIn &&
      snap[0] === options.mode &&
      snap[1] === options.autoThreshold &&
      snap[7] === options.autoThresholdUnregistered &&
      snap[2] === options.more &&
      snap[3] === options.reportUsage &&
      snap[4] === options.offset &&
      snap[5] === options.length &&
      snap[6] === options.coalesce &&
      this.#optOut !== DEFAULT_SEND_OPTIONS
    ) {
      return this.#optOut;
    }
    const o = resolveSendOptions(options, this.#sendDefaults);
    this.#optIn = options;
    this.#optSnap = [
      options.mode, options.autoThreshold, options.more, options.reportUsage, options.offset, options.length, options.coalesce,
      options.autoThresholdUnregistered,
    ];
    this.#optOut = o;
    return o;
  }

  #wantZc(o: SendOptions, len: number, registered: boolean): boolean {
    if (o.mode !== 'auto') return o.mode === 'zc';
    return len >= (registered ? o.autoThreshold : o.autoThresholdUnregistered);
  }

  #flags(o: SendOptions, len: number, registered: boolean): number {
    let f = 0;
    if (this.#wantZc(o, len, registered)) f |= SEND_FLAGS.ZEROCOPY;
    if (o.more) f |= SEND_FLAGS.MORE;
    if (!o.reportUsage) f |= SEND_FLAGS.NO_REPORT;
    return f;
  }

  /** Shut down one or both directions through the ring ('write' sends FIN after queued sends). */
  shutdown(how: 'read' | 'write' | 'both' = 'write'): Promise<void> {
    this.#checkOpen('shutdown');
    const h = how === 'read' ? SYS.SHUT_RD : how === 'write' ? SYS.SHUT_WR : SYS.SHUT_RDWR;
    this.#issueBatch(); // after the sends made before it
    const ring = this.ring;
    const fd = this.fd;
    return ringOp(ring, 'shutdown', (ud) => ring.zc.zc_shutdown(ring.ptr, fd, h, ud)).then(() => undefined);
  }

  /** Resolves when every send/accept of this socket has settled. */
  drain(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((r) => this.#drained.push(r));
  }

  /**
   * Graceful close: wait until every send settled (data handed over and
   * buffers released), then close the fd through the ring.
   */
  async end(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      await this.drain();
      await this.#closeFd();
    })();
    return this.#closing;
  }

  /**
   * Close now (abortive, like Node's destroy()): the connection is reset
   * (SO_LINGER 0), sends that did not get through reject with
   * EPIPE/ECONNRESET/ECANCELED, pending accepts fail, unsent data is dropped
   * (so buffers held for a peer that does not read come back), the fd is
   * closed through the ring.  Resolves once every Promise of this socket
   * settled.  Idempotent.  Use end() to wait for the data to go out.
   */
  /**
   * Receive on this socket: an async iterator of chunks that are views into
   * registered memory (zcrx when available, else a provided-buffer ring).
   * Same as `receive(socket.ring, socket.fd, options)`.
   */
  receive(options?: ReceiveOptionsInput): RecvStream {
    return receive(this.ring, this.fd, options);
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#issueBatch();
    this.#abort();
    this.#closing = (async () => {
      await this.#closeFd();
      await this.drain();
    })();
    return this.#closing;
  }

  /** Reset on close and stop both directions now. */
  #abort(): void {
    if (!this.#owned || this.fd < 0) return;
    const libc = this.ring.libc;
    if (this.kind === 'stream') {
      const linger = new Int32Array([1, 0]); // struct linger { l_onoff = 1, l_linger = 0 }
      libc.setsockopt(this.fd, SYS.SOL_SOCKET, SYS.SO_LINGER, linger, 8);
    }
    libc.shutdown(this.fd, SYS.SHUT_RDWR);
    // Queued sends end now and the close is not held behind sends in flight:
    // with the kernel's unified sends their completion waits for the buffers,
    // which only the reset at close frees.
    const rp = this.ring.rawPtr;
    if (rp) this.ring.zc.zc_sock_abort(rp, this.fd);
  }

  async #closeFd(): Promise<void> {
    if (this.#closed) return;
    const fd = this.fd;
    const ring = this.ring;
    if (fd < 0 || ring.closed) {
      this.#closeNow();
      return;
    }
    this.#issueBatch();
    if (this.#owned) {
      this.#closeIssued = true;
      try {
        await ringOp(ring, 'close', (ud) => ring.zc.zc_close(ring.ptr, fd, ud));
      } catch (e) {
        // Canceled before it ran (the ring is closing): the fd is still open.
        if (!(e instanceof ZcError && e.code === 'ECANCELED')) throw e;
        ring.libc.close(fd);
      }
    } else {
      ring.zc.zc_sock_forget(ring.ptr, fd);
    }
    this.#finish();
  }

  #finish(): void {
    this.#closed = true;
    this.fd = -1;
    this.ring.untrack(this);
  }

  /** Synchronous close of the fd (error paths and ring teardown). */
  #closeNow(): void {
    if (this.#closed) return;
    const fd = this.fd;
    if (fd >= 0) {
      const rp = this.ring.rawPtr;
      if (rp) this.ring.zc.zc_sock_forget(rp, fd);
      // Once a ring close op was queued, that op (or its cancel path) owns the fd.
      if (this.#owned && !this.#closeIssued) {
        this.#abort();
        this.ring.libc.close(fd);
      }
    }
    this.#finish();
  }

  /**
   * @internal Ring.close(), after zc_cancel_all: reset and close the fd
   * (in-flight requests keep their own file references; the reset frees
   * unsent data so zero-copy notifications come back).
   */
  destroyFromRing(): void {
    this.#closeNow();
  }
}

/** Is this completion from a send op? (for callers decoding raw records) */
export function isSendOp(op: number): boolean {
  return op === OP.SEND || op === OP.SEND_ZC || op === OP.SENDMSG_ZC;
}
