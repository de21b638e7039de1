// SPDX-License-Identifier: MIT
/** Addresses of JS memory for iovecs handed to the kernel. */
import { LAYOUT } from '../ffi/abi.gen.ts';
import type { Ring } from '../ring.ts';

/**
 * Address of a Uint8Array's first byte.  Backing stores of ArrayBuffers do
 * not move once native code has seen them, so the base is cached per buffer.
 */
const bases = new WeakMap<ArrayBufferLike, bigint>();
export function addressOf(ring: Ring, v: Uint8Array): bigint {
  const ab = v.buffer;
  let base = bases.get(ab);
  if (base === undefined) {
    if (v.byteLength === 0) return 0n;
    base = ring.libc.addressOf(v) - BigInt(v.byteOffset);
    bases.set(ab, base);
  }
  return base + BigInt(v.byteOffset);
}

/**
 * The same address as a number (user-space addresses are below 2^47, so
 * exact): no BigInt per send.
 */
const numBases = new WeakMap<ArrayBufferLike, number>();
export function addressNumber(ring: Ring, v: Uint8Array): number {
  const ab = v.buffer;
  let base = numBases.get(ab);
  if (base === undefined) {
    if (v.byteLength === 0) return 0;
    base = Number(addressOf(ring, v)) - v.byteOffset;
    numBases.set(ab, base);
  }
  return base + v.byteOffset;
}

/** One struct iovec. */
export function iovecFor(addr: bigint, len: number): Buffer {
  const b = Buffer.alloc(LAYOUT.iovec.size);
  b.writeBigUInt64LE(addr, LAYOUT.iovec.fields.iov_base.offset);
  b.writeBigUInt64LE(BigInt(len), LAYOUT.iovec.fields.iov_len.offset);
  return b;
}
