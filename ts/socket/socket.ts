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
import { ERRNO, SEND_FLAGS, SYS } from '../ffi/abi.gen.ts';
import { parseSendOptions, type SendOptions, type SendOptionsInput } from '../config.ts';
import { ZcError } from '../errors.ts';
import { encodeSockaddr, type SocketAddress } from '../addr.ts';
import type { PoolBuffer } from '../pool.ts';
import { receive, type ReceiveOptionsInput, type RecvStream } from '../recv.ts';
import { zeroCopyOf, type Completion, type Ring, type RingRequest, type RingResource } from '../ring.ts';
import { CloseMachine } from './close.ts';
import { Coalescer, COALESCE_MAX_SEND } from './coalescer.ts';
import { openConnected, openListener, openPair, openUdp } from './factories.ts';
import { addressOf, iovecFor } from './memory.ts';
import { ringOp } from './ring-op.ts';
import { decodeSendArgs } from './send-args.ts';
import { sendFlags } from './send-flags.ts';
import { SendOptionsMemo } from './send-options.ts';
import { localAddressOf, setIntOption, socketKindOf } from './sockopt.ts';
import type { AdoptOptions, ConnectOptions, ListenOptions, SendResult, SocketKind, UdpOptions } from './types.ts';

/** A socket driven through a Ring. */
export class ZcSocket implements RingResource {
  readonly ring: Ring;
  /** the file descriptor (-1 once closed) */
  fd: number;
  readonly kind: SocketKind;
  readonly #owned: boolean;
  readonly #opts: SendOptionsMemo;
  #pending = 0;
  #drained: (() => void)[] = [];
  #addrCache = new Map<string, Buffer>();
  readonly #coalescer: Coalescer;
  readonly #close: CloseMachine;

