// SPDX-License-Identifier: MIT
/**
 * The io_uring engine of a {@link ZcSocket}: connect, sends (Duplex writes
 * and the Promise fast lane share one {@link SendLane}, so one order), the
 * multishot receive feeding the readable side, FIN and close, all through
 * the socket's ring.
 */
import { isIP } from 'node:net';
import { ERRNO, SYS } from '../ffi/abi.gen.ts';
import type { SendOptions, SendOptionsInput } from '../config.ts';
import { ZcError } from '../errors.ts';
import type { PoolBuffer } from '../pool.ts';
import { receive, type Chunk, type ReceiveOptionsInput, type RecvStream } from '../recv.ts';
import type { Ring, RingResource } from '../ring.ts';
import { encodeSockaddr, type SocketAddress } from '../addr.ts';
import { closeFd, closeFdForTeardown, closeFdNow, resetFd } from './close.ts';
import type { Backend, ConnectTarget, ReadTarget, SocketEngine, WriteEntry } from './engine.ts';
import { connectFd, openStream, resolveHost } from './factories.ts';
import { SendLane, type SendCallback } from './lane.ts';
import { releaseFile, sendFileOnRing, type FileSpec, type SendFileResult } from './send-file.ts';
import { SocketReader } from './reader.ts';
import { ringOp } from './ring-op.ts';
import { localAddressOf, peerAddressOf, setIntOption, setKeepAlive } from './sockopt.ts';
import type { SendResult } from './types.ts';

export class UringEngine implements SocketEngine, RingResource {
  readonly backend: Backend = 'uring';
  readonly ring: Ring;
  #fd = -1;
  #connectFd = -1;
  #connectAborted = false;
  #lane: SendLane | null = null;
  readonly #defaults: SendOptions;
  readonly #recvOptions: ReceiveOptionsInput | undefined;
  #reader: SocketReader | null = null;
  #fast: RecvStream | null = null;
  #refed = true;
  /** the owner's reaction to a ring teardown */
  readonly #onRingClose: () => void;

  /** keep the system's congestion control to a peer on this host (SocketOptions.localPacing) */
  readonly #localPacing: boolean;

  constructor(
    ring: Ring, defaults: SendOptions, recvOptions: ReceiveOptionsInput | undefined, onRingClose: () => void, localPacing = false,
  ) {
    this.ring = ring;
    this.#localPacing = localPacing;
    this.#defaults = defaults;
    this.#recvOptions = recvOptions;
    this.#onRingClose = onRingClose;
  }

  get fd(): number {
    return this.#fd;
  }

  get open(): boolean {
    return this.#fd >= 0;
  }

  get inFlight(): number {
    return this.#lane?.inFlight ?? 0;
  }

  get bytesSent(): number {
    return this.#lane?.bytesSent ?? 0;
  }

  /** the send lane (throws EBADF when not open) */
  #open(op: string): SendLane {
    const lane = this.#lane;
    if (!lane || this.#fd < 0) throw new ZcError({ errno: ERRNO.EBADF, op, hint: 'the socket is closed' });
    return lane;
  }

  /** @internal the send lane once open (the socket's direct path for send()) */
  get lane(): SendLane | null {
    return this.#lane;
  }

  /** Drive an fd that is already connected (accepted, adopted, socketpair). */
  attach(fd: number): void {
    // A new file under this number: libzc drops what it knew of an older
    // one (a socketpair or adopted fd may reuse a number just closed).
    this.ring.zc.zc_sock_opened(this.ring.ptr, fd);
    this.ring.ownFd(fd); // closed with the ring if the thread is terminated
    this.#fd = fd;
    this.#lane = new SendLane(this.ring, fd, true, this.#defaults, this.#localPacing);
    this.ring.track(this);
  }

