// SPDX-License-Identifier: MIT
/**
 * {@link ZcDatagram}: a UDP (or AF_UNIX datagram) socket driven by a ring,
 * with the Promise sends of the fast lane: `send()` on a connected socket,
 * `sendTo()` with an address (SENDMSG_ZC in zero-copy mode).  No node:net
 * fallback: datagrams need the ring.
 */
import { ERRNO, SYS } from '../ffi/abi.gen.ts';
import { checkNetOptions, parseSendOptions, type SendOptionsInput } from '../config.ts';
import { ZcError } from '../errors.ts';
import { encodeSockaddr, type SocketAddress } from '../addr.ts';
import { PoolBuffer } from '../pool.ts';
import type { Ring, RingResource } from '../ring.ts';
import { defaultRing } from './backend.ts';
import { closeFd, closeFdForTeardown, closeFdNow } from './close.ts';
import { openPair, openUdp } from './factories.ts';
import { SendLane } from './lane.ts';
import { localAddressOf } from './sockopt.ts';
import type { SendCallback, SendResult } from './types.ts';

/** ZcDatagram.open() options. */
export interface DatagramOptions {
  /** the ring to use (default: the thread's shared ring) */
  ring?: Ring;
  /** bind address (default: '0.0.0.0' or '::' by family); bound only if host or port is given */
  host?: string;
  port?: number;
  /** default 4, or 6 when host is an IPv6 literal */
  family?: 4 | 6;
  /** connect to this peer (then send() works without an address) */
  connect?: { host: string; port: number };
  /** defaults of every send */
  sendOptions?: SendOptionsInput;
}

export class ZcDatagram implements RingResource {
  readonly ring: Ring;
  readonly #lane: SendLane;
  #fd: number;
  #closing: Promise<void> | null = null;
  #addrCache = new Map<string, Buffer>();

  private constructor(ring: Ring, fd: number, sendOptions: SendOptionsInput | undefined) {
    this.ring = ring;
    this.#fd = fd;
    ring.zc.zc_sock_opened(ring.ptr, fd); // a new file under this number
    ring.ownFd(fd); // closed with the ring if the thread is terminated
    this.#lane = new SendLane(ring, fd, false, parseSendOptions(sendOptions));
    ring.track(this);
  }

  /** A UDP socket, optionally bound and/or connected, through the ring. */
  static async open(options: DatagramOptions = {}): Promise<ZcDatagram> {
    checkNetOptions('DatagramOptions', options);
    parseSendOptions(options.sendOptions);
    const ring = options.ring ?? defaultRing();
    const fd = await openUdp(ring, options);
    try {
      return new ZcDatagram(ring, fd, options.sendOptions);
    } catch (e) {
      // The ring was closed while the socket was being opened (its last
      // step done, the record reaped): the fd is nobody's yet.
      closeFdNow(ring, fd, false);
      if (!ring.closed) throw e;
      throw new ZcError({ errno: ERRNO.ECANCELED, op: 'udp.open', hint: 'the ring was closed while ZcDatagram.open() was in progress' });
    }
  }

  /** A connected pair of AF_UNIX datagram sockets (socketpair(2)). */
  static pair(options: { ring?: Ring; sendOptions?: SendOptionsInput } = {}): [ZcDatagram, ZcDatagram] {
    checkNetOptions('PairOptions', options);
    parseSendOptions(options.sendOptions);
    const ring = options.ring ?? defaultRing();
    const [a, b] = openPair(ring, SYS.SOCK_DGRAM);
    return [new ZcDatagram(ring, a, options.sendOptions), new ZcDatagram(ring, b, options.sendOptions)];
  }

  /** the fd (-1 once closed) */
  get fd(): number {
    return this.#fd;
  }

  /** true once close() started */
  get closed(): boolean {
    return this.#closing !== null || this.#fd < 0;
  }

  /** sends not settled yet */
  get inFlight(): number {
    return this.#lane.inFlight;
  }

  /** Resolves when every send made so far has settled. */
  settled(): Promise<void> {
    return this.#lane.settled();
  }

  #check(op: string): void {
    if (this.closed) throw new ZcError({ errno: ERRNO.EBADF, op, hint: 'the socket is closed' });
  }

  /**
   * Send one datagram on a connected socket (see ZcSocket.send for modes
   * and results; with a `callback`, no Promise: `callback(err, bytes,
   * zeroCopy)` once, never synchronously).
   */
  send(data: Uint8Array | PoolBuffer, options?: SendOptionsInput): Promise<SendResult>;
  send(data: Uint8Array | PoolBuffer, options: SendOptionsInput | undefined, callback: SendCallback): void;
  send(data: Uint8Array | PoolBuffer, options?: SendOptionsInput, callback?: SendCallback): Promise<SendResult> | void {
    this.#check('send');
    if (callback === undefined) return this.#lane.send(data, options, null, 'send');
    if (typeof callback !== 'function') throw new TypeError('send: callback must be a function');
    if (data instanceof PoolBuffer) this.#lane.sendPool(data, options, callback);
    else this.#lane.sendCallback(data, options, null, 'send', callback);
  }

  /** Send one datagram to `to` (`to.address` an IP literal); `callback` as for send(). */
  sendTo(data: Uint8Array | PoolBuffer, to: { address: string; port: number }, options?: SendOptionsInput): Promise<SendResult>;
  sendTo(
    data: Uint8Array | PoolBuffer, to: { address: string; port: number }, options: SendOptionsInput | undefined, callback: SendCallback,
  ): void;
  sendTo(
    data: Uint8Array | PoolBuffer, to: { address: string; port: number }, options?: SendOptionsInput, callback?: SendCallback,
  ): Promise<SendResult> | void {
    this.#check('sendTo');
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('sendTo: callback must be a function');
    const key = `${to.address}|${to.port}`;
    let sa = this.#addrCache.get(key);
    if (!sa) {
      sa = encodeSockaddr(to.address, to.port, 'sendTo');
      if (this.#addrCache.size > 64) this.#addrCache.clear();
      this.#addrCache.set(key, sa);
    }
    if (callback) this.#lane.sendCallback(data, options, sa, 'sendTo', callback);
    else return this.#lane.send(data, options, sa, 'sendTo');
  }

  /** The bound address (getsockname), null when closed or not IP. */
  address(): SocketAddress | null {
    return localAddressOf(this.ring, this.#fd);
  }

  /** Wait for the sends in flight, then close the fd through the ring.  Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#lane.settled();
      const fd = this.#fd;
      this.#lane.fd = -1;
      if (fd >= 0) await closeFd(this.ring, fd, false);
      this.#forget();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #forget(): void {
    this.#fd = -1;
    this.#lane.fd = -1;
    this.ring.untrack(this);
  }

  /** @internal Ring.close() */
  destroyFromRing(): void {
    this.#lane.fd = -1;
    if (this.#fd >= 0) closeFdForTeardown(this.ring, this.#fd, false);
    this.#closing ??= Promise.resolve();
    this.#forget();
  }
}
