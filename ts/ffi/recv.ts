// SPDX-License-Identifier: MIT
/**
 * koffi declarations of libzc's receive section (libzc.h, "receive").
 * Declarations only; the API is ts/recv.ts.
 */
import koffi from 'koffi';
import type { NativePointer } from './libzc.ts';
import { openLibrary } from './load.ts';

/** koffi types mirroring the C structs; the receive ABI test compares them with abi.gen.ts. */
export const recvTypes = {
  zc_rx_config: koffi.struct('zc_rx_config', {
    mode: 'uint32_t',
    buf_size: 'uint32_t',
    area_size: 'uint64_t',
    ring_entries: 'uint32_t',
    rxq: 'uint32_t',
    ifname: koffi.array('char', 16, 'String'),
    recv_quota: 'uint32_t',
    reserved: koffi.array('uint32_t', 3),
  }),
  zc_rx_info: koffi.struct('zc_rx_info', {
    mode: 'uint32_t',
    buf_size: 'uint32_t',
    buf_count: 'uint32_t',
    ring_entries: 'uint32_t',
    area_size: 'uint64_t',
    zcrx_errno: 'int32_t',
    zcrx_id: 'uint32_t',
    bgid: 'int32_t',
    held: 'uint32_t',
    active: 'uint32_t',
    paused: 'uint32_t',
    bytes: 'uint64_t',
    chunks: 'uint64_t',
    rearms: 'uint64_t',
    flushes: 'uint64_t',
    quota: 'uint32_t',
    reserved: 'uint32_t',
    pauses: 'uint64_t',
  }),
  zc_rx: koffi.opaque('zc_rx'),
};

/** JS shape of struct zc_rx_config. */
export interface RxConfigStruct {
  mode: number;
  buf_size: number;
  area_size: number | bigint;
  ring_entries: number;
  rxq: number;
  ifname: string;
  recv_quota: number;
  reserved: [number, number, number];
}

/** JS shape of struct zc_rx_info as koffi decodes it. */
export interface RxInfoStruct {
  mode: number;
  buf_size: number;
  buf_count: number;
  ring_entries: number;
  area_size: number | bigint;
  zcrx_errno: number;
  zcrx_id: number;
  bgid: number;
  held: number;
  active: number;
  paused: number;
  bytes: number | bigint;
  chunks: number | bigint;
  rearms: number | bigint;
  flushes: number | bigint;
  quota: number;
  reserved: number;
  pauses: number | bigint;
}

/** Typed view of the receive functions (contracts in libzc.h). */
export interface LibZcRecv {
  /** cfg: struct zc_rx_config as bytes (structs.ts encodeStruct: no koffi struct, see there) */
  zc_rx_create(r: NativePointer, cfg: Uint8Array, out: BigUint64Array): number;
  zc_rx_destroy(rx: NativePointer): number;
  /** the area's address (0: none) */
  zc_rx_base(rx: NativePointer): number | bigint;
  /** out: struct zc_rx_info as bytes (structs.ts decodeStruct) */
  zc_rx_info(rx: NativePointer, out: Uint8Array): number;
  zc_recv(r: NativePointer, rx: NativePointer, fd: number, userData: number): number;
  zc_recv_cancel(r: NativePointer, fd: number): number;
  /** offs: BigUint64Array of chunk offsets (the records' aux) */
  zc_rx_release_many(rx: NativePointer, offs: BigUint64Array, n: number): number;
  zc_rx_release(rx: NativePointer, off: number | bigint): number;
  zc_rx_flush(rx: NativePointer): number;
}

let cached: LibZcRecv | undefined;

type KoffiFn = (...args: unknown[]) => unknown;

/** Load the receive functions of libzc (the handle load.ts opened once). */
export function loadRecv(): LibZcRecv {
  if (cached) return cached;
  const { lib } = openLibrary();
  const fn = (decl: string): KoffiFn => lib.func(decl) as KoffiFn;
  cached = {
    zc_rx_create: fn('int zc_rx_create(zc_ring *r, const void *cfg, void *out)'),
    zc_rx_destroy: fn('int zc_rx_destroy(zc_rx *rx)'),
    zc_rx_base: fn('uintptr_t zc_rx_base(const zc_rx *rx)'),
    zc_rx_info: fn('int zc_rx_info(const zc_rx *rx, void *out)'),
    zc_recv: fn('int zc_recv(zc_ring *r, zc_rx *rx, int fd, uint64_t user_data)'),
    zc_recv_cancel: fn('int zc_recv_cancel(zc_ring *r, int fd)'),
    zc_rx_release_many: fn('int zc_rx_release_many(zc_rx *rx, const uint64_t *offs, uint32_t n)'),
    zc_rx_release: fn('int zc_rx_release(zc_rx *rx, uint64_t off)'),
    zc_rx_flush: fn('int zc_rx_flush(zc_rx *rx)'),
  } as unknown as LibZcRecv;
  return cached;
}

/** koffi's own layout of a receive struct, for the ABI test. */
export function recvLayout(t: 'zc_rx_config' | 'zc_rx_info'): { size: number; align: number; offsets: Record<string, number> } {
  const type = recvTypes[t];
  const info = koffi.introspect(type) as { members?: Record<string, { offset: number }> };
  const offsets: Record<string, number> = {};
  for (const [name, m] of Object.entries(info.members ?? {})) offsets[name] = m.offset;
  return { size: koffi.sizeof(type), align: koffi.alignof(type), offsets };
}
