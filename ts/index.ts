// SPDX-License-Identifier: MIT
/**
 * uring-zc: zero-copy networking for Node.js over io_uring, shaped like
 * node:net (and falling back to it where io_uring is blocked).
 *
 * ```ts
 * import { createServer, connect } from 'uring-zc';
 * const server = createServer((socket) => socket.pipe(socket)); // an echo server
 * server.listen(9000);
 * const sock = connect(9000, '127.0.0.1', () => sock.end('hello'));
 * ```
 *
 * The zero-copy fast lane on the same sockets:
 * ```ts
 * const pool = sock.ring!.createPool({ count: 8, size: 65536 }); // registered, pinned once
 * const buf = pool.acquire();
 * buf.bytes.fill(42);
 * const { bytes, zeroCopy } = await sock.send(buf, { mode: 'zc' }); // one completion, buffer free again
 * ```
 */
export { Ring, type RingStats } from './ring.ts';
export { BufferPool, PoolBuffer } from './pool.ts';
export {
  ZcSocket,
  connect,
  createConnection,
  type SocketOptions,
  type SocketConnectOptions,
  type ConnectOptions,
} from './socket/socket.ts';
export { ZcServer, createServer, type ServerOptions, type ServerListenOptions } from './socket/server.ts';
export { ZcDatagram, type DatagramOptions } from './socket/datagram.ts';
export { setDefaultBackend, backendStatus, type BackendPreference } from './socket/backend.ts';
export type { Backend } from './socket/engine.ts';
export type { SendCallback, SendResult } from './socket/types.ts';
export { serve, FileServer, type ServeOptions, type ServeStats } from './serve/server.ts';
export {
  sendFileStats,
  type FileSource,
  type SendFileResult,
  type SendFileHow,
  type SendFileStats,
} from './socket/send-file.ts';
export type { SocketAddress } from './addr.ts';
export {
  AUTO_ZC_THRESHOLD,
  AUTO_ZC_THRESHOLD_UNREGISTERED,
  type RingOptionsInput as RingOptions,
  type BufferPoolOptionsInput as BufferPoolOptions,
  type SendOptionsInput as SendOptions,
  type SendFileOptionsInput as SendFileOptions,
  type SendFileMethod,
  type SendMode,
  type UnifiedMode,
} from './config.ts';
export { ZcError, ZcOwnershipError, ZcConfigError, type ConfigIssue, type ErrnoName } from './errors.ts';
export { probe, type ProbeInfo, type CapName } from './probe.ts';
export { LibraryLoadError, libraryPath } from './ffi/libzc.ts';
export {
  Receiver,
  RecvStream,
  Chunk,
  type ChunkStream,
  type ReceivedChunk,
  type RecvMode,
  type RecvModePreference,
  type ReceiveOptionsInput as ReceiveOptions,
  type ReceiverInfo,
} from './recv.ts';
export type { ChunkHandler } from './recv-handler.ts';