  private constructor(ring: Ring, fd: number, kind: SocketKind, owned: boolean, sendDefaults: SendOptions) {
    this.ring = ring;
    this.fd = fd;
    this.kind = kind;
    this.#owned = owned;
    this.#opts = new SendOptionsMemo(sendDefaults);
    this.#coalescer = new Coalescer(ring, () => this.fd, () => this.#settled());
    const self = this;
    this.#close = new CloseMachine({
      ring,
      kind,
      owned,
      get fd() {
        return self.fd;
      },
      flushSends: () => this.#coalescer.flush(),
      drain: () => this.drain(),
      finished: () => {
        this.fd = -1;
        this.ring.untrack(this);
      },
    });
    ring.track(this);
  }

  /** Open a TCP connection (socket + connect through the ring). */
  static async connect(ring: Ring, options: ConnectOptions): Promise<ZcSocket> {
    const defaults = parseSendOptions(options.sendOptions);
    return new ZcSocket(ring, await openConnected(ring, options), 'stream', true, defaults);
  }

  /** A listening TCP socket (socket + bind + listen through the ring). */
  static async listen(ring: Ring, options: ListenOptions = {}): Promise<ZcSocket> {
    const defaults = parseSendOptions(options.sendOptions);
    return new ZcSocket(ring, await openListener(ring, options), 'listener', true, defaults);
  }

  /** A UDP socket, optionally bound and/or connected. */
  static async udp(ring: Ring, options: UdpOptions = {}): Promise<ZcSocket> {
    const defaults = parseSendOptions(options.sendOptions);
    return new ZcSocket(ring, await openUdp(ring, options), 'dgram', true, defaults);
  }

  /**
   * Wrap a socket fd opened elsewhere (e.g. an AF_UNIX socketpair).  With
   * `owned: false` close() leaves the fd open and only makes libzc forget it.
   */
  static adopt(ring: Ring, fd: number, options: AdoptOptions = {}): ZcSocket {
    const defaults = parseSendOptions(options.sendOptions);
    const kind = options.kind ?? socketKindOf(ring, fd, 'adopt');
    return new ZcSocket(ring, fd, kind, options.owned ?? true, defaults);
  }

  /**
   * A connected pair of AF_UNIX sockets (socketpair(2)), both driven by
   * the ring.  AF_UNIX has no zero-copy: mode 'zc' sends fail with
   * EOPNOTSUPP, 'copy' works.  Useful for local IPC and tests.
   */
  static pair(ring: Ring, kind: 'stream' | 'dgram' = 'stream', options: { sendOptions?: SendOptionsInput } = {}): [ZcSocket, ZcSocket] {
    const defaults = parseSendOptions(options.sendOptions);
    const [a, b] = openPair(ring, kind);
    return [new ZcSocket(ring, a, kind, true, defaults), new ZcSocket(ring, b, kind, true, defaults)];
  }

  /** Set TCP_NODELAY (see ConnectOptions.noDelay). */
  setNoDelay(on = true): void {
    this.#close.check('setNoDelay');
    setIntOption(this.ring, this.fd, SYS.IPPROTO_TCP, SYS.TCP_NODELAY, on ? 1 : 0);
  }

  /** true once close() started */
  get closed(): boolean {
    return this.#close.started;
  }

  /** sends (and accepts) of this socket not settled yet */
  get pending(): number {
    return this.#pending;
  }

  /** Local address (getsockname). */
  localAddress(): SocketAddress | null {
    return localAddressOf(this.ring, this.fd);
  }

  /** Change the default options of later sends on this socket. */
  setSendDefaults(options: SendOptionsInput): void {
    this.#opts.setDefaults(options);
  }

  /** Current default send options. */
  get sendDefaults(): Readonly<SendOptions> {
    return this.#opts.defaults;
  }

  /** Accept one connection (listener sockets). */
  accept(): Promise<ZcSocket> {
    this.#close.check('accept');
    if (this.kind !== 'listener') {
      return Promise.reject(new ZcError({ errno: ERRNO.EINVAL, op: 'accept', hint: 'not a listening socket' }));
    }
    this.#pending++;
    const fd = this.fd;
    const ring = this.ring;
    return ringOp(ring, 'accept', (ud) => ring.zc.zc_accept(ring.ptr, fd, ud)).then(
      (nfd) => {
        this.#settled();
        return new ZcSocket(ring, nfd, 'stream', true, this.#opts.defaults);
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
    this.#close.check(opName);
    const o = this.#opts.resolve(options);
    const ring = this.ring;
    const zc = ring.zc;
    const fd = this.fd;
    const { pb, view, off, len } = decodeSendArgs(data, o, opName);
    const flags = sendFlags(o, len, pb !== null);
    const wantZc = (flags & SEND_FLAGS.ZEROCOPY) !== 0;

    // Sends on a stream socket made in one tick leave together, like Node's
    // writev: small copying sends as one sendmsg, zero-copy sends from pool
    // buffers as one SENDMSG_ZC from registered memory.  One kernel op, one
    // notification and one record for all of them.
    if (o.coalesce && to === null && this.kind === 'stream' && len > 0) {
      if (!wantZc && len <= COALESCE_MAX_SEND) {
        if (pb) pb.lend(opName); // throws if in flight or released
        this.#pending++;
        return this.#coalescer.add(null, pb, view, off, len, flags);
      }
      if (wantZc && pb && ring.sendvFixed) {
        pb.lend(opName);
        this.#pending++;
        return this.#coalescer.add(pb.pool, pb, null, off, len, flags);
      }
    }
    this.#coalescer.flush(); // keep stream order

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

  /** Shut down one or both directions through the ring ('write' sends FIN after queued sends). */
  shutdown(how: 'read' | 'write' | 'both' = 'write'): Promise<void> {
    this.#close.check('shutdown');
    const h = how === 'read' ? SYS.SHUT_RD : how === 'write' ? SYS.SHUT_WR : SYS.SHUT_RDWR;
    this.#coalescer.flush(); // after the sends made before it
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
  end(): Promise<void> {
    return this.#close.end();
  }

  /**
   * Receive on this socket: an async iterator of chunks that are views into
   * registered memory (zcrx when available, else a provided-buffer ring).
   * Same as `receive(socket.ring, socket.fd, options)`.
   */
  receive(options?: ReceiveOptionsInput): RecvStream {
    return receive(this.ring, this.fd, options);
  }

  /**
   * Close now (abortive, like Node's destroy()): the connection is reset
   * (SO_LINGER 0), sends that did not get through reject with
   * EPIPE/ECONNRESET/ECANCELED, pending accepts fail, unsent data is dropped
   * (so buffers held for a peer that does not read come back), the fd is
   * closed through the ring.  Resolves once every Promise of this socket
   * settled.  Idempotent.  Use end() to wait for the data to go out.
   */
  close(): Promise<void> {
    return this.#close.close();
  }

  /**
   * @internal Ring.close(), after zc_cancel_all: reset and close the fd
   * (in-flight requests keep their own file references; the reset frees
   * unsent data so zero-copy notifications come back).
   */
  destroyFromRing(): void {
    this.#close.closeNow();
  }
}

