// SPDX-License-Identifier: MIT
/**
 * What a {@link ZcSocket} needs from the I/O underneath: the io_uring
 * engine (uring-engine.ts) or node:net (net-engine.ts).  The socket keeps
 * the stream state, events and timers; an engine moves bytes and owns the
 * fd or handle.
 */
import type { SendOptionsInput } from '../config.ts';
import type { ZcError } from '../errors.ts';
import type { PoolBuffer } from '../pool.ts';
import type { Chunk, ChunkStream, ReceiveOptionsInput } from '../recv.ts';
import type { Ring } from '../ring.ts';
import type { SocketAddress } from '../addr.ts';
import type { FileSpec, SendFileResult } from './send-file.ts';
import type { SendCallback, SendResult } from './types.ts';

/** Which I/O a socket or server uses. */
export type Backend = 'uring' | 'net';

/** One chunk of a Duplex write. */
export interface WriteEntry {
  /** a Chunk: one send(chunk) queued behind writes took (lent is true) */
  data: Uint8Array | PoolBuffer | Chunk;
  /** send options (a PoolBuffer written with offset/length, a send() queued behind writes) */
  options: SendOptionsInput | undefined;
  /** a PoolBuffer already lent by write()/send(), a Chunk already taken by send() */
  lent: boolean;
  /** handed to the engine (a PoolBuffer not yet handed over is given back if the write is dropped) */
  taken: boolean;
  /** a send() routed through the write queue: gets its own result */
  settle?: (r: SendResult | null, err: unknown) => void;
  /** a sendFile() routed through the write queue (data is an empty placeholder) */
  file?: { spec: FileSpec; settle: (r: SendFileResult | null, err: unknown) => void };
}

/** Where received bytes go. */
export interface ReadTarget {
  /** a chunk arrived (the Buffer is the caller's); false: stop until resume() */
  data(buf: Buffer): boolean;
  /** null: clean end of stream; else the error that ended it */
  end(err: ZcError | Error | null): void;
}

/** How to reach the peer (resolved by the socket). */
export interface ConnectTarget {
  host: string;
  port: number;
  family?: 4 | 6;
  noDelay: boolean;
  keepAlive: boolean;
  keepAliveInitialDelay: number;
  /** bind the local end to this IP literal before connecting (net.connect's localAddress) */
  localAddress?: string;
  /** bind the local end to this port before connecting (net.connect's localPort) */
  localPort?: number;
}

export interface SocketEngine {
  readonly backend: Backend;
  /** the ring (uring backend), else null */
  readonly ring: Ring | null;
  /** the fd (-1 before connect, after close, and on the net backend) */
  readonly fd: number;
  /** connected and not closed */
  readonly open: boolean;
  /** Drive an fd that is already connected (accepted, adopted, socketpair). */
  attach(fd: number): void;
  /** sends (writes and send()) not settled */
  readonly inFlight: number;
  /** bytes the kernel took from send()s and sendFile()s (not Duplex writes: the socket counts those), settled */
  readonly bytesSent: number;
  /** Connect; resolves when connected.  abort() makes it reject. */
  connect(target: ConnectTarget): Promise<void>;
  /** Give up a connect in progress. */
  abortConnect(): void;
  /** Write chunks in order; cb once every one settled (first error, bytes taken). */
  writev(entries: WriteEntry[], cb: (err: unknown, bytes: number) => void): void;
  /**
   * One plain chunk of the Duplex side (the usual write): as writev() of
   * one entry without options, settle or file, without the batch's
   * bookkeeping (no array, entry or aggregating closure per write).
   */
  writeOne(data: Uint8Array, cb: (err: unknown, bytes: number) => void): void;
  /** The Promise fast lane. */
  send(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, opName: string): Promise<SendResult>;
  /** The same send, settled through cb(err, bytes, zeroCopy) (never synchronously). */
  sendCallback(data: Uint8Array | PoolBuffer | Chunk, options: SendOptionsInput | undefined, opName: string, cb: SendCallback): void;
  /** A file range after everything sent so far (send-file.ts); owns spec.fd. */
  sendFile(spec: FileSpec): Promise<SendFileResult>;
  /** Every send so far settled. */
  settled(): Promise<void>;
  /** Start feeding `target`, or resume after target.data() returned false. */
  read(target: ReadTarget): void;
  /** The fast-lane receive (the Duplex side must not be reading). */
  receive(options?: ReceiveOptionsInput): ChunkStream;
  /** FIN after everything queued. */
  shutdown(): Promise<void>;
  /** Close now (see close.ts); resolves once every request of the socket settled. */
  close(reset: boolean): Promise<void>;
  setNoDelay(on: boolean): void;
  setKeepAlive(on: boolean, initialDelayMs: number): void;
  local(): SocketAddress | null;
  peer(): SocketAddress | null;
  ref(on: boolean): void;
}
