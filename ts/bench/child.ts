// SPDX-License-Identifier: MIT
/**
 * Entry point of the bench's child processes (bundled by build.ts into
 * libzc/build/bench/child.mjs):
 *
 *   node child.mjs udp-sender          bench --udp sender (runs in the veth-drop namespace)
 *   node child.mjs rr-server MODE ...  bench --rr echo server
 *   node child.mjs rr-client MODE ...  bench --rr client
 *   node child.mjs file-server KIND ROOT   bench --file server (node | uring-zc)
 */
import { udpSenderMain } from './udp-sender.ts';
import { rrPeerMain } from './rr-peer.ts';
import { fileServerMain } from './file-server.ts';

const [role, ...args] = process.argv.slice(2);
try {
  if (role === 'udp-sender') await udpSenderMain();
  else if (role === 'rr-server' || role === 'rr-client') await rrPeerMain(role, args);
  else if (role === 'file-server') await fileServerMain(args[0] ?? '', args[1] ?? '.');
  else throw new Error(`bench child: unknown role ${JSON.stringify(role)}`);
} catch (e) {
  process.stderr.write(`bench child ${role}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
}
