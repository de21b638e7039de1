// SPDX-License-Identifier: MIT
/**
 * What to answer for a file: validators (ETag, Last-Modified),
 * conditional requests (304), byte ranges (206 / 416; several ranges are
 * answered with the whole file, 200, as RFC 9110 allows), Content-Type by
 * extension, and the header block.
 */
import { extname } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.pdf': 'application/pdf',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.wav': 'audio/wav',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.iso': 'application/x-iso9660-image',
};

/** Content-Type of a file name (application/octet-stream when unknown). */
export function contentType(name: string): string {
  return TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/** Strong validator from size and mtime (as nginx: hex mtime seconds, hex size). */
export function etagOf(size: bigint, mtimeMs: bigint): string {
  return `"${(mtimeMs / 1000n).toString(16)}-${size.toString(16)}"`;
}

/** An HTTP-date, cached per second. */
let dateSec = -1;
let dateStr = '';
export function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSec) {
    dateSec = s;
    dateStr = new Date(s * 1000).toUTCString();
  }
  return dateStr;
}

const opaque = (t: string): string => t.trim().replace(/^W\//, '');

/** If-None-Match: does any listed entity-tag match (weak comparison)? */
export function noneMatchHits(header: string, etag: string): boolean {
  const mine = opaque(etag);
  for (const t of header.split(',')) {
    const x = t.trim();
    if (x === '*' || opaque(x) === mine) return true;
  }
  return false;
}

/** HTTP-date to seconds, or null when not a date. */
export function parseHttpDate(v: string): number | null {
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

export type RangeAnswer =
  | { kind: 'full' }
  | { kind: 'partial'; start: bigint; end: bigint } // end inclusive
  | { kind: 'unsatisfiable' };

const DIGITS = /^\d{1,19}$/;

/**
 * The Range header against a file of `size` bytes.  Malformed or several
 * ranges: the whole file.  A single range: partial, or unsatisfiable when
 * it starts past the end (or asks for a suffix of an empty file).
 */
export function evalRange(header: string, size: bigint): RangeAnswer {
  const m = /^bytes=(.*)$/i.exec(header.trim());
  if (!m) return { kind: 'full' };
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'full' };
  const spec = specs[0]!;
  const dash = spec.indexOf('-');
  if (dash < 0) return { kind: 'full' };
  const a = spec.slice(0, dash);
  const b = spec.slice(dash + 1);
  if (a === '') {
    if (!DIGITS.test(b)) return { kind: 'full' };
    const n = BigInt(b);
    if (n === 0n || size === 0n) return { kind: 'unsatisfiable' };
    const start = n >= size ? 0n : size - n;
    return { kind: 'partial', start, end: size - 1n };
  }
  if (!DIGITS.test(a) || (b !== '' && !DIGITS.test(b))) return { kind: 'full' };
  const start = BigInt(a);
  let end = b === '' ? size - 1n : BigInt(b);
  if (b !== '' && end < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  if (end >= size) end = size - 1n;
  return { kind: 'partial', start, end };
}

/** If-Range: true when the range may be served (the validator still matches). */
export function ifRangeHolds(v: string, etag: string, mtimeSec: number): boolean {
  const x = v.trim();
  if (x.startsWith('"')) return x === etag; // strong comparison
  if (x.startsWith('W/')) return false;
  const d = parseHttpDate(x);
  return d !== null && d === mtimeSec;
}

export const REASONS: Record<number, string> = {
  200: 'OK',
  206: 'Partial Content',
  304: 'Not Modified',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  416: 'Range Not Satisfiable',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/** A header block: status line, the given fields, Date/Server/Connection, blank line. */
export function head(status: number, fields: [string, string | number | bigint][], keepAlive: boolean): Buffer {
  let s = `HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\nServer: uring-zc\r\nDate: ${httpDate()}\r\n`;
  for (const [k, v] of fields) s += `${k}: ${v}\r\n`;
  s += keepAlive ? 'Connection: keep-alive\r\n\r\n' : 'Connection: close\r\n\r\n';
  return Buffer.from(s, 'latin1');
}

/** A complete small error response (text/plain body, except for HEAD). */
export function errorResponse(status: number, keepAlive: boolean, headOnly: boolean, extra: [string, string][] = []): Buffer {
  const body = `${status} ${REASONS[status] ?? ''}\n`;
  const h = head(status, [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', body.length], ...extra], keepAlive);
  return headOnly ? h : Buffer.concat([h, Buffer.from(body, 'latin1')]);
}
