// SPDX-License-Identifier: MIT
/** Public shapes of {@link ZcSocket}: send results, kinds and factory options. */
import type { SendOptionsInput } from '../config.ts';

/** What a settled send reports. */
export interface SendResult {
  /** bytes sent (the whole length: short sends are completed by libzc) */
  bytes: number;
  /** 'used': sent without a copy; 'copied': the kernel (or plain send) copied; 'unknown': not reported */
  zeroCopy: 'used' | 'copied' | 'unknown';
}

/** Kind of socket. */
export type SocketKind = 'stream' | 'listener' | 'dgram';

/** ZcSocket.connect() options. */
export interface ConnectOptions {
  /** IP literal or host name (resolved with dns.lookup) */
  host: string;
  port: number;
  /**
   * TCP_NODELAY (default false, like Node's net).  With Nagle off, a
   * 65536-byte send on loopback leaves as a full MSS segment plus a tiny
   * runt, each a separate zero-copy skb: measured about half the 64 KiB
   * zero-copy throughput.  Turn it on for latency-sensitive small messages.
   */
  noDelay?: boolean;
  /** defaults for every send on this socket */
  sendOptions?: SendOptionsInput;
}

/** ZcSocket.listen() options. */
export interface ListenOptions {
  /** default '127.0.0.1' */
  host?: string;
  /** default 0 (any free port; see localAddress()) */
  port?: number;
  /** default 511 */
  backlog?: number;
  /** defaults for every send on accepted sockets */
  sendOptions?: SendOptionsInput;
}

/** ZcSocket.udp() options. */
export interface UdpOptions {
  /** bind address (default: '0.0.0.0' or '::' by family); bind only if host or port given */
  host?: string;
  port?: number;
  /** default 4, or 6 when host is an IPv6 literal */
  family?: 4 | 6;
  /** connect to this peer (then send() works without an address) */
  connect?: { host: string; port: number };
  sendOptions?: SendOptionsInput;
}

/** ZcSocket.adopt() options. */
export interface AdoptOptions {
  /** default: looked up with getsockopt(SO_TYPE) */
  kind?: SocketKind;
  /** close the fd when the socket closes (default true) */
  owned?: boolean;
  sendOptions?: SendOptionsInput;
}
