// SPDX-License-Identifier: MIT
/**
 * The head of one HTTP/1.x request, parsed strictly from a connection's
 * buffered bytes: request line, header fields, limits.  Anything a
 * well-behaved client does not send is refused with the status a client
 * can act on (RFC 9112): 400 malformed, 414 request target too long, 431
 * header section too large or too many fields, 505 other versions.
 * Bodies are not accepted: a request announcing one is refused (413,
 * 501) and the connection closed, since its bytes are not read.
 */

/** Longest request line (method, target, version). */
export const MAX_REQUEST_LINE = 8192;
/** Longest header section (request line included). */
export const MAX_HEAD = 16384;
/** Most header fields in one request. */
export const MAX_HEADERS = 100;

export interface RequestHead {
  method: string;
  /** the request target as sent */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minor: 0 | 1;
  /** field names lower-cased; repeated fields joined with ", " */
  headers: Map<string, string>;
  /** bytes of the buffer this head used */
  consumed: number;
}

export type ParseResult =
  | { kind: 'more' }
  | { kind: 'error'; status: number; reason: string }
  | ({ kind: 'request' } & RequestHead);

// tchar (RFC 9110 5.6.2)
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

const fail = (status: number, reason: string): ParseResult => ({ kind: 'error', status, reason });

/** End of the line starting at `from` (index of LF), or -1. */
function lineEnd(buf: Buffer, from: number, limit: number): number {
  const i = buf.indexOf(0x0a, from);
  return i < 0 || i >= limit ? -1 : i;
}

function parseRequestLine(line: Buffer): ParseResult | { method: string; target: string; minor: 0 | 1 } {
  const sp1 = line.indexOf(0x20);
  const sp2 = sp1 < 0 ? -1 : line.indexOf(0x20, sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || line.indexOf(0x20, sp2 + 1) >= 0) return fail(400, 'malformed request line');
  for (let i = 0; i < sp1; i++) if (!TCHAR[line[i]!]) return fail(400, 'bad method');
  if (sp2 - sp1 - 1 < 1) return fail(400, 'empty request target');
  for (let i = sp1 + 1; i < sp2; i++) {
    const c = line[i]!;
    // visible ASCII only: no controls (NUL...), no spaces, no raw 8-bit bytes
    if (c < 0x21 || c > 0x7e) return fail(400, 'bad byte in the request target');
  }
  const version = line.toString('latin1', sp2 + 1);
  let minor: 0 | 1;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version)) return fail(505, 'HTTP version not supported');
  else return fail(400, 'malformed HTTP version');
  return { method: line.toString('latin1', 0, sp1), target: line.toString('latin1', sp1 + 1, sp2), minor };
}

/**
 * Parse one request head at the start of `buf`.  'more': incomplete but
 * within limits (read more); 'error': refuse with that status and close.
 */
export function parseRequest(buf: Buffer): ParseResult {
  // Empty lines before a request line are allowed (RFC 9112 2.2).
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) {
    if (buf[start] === 0x0d && buf[start + 1] !== 0x0a && start + 1 < buf.length) return fail(400, 'bare CR');
    start++;
  }
  const limit = Math.min(buf.length, start + MAX_HEAD);
  const le = lineEnd(buf, start, limit);
  if (le < 0) {
    if (buf.length - start > MAX_REQUEST_LINE) {
      // no end of line within the limit: tell a long target from junk
      const sp = buf.indexOf(0x20, start);
      return sp >= 0 && sp < start + MAX_REQUEST_LINE ? fail(414, 'request target too long') : fail(400, 'request line too long');
    }
    return { kind: 'more' };
  }
  const lineStop = le > start && buf[le - 1] === 0x0d ? le - 1 : le;
  if (lineStop - start > MAX_REQUEST_LINE) return fail(414, 'request target too long');
  const rl = parseRequestLine(buf.subarray(start, lineStop));
  if ('kind' in rl) return rl;

  const headers = new Map<string, string>();
  let count = 0;
  let pos = le + 1;
  for (;;) {
    const e = lineEnd(buf, pos, limit);
    if (e < 0) {
      return buf.length >= start + MAX_HEAD ? fail(431, 'header section too large') : { kind: 'more' };
    }
    const stop = e > pos && buf[e - 1] === 0x0d ? e - 1 : e;
    if (stop === pos) {
      pos = e + 1; // the empty line: end of the head
      break;
    }
    if (++count > MAX_HEADERS) return fail(431, 'too many header fields');
    const first = buf[pos]!;
    if (first === 0x20 || first === 0x09) return fail(400, 'obsolete line folding');
    const colon = buf.indexOf(0x3a, pos);
    if (colon < 0 || colon >= stop || colon === pos) return fail(400, 'malformed header field');
    for (let i = pos; i < colon; i++) if (!TCHAR[buf[i]!]) return fail(400, 'bad header field name');
    let vs = colon + 1;
    let ve = stop;
    while (vs < ve && (buf[vs] === 0x20 || buf[vs] === 0x09)) vs++;
    while (ve > vs && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
    for (let i = vs; i < ve; i++) {
      const c = buf[i]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return fail(400, 'control byte in a header value');
    }
    const name = buf.toString('latin1', pos, colon).toLowerCase();
    const value = buf.toString('latin1', vs, ve);
    const prev = headers.get(name);
    if (prev !== undefined) {
      if (name === 'host' || name === 'content-length') return fail(400, `repeated ${name}`);
      headers.set(name, `${prev}, ${value}`);
    } else {
      headers.set(name, value);
    }
    pos = e + 1;
  }
  if (rl.minor === 1 && !headers.has('host')) return fail(400, 'HTTP/1.1 request without Host');
  if (headers.has('transfer-encoding')) return fail(501, 'request bodies are not accepted (Transfer-Encoding)');
  const cl = headers.get('content-length');
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) return fail(400, 'bad Content-Length');
    if (Number(cl) > 0) return fail(413, 'request bodies are not accepted');
  }
  return { kind: 'request', method: rl.method, target: rl.target, minor: rl.minor, headers, consumed: pos };
}