  async connect(t: ConnectTarget): Promise<void> {
    const ring = this.ring;
    const aborted = (): ZcError => new ZcError({ errno: ERRNO.ECANCELED, op: 'connect', hint: 'the socket was destroyed while connecting' });
    const host = await resolveHost(t.host, t.family);
    if (this.#connectAborted) throw aborted();
    const fd = await openStream(ring, host);
    if (this.#connectAborted) {
      closeFdNow(ring, fd, true);
      throw aborted();
    }
    this.#connectFd = fd;
    try {
      if (t.noDelay) setIntOption(ring, fd, SYS.IPPROTO_TCP, SYS.TCP_NODELAY, 1);
      if (t.keepAlive) setKeepAlive(ring, fd, true, t.keepAliveInitialDelay);
      if (t.localAddress !== undefined || t.localPort !== undefined) {
        const local = t.localAddress ?? (isIP(host) === 6 ? '::' : '0.0.0.0');
        const sa = encodeSockaddr(local, t.localPort ?? 0, 'ConnectOptions.localAddress');
        await ringOp(ring, 'bind', (ud) => ring.zc.zc_bind(ring.ptr, fd, sa, sa.length, ud));
        // Destroyed during the bind: abortConnect's reset found no connect
        // to fail, so none may start now.
        if (this.#connectAborted) throw aborted();
      }
      await connectFd(ring, fd, host, t.port, 'ConnectOptions');
    } catch (e) {
      this.#connectFd = -1;
      closeFdNow(ring, fd, true);
      if (e instanceof ZcError) throw new ZcError({ errno: e.errno, op: e.op, hint: e.hint, details: { address: host, port: t.port } });
      throw e;
    }
    this.#connectFd = -1;
    this.attach(fd);
  }

  abortConnect(): void {
    this.#connectAborted = true;
    // Disconnecting a connecting TCP socket fails the connect op at once.
    if (this.#connectFd >= 0) resetFd(this.ring, this.#connectFd);
  }

  /** The lane for a write, or null once cb has the reason there is none (closed, ended). */
  #writeLane(cb: (err: unknown, bytes: number) => void): SendLane | null {
    try {
      return this.#open('write');
    } catch (e) {
      cb(e, 0);
      return null;
    }
  }

  writev(entries: WriteEntry[], cb: (err: unknown, bytes: number) => void): void {
    const lane = this.#writeLane(cb);
    if (!lane) return;
    let left = entries.length;
    let err: unknown = null;
    let bytes = 0;
    const one = (e: WriteEntry, r: SendResult | null, x: unknown): void => {
      if (r) bytes += r.bytes;
      else err ??= x;
      e.settle?.(r, x);
      if (--left === 0) cb(err, bytes);
    };
    for (const e of entries) {
      e.taken = true;
      if (e.file) {
        // Its Promise reports the outcome (as a direct sendFile would):
        // the Duplex side goes on either way.
        const f = e.file;
        const placeholder = { bytes: 0, zeroCopy: 'unknown' } as const;
        sendFileOnRing(lane, f.spec).then(
          (r) => {
            f.settle(r, null);
            one(e, placeholder, null);
          },
          (x: unknown) => {
            f.settle(null, x);
            one(e, placeholder, null);
          },
        );
        continue;
      }
      try {
        lane.sendCallback(e.data, e.options, null, 'write', (x, n, zeroCopy) => one(e, x ? null : { bytes: n, zeroCopy }, x), e.lent);
      } catch (x) {
        one(e, null, x);
      }
    }
  }

  writeOne(data: Uint8Array, cb: (err: unknown, bytes: number) => void): void {
    const lane = this.#writeLane(cb);
    if (!lane) return;
    try {
      lane.sendCallback(data, undefined, null, 'write', cb);
    } catch (x) {
      cb(x, 0);
    }
  }

  send(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, opName: string): Promise<SendResult> {
    return this.#open(opName).send(data, options, null, opName);
  }

  sendCallback(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, opName: string, cb: SendCallback): void {
    this.#open(opName).sendCallback(data, options, null, opName, cb);
  }

  sendFile(spec: FileSpec): Promise<SendFileResult> {
    let lane: SendLane;
    try {
      lane = this.#open('sendFile');
    } catch (e) {
      releaseFile(spec);
      return Promise.reject(e);
    }
    return sendFileOnRing(lane, spec);
  }

  settled(): Promise<void> {
    return this.#lane?.settled() ?? Promise.resolve();
  }

  read(target: ReadTarget): void {
    if (this.#reader) {
      this.#reader.resume();
      return;
    }
    if (this.#fast) return; // receive() owns the socket's receive
    this.#reader = new SocketReader(this.ring, this.#fd, target, this.#recvOptions);
    if (!this.#refed) this.#reader.ref(false);
  }

  receive(options?: ReceiveOptionsInput): RecvStream {
    this.#open('receive');
    if (this.#reader) {
      throw new ZcError({
        errno: ERRNO.EBUSY,
        op: 'receive',
        hint: "the socket's readable side is already reading ('data' listener, pipe or read()): use one or the other",
      });
    }
    const s = receive(this.ring, this.#fd, options);
    this.#fast = s;
    if (!this.#refed) s.setRef(false);
    return s;
  }

  shutdown(): Promise<void> {
    const lane = this.#open('end');
    lane.flush(); // after the sends made before it
    const ring = this.ring;
    const fd = this.#fd;
    return ringOp(ring, 'shutdown', (ud) => ring.zc.zc_shutdown(ring.ptr, fd, SYS.SHUT_WR, ud)).then(
      () => undefined,
      (e: unknown) => {
        // Already shut down or reset by the peer: nothing left to finish.
        if (e instanceof ZcError && e.code === 'ENOTCONN') return;
        throw e;
      },
    );
  }

  async close(reset: boolean): Promise<void> {
    const fd = this.#fd;
    const lane = this.#lane;
    if (fd < 0 || !lane) return;
    lane.flush();
    lane.fd = -1; // from now on nothing more goes out to this number
    const waits: Promise<unknown>[] = [];
    if (this.#reader) waits.push(this.#reader.stop());
    if (this.#fast) {
      this.#fast.cancel();
      this.#fast.releaseFd(); // closed below, before the receive's last record may come
      waits.push(this.#fast.finished);
    }
    waits.push(closeFd(this.ring, fd, reset), lane.settled());
    await Promise.all(waits);
    this.#forget();
  }

  #forget(): void {
    if (this.#lane) this.#lane.fd = -1;
    this.#fd = -1;
    this.ring.untrack(this);
  }

  /** @internal Ring.close(): the ring is going away under the socket. */
  destroyFromRing(): void {
    if (this.#lane) this.#lane.fd = -1;
    if (this.#fd >= 0) closeFdForTeardown(this.ring, this.#fd, true);
    this.#forget();
    this.#onRingClose();
  }

  setNoDelay(on: boolean): void {
    setIntOption(this.ring, this.#fd, SYS.IPPROTO_TCP, SYS.TCP_NODELAY, on ? 1 : 0);
  }

  setKeepAlive(on: boolean, initialDelayMs: number): void {
    setKeepAlive(this.ring, this.#fd, on, initialDelayMs);
  }

  local(): SocketAddress | null {
    return localAddressOf(this.ring, this.#fd);
  }

  peer(): SocketAddress | null {
    return peerAddressOf(this.ring, this.#fd);
  }

  ref(on: boolean): void {
    this.#refed = on;
    this.#reader?.ref(on);
    this.#fast?.setRef(on);
  }
}
