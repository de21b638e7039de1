// SPDX-License-Identifier: MIT
/**
 * libzc's structs as bytes, laid out by the generated {@link LAYOUT}
 * (abi.gen.ts, from libzc.h: the one source of truth).
 *
 * Every libzc call with a struct argument takes it as a `void *` to a
 * Uint8Array encoded here (and an out struct is decoded from one), not as
 * a koffi struct: koffi marshals a struct argument by reading the JS
 * object's properties (and an out struct by building one), and when a
 * worker's terminate() lands in the middle of that (receive()'s
 * zc_rx_create, in a loop) the property access fails, koffi throws, and
 * Node-API turns the throw under termination into a fatal error: the whole
 * process aborts (koffi 2.16).  A typed array is handed over as its
 * address, with no JavaScript run inside the call.
 */
import { LAYOUT } from './abi.gen.ts';

interface Field {
  readonly offset: number;
  readonly size: number;
  readonly signed?: boolean;
  readonly string?: boolean;
}
interface Layout {
  readonly size: number;
  readonly fields: Readonly<Record<string, Field>>;
}

export type StructName = keyof typeof LAYOUT;
/** A struct's fields by name; missing ones are zero. */
export type StructValues<N extends StructName> = Partial<Record<keyof (typeof LAYOUT)[N]['fields'], number | bigint | string>>;
/** A decoded struct: integers as numbers (64-bit ones as bigints past 2^53), char arrays as strings. */
export type StructDecoded<N extends StructName> = Record<keyof (typeof LAYOUT)[N]['fields'], number | bigint | string>;

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** A zeroed buffer of struct `name`'s size. */
export function structBuffer(name: StructName): Uint8Array {
  return new Uint8Array((LAYOUT[name] as Layout).size);
}

/** Encode `values` as struct `name` (little-endian, as both targets are). */
export function encodeStruct<N extends StructName>(name: N, values: StructValues<N>): Uint8Array {
  const l = LAYOUT[name] as Layout;
  const b = new Uint8Array(l.size);
  const v = new DataView(b.buffer);
  for (const [k, x] of Object.entries(values) as [string, number | bigint | string | undefined][]) {
    if (x === undefined) continue;
    const f = l.fields[k];
    if (!f) throw new TypeError(`struct ${name} has no field ${k}`);
    if (f.string) {
      const s = utf8.encode(String(x));
      if (s.length >= f.size) throw new RangeError(`struct ${name}.${k}: ${s.length} bytes, at most ${f.size - 1}`);
      b.set(s, f.offset);
      continue;
    }
    const n = typeof x === 'bigint' ? x : BigInt(x as number);
    switch (f.size) {
      case 1:
        v.setUint8(f.offset, Number(BigInt.asUintN(8, n)));
        break;
      case 2:
        v.setUint16(f.offset, Number(BigInt.asUintN(16, n)), true);
        break;
      case 4:
        v.setUint32(f.offset, Number(BigInt.asUintN(32, n)), true);
        break;
      case 8:
        v.setBigUint64(f.offset, BigInt.asUintN(64, n), true);
        break;
      default:
        // arrays other than strings (reserved words): zero only
        if (n !== 0n) throw new TypeError(`struct ${name}.${k} is an array: only 0 can be written`);
    }
  }
  return b;
}

/** Decode struct `name` from `b` (arrays other than char arrays are left out). */
export function decodeStruct<N extends StructName>(name: N, b: Uint8Array): StructDecoded<N> {
  const l = LAYOUT[name] as Layout;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Record<string, number | bigint | string> = {};
  for (const [k, f] of Object.entries(l.fields)) {
    if (f.string) {
      const bytes = b.subarray(f.offset, f.offset + f.size);
      const end = bytes.indexOf(0);
      out[k] = utf8d.decode(end < 0 ? bytes : bytes.subarray(0, end));
      continue;
    }
    switch (f.size) {
      case 1:
        out[k] = f.signed ? v.getInt8(f.offset) : v.getUint8(f.offset);
        break;
      case 2:
        out[k] = f.signed ? v.getInt16(f.offset, true) : v.getUint16(f.offset, true);
        break;
      case 4:
        out[k] = f.signed ? v.getInt32(f.offset, true) : v.getUint32(f.offset, true);
        break;
      case 8: {
        const n = f.signed ? v.getBigInt64(f.offset, true) : v.getBigUint64(f.offset, true);
        out[k] = n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n;
        break;
      }
      default:
        break;
    }
  }
  return out as StructDecoded<N>;
}
