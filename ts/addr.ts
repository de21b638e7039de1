// SPDX-License-Identifier: MIT
/** sockaddr encoding/decoding (IPv4, IPv6) from the generated layouts. */
import { isIP } from 'node:net';
import { LAYOUT, SYS } from './ffi/abi.gen.ts';
import { loadNative } from './ffi/libzc.ts';
import { ZcConfigError } from './errors.ts';

/** An IP address and port. */
export interface SocketAddress {
  /** IPv4 or IPv6 literal */
  address: string;
  port: number;
  family: 4 | 6;
}

const IN = LAYOUT.sockaddr_in;
const IN6 = LAYOUT.sockaddr_in6;

function checkPort(port: unknown, what: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ZcConfigError(what, [{ field: 'port', value: port, allowed: 'an integer in 0..65535' }]);
  }
  return port;
}

function parseV6(address: string): Uint8Array {
  let a = address;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  // Embedded IPv4 tail (::ffff:1.2.3.4)
  let tail: number[] = [];
  const lastColon = a.lastIndexOf(':');
  if (a.slice(lastColon + 1).includes('.')) {
    tail = a
      .slice(lastColon + 1)
      .split('.')
      .map((x) => Number(x));
    a = `${a.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = a.includes('::') ? (a.split('::') as [string, string]) : [a, undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...new Array<string>(8 - h.length - r.length).fill('0'), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/**
 * The scope id of an IPv6 literal's zone (`fe80::1%eth0`, `fe80::1%2`): the
 * interface index; 0 without a zone.  Throws ZcConfigError for an unknown
 * interface.
 */
function scopeId(address: string, what: string): number {
  const at = address.indexOf('%');
  if (at < 0) return 0;
  const zone = address.slice(at + 1);
  if (/^\d+$/.test(zone)) return Number(zone);
  const index = zone === '' ? 0 : loadNative().c.ifNameToIndex(zone);
  if (index === 0) {
    throw new ZcConfigError(what, [
      { field: 'address', value: address, allowed: `an IPv6 zone naming a network interface (no interface "${zone}")` },
    ]);
  }
  return index;
}

/**
 * Encode address:port as a struct sockaddr_in / sockaddr_in6.
 * `address` must be an IP literal; an IPv6 zone (`%eth0`) sets the scope id.
 */
export function encodeSockaddr(address: string, port: number, what = 'SocketAddress'): Buffer {
  checkPort(port, what);
  const fam = isIP(address);
  if (fam === 4) {
    const b = Buffer.alloc(IN.size);
    b.writeUInt16LE(SYS.AF_INET, IN.fields.sin_family.offset);
    b.writeUInt16BE(port, IN.fields.sin_port.offset);
    const parts = address.split('.').map((x) => Number(x));
    b.set(parts, IN.fields.sin_addr.offset);
    return b;
  }
  if (fam === 6) {
    const b = Buffer.alloc(IN6.size);
    b.writeUInt16LE(SYS.AF_INET6, IN6.fields.sin6_family.offset);
    b.writeUInt16BE(port, IN6.fields.sin6_port.offset);
    b.set(parseV6(address), IN6.fields.sin6_addr.offset);
    b.writeUInt32LE(scopeId(address, what), IN6.fields.sin6_scope_id.offset);
    return b;
  }
  throw new ZcConfigError(what, [{ field: 'address', value: address, allowed: 'an IPv4 or IPv6 address literal' }]);
}

/**
 * Whether an encoded sockaddr names a loopback address: 127.0.0.0/8, ::1
 * or ::ffff:127.x.x.x.  Cheap enough for every send.
 */
export function isLoopbackSockaddr(b: Uint8Array): boolean {
  const fam = b[0]! | (b[1]! << 8);
  if (fam === SYS.AF_INET) return b[IN.fields.sin_addr.offset] === 127;
  if (fam !== SYS.AF_INET6) return false;
  const o = IN6.fields.sin6_addr.offset;
  for (let i = 0; i < 10; i++) if (b[o + i] !== 0) return false;
  if (b[o + 10] === 0xff && b[o + 11] === 0xff) return b[o + 12] === 127;
  if (b[o + 10] !== 0 || b[o + 11] !== 0) return false;
  return b[o + 12] === 0 && b[o + 13] === 0 && b[o + 14] === 0 && b[o + 15] === 1;
}

/** Decode a struct sockaddr_in / sockaddr_in6 (null for other families). */
export function decodeSockaddr(b: Uint8Array): SocketAddress | null {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const fam = buf.readUInt16LE(0);
  if (fam === SYS.AF_INET) {
    const o = IN.fields.sin_addr.offset;
    return {
      address: `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`,
      port: buf.readUInt16BE(IN.fields.sin_port.offset),
      family: 4,
    };
  }
  if (fam === SYS.AF_INET6) {
    const o = IN6.fields.sin6_addr.offset;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(o + i * 2).toString(16));
    const port = buf.readUInt16BE(IN6.fields.sin6_port.offset);
    // An IPv4 peer of a dual-stack socket, written as Node writes it.
    if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
      const v4 = `${buf[o + 12]}.${buf[o + 13]}.${buf[o + 14]}.${buf[o + 15]}`;
      return { address: `::ffff:${v4}`, port, family: 6 };
    }
    // Compress the longest zero run.
    let best = -1;
    let bestLen = 0;
    for (let i = 0; i < 8; ) {
      if (groups[i] !== '0') {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && groups[j] === '0') j++;
      if (j - i > bestLen) {
        best = i;
        bestLen = j - i;
      }
      i = j;
    }
    const text =
      bestLen > 1
        ? `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
        : groups.join(':');
    return { address: text, port, family: 6 };
  }
  return null;
}

/** Domain (AF_INET/AF_INET6) of an IP literal. */
export function domainOf(address: string): number {
  return isIP(address) === 6 ? SYS.AF_INET6 : SYS.AF_INET;
}
