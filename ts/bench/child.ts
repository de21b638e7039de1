// SPDX-License-Identifier: MIT
/**
 * Entry point of the bench's child processes (bundled by build.ts into
 * libzc/build/bench/child.mjs):
 *
 *   node child.mjs udp-sender          bench --udp sender (runs in the veth-drop namespace)
 *   node child.mjs rr-server MODE ...  bench --rr echo server
 *   node child.mjs rr-client MODE ...  bench --rr client
 */
import { udpSenderMain } from './udp-sender.ts';
import { rrPeerMain } from './rr-peer.ts';

const [role, ...args] = process.argv.slice(2);
try {
  if (role === 'udp-sender') await udpSenderMain();
  else if (role === 'rr-server' || role === 'rr-client') await rrPeerMain(role, args);
  else throw new Error(`bench child: unknown role ${JSON.stringify(role)}`);
} catch (e) {
  process.stderr.write(`bench child ${role}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
}
