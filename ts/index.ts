// SPDX-License-Identifier: MIT
/**
 * uring-zc: zero-copy networking for Node.js over io_uring.
 *
 * ```ts
 * import { Ring, ZcSocket } from 'uring-zc';
 * const ring = Ring.create();                       // io_uring + eventfd on Node's loop
 * const pool = ring.createPool({ count: 8, size: 65536 }); // registered, pinned once
 * const sock = await ZcSocket.connect(ring, { host: '127.0.0.1', port: 9000 });
 * const buf = pool.acquire();
 * buf.bytes.fill(42);                               // fill it while it is yours
 * const r = await sock.send(buf, { mode: 'zc' });   // one completion, buffer free again
 * console.log(r.bytes, r.zeroCopy);                 // 65536 'used' | 'copied'
 * buf.release(); await sock.close(); ring.close();
 * ```
 */
export { Ring, REAP_BATCH, type Completion, type RingStats } from './ring.ts';
export { BufferPool, PoolBuffer } from './pool.ts';
export { ZcSocket } from './socket/socket.ts';
export { COALESCE_MAX_SEND } from './socket/coalescer.ts';
export {
  type SendResult,
  type SocketKind,
  type ConnectOptions,
  type ListenOptions,
  type UdpOptions,
  type AdoptOptions,
} from './socket/types.ts';
export { type SocketAddress, encodeSockaddr, decodeSockaddr } from './addr.ts';
export {
  AUTO_ZC_THRESHOLD,
  AUTO_ZC_THRESHOLD_UNREGISTERED,
  RingOptionsSchema,
  BufferPoolOptionsSchema,
  SendOptionsSchema,
  parseRingOptions,
  parseBufferPoolOptions,
  parseSendOptions,
  DEFAULT_SEND_OPTIONS,
  type RingOptions,
  type RingOptionsInput,
  type BufferPoolOptions,
  type BufferPoolOptionsInput,
  type SendOptions,
  type SendOptionsInput,
  type SendMode,
  type UnifiedMode,
} from './config.ts';
export {
  ZcError,
  ZcOwnershipError,
  ZcConfigError,
  errnoName,
  errnoNumber,
  type ConfigIssue,
  type ErrnoName,
  type ZcErrorInit,
} from './errors.ts';
export { probe, type ProbeInfo, type CapName } from './probe.ts';
export { LibraryLoadError, libraryPath } from './ffi/libzc.ts';
export {
  Receiver,
  RecvStream,
  Chunk,
  receive,
  sharedReceiver,
  availableRecvModes,
  ReceiveOptionsSchema,
  parseReceiveOptions,
  RECV_MODES,
  type RecvMode,
  type RecvModePreference,
  type ReceiveOptions,
  type ReceiveOptionsInput,
  type ReceiverInfo,
} from './recv.ts';
