// SPDX-License-Identifier: MIT
/** Accepting connections with node:net for a {@link ZcServer} on the 'net' backend. */
import net from 'node:net';
import type { SocketAddress } from '../addr.ts';
import type { ListenSpec } from './factories.ts';

/** What the server hears from its acceptor. */
export interface NetAcceptSink {
  connection(s: net.Socket): void;
  error(err: Error): void;
}

export class NetAcceptor {
  readonly #server: net.Server;
  #listening = false;

  constructor(sink: NetAcceptSink) {
    // Half-open and paused: the ZcSocket wrapping each connection decides both.
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => sink.connection(s));
    this.#server.on('error', (e) => {
      if (this.#listening) sink.error(e);
    });
  }

  listen(spec: ListenSpec): Promise<SocketAddress> {
    return new Promise<SocketAddress>((resolve, reject) => {
      const s = this.#server;
      const onError = (e: Error): void => reject(e);
      s.once('error', onError);
      s.listen(
        {
          port: spec.port,
          ...(spec.host !== undefined ? { host: spec.host } : {}),
          backlog: spec.backlog,
          ipv6Only: spec.ipv6Only,
          // honoured by Node >= 22.12; older Node ignores it
          ...(spec.reusePort ? { reusePort: true } : {}),
        },
        () => {
          s.off('error', onError);
          this.#listening = true;
          const a = s.address() as net.AddressInfo;
          resolve({ address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 });
        },
      );
    });
  }

  /** Stop accepting; the listening handle closes at once (connections are the server's to track). */
  close(): Promise<void> {
    this.#listening = false;
    if (this.#server.listening) this.#server.close();
    return Promise.resolve();
  }

  ref(on: boolean): void {
    if (on) this.#server.ref();
    else this.#server.unref();
  }
}
