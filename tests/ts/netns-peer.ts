// SPDX-License-Identifier: MIT
/**
 * A TCP peer that is NOT on this host as far as the sending socket can
 * tell: a network namespace made for the test, joined to ours by a veth
 * pair, with a byte-counting listener (a plain Node process) inside it.
 * Its address is neither loopback nor one of ours, so 'auto' may pick
 * zero-copy towards it (on loopback it never does).
 *
 *   ip netns add NS
 *   ip link add HOSTIF type veth peer name PEERIF netns NS
 *   ip addr add 198.19.A.B/30 dev HOSTIF; ip link set HOSTIF up
 *   ip -n NS addr add 198.19.A.B+1/30 dev PEERIF; ip -n NS link set PEERIF up
 *
 * Needs root and iproute2; {@link NetnsPeer.start} says why not otherwise
 * (the caller skips with that reason).  Names and the /30 carry the PID,
 * so parallel test runs (Node 20 and 24 suites at once) do not collide.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

function ip(args: string[]): string | null {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : (r.stderr || r.stdout || `exit ${r.status}`).trim();
}

// Listens on every address of the namespace, prints "port N", then
// "bytes N" for each connection when it ends.
const LISTENER = `
const net = require('node:net');
const srv = net.createServer((s) => {
  let n = 0;
  s.on('data', (d) => { n += d.length; });
  s.on('error', () => {});
  s.on('close', () => process.stdout.write('bytes ' + n + '\\n'));
});
srv.listen(0, '0.0.0.0', () => process.stdout.write('port ' + srv.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

export class NetnsPeer {
  readonly ns: string;
  readonly hostIf: string;
  /** the peer's address (in its namespace) */
  readonly address: string;
  port = 0;
  #child: ChildProcess | null = null;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];

  private constructor(tag: number) {
    this.ns = `uzc-t${tag}`;
    this.hostIf = `uzt${tag}a`;
    const q = (tag % 16384) * 4; // a /30 of 198.19.0.0/16 per PID
    this.address = `198.19.${q >> 8}.${(q & 255) + 2}`;
  }

  /** The peer, or a string saying why it cannot be made here. */
  static async start(): Promise<NetnsPeer | string> {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (ip netns add)';
    const p = new NetnsPeer(process.pid);
    const q = (process.pid % 16384) * 4;
    const hostAddr = `198.19.${q >> 8}.${(q & 255) + 1}`;
    const steps = [
      ['netns', 'add', p.ns],
      ['link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns],
      ['addr', 'add', `${hostAddr}/30`, 'dev', p.hostIf],
      ['link', 'set', p.hostIf, 'up'],
      ['-n', p.ns, 'addr', 'add', `${p.address}/30`, 'dev', 'eth0'],
      ['-n', p.ns, 'link', 'set', 'eth0', 'up'],
      ['-n', p.ns, 'link', 'set', 'lo', 'up'],
    ];
    for (const s of steps) {
      const err = ip(s);
      if (err !== null) {
        p.remove();
        return `\`ip ${s.join(' ')}\` failed: ${err}`;
      }
    }
    const child = spawn('ip', ['netns', 'exec', p.ns, process.execPath, '-e', LISTENER], { stdio: ['pipe', 'pipe', 'inherit'] });
    p.#child = child;
    createInterface({ input: child.stdout! }).on('line', (l) => {
      p.#lines.push(l);
      for (const w of p.#waiters.splice(0)) w();
    });
    const port = await p.#next('port ');
    if (port === null) {
      p.remove();
      return 'the listener in the namespace did not start';
    }
    p.port = Number(port);
    return p;
  }

  /** The next line starting with `prefix` (its rest), or null when the listener exited. */
  async #next(prefix: string): Promise<string | null> {
    for (;;) {
      const i = this.#lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return this.#lines.splice(i, 1)[0]!.slice(prefix.length);
      if (!this.#child || this.#child.exitCode !== null) return null;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        this.#child!.once('exit', () => r());
      });
    }
  }

  /** Bytes the peer read on a connection that ended (in the order they ended). */
  async bytesOfClosedConnection(): Promise<number> {
    const n = await this.#next('bytes ');
    if (n === null) throw new Error('the listener in the namespace exited');
    return Number(n);
  }

  /** Stop the listener and delete the namespace (the veth pair goes with it). */
  remove(): void {
    this.#child?.stdin?.end();
    this.#child?.kill();
    this.#child = null;
    ip(['netns', 'del', this.ns]);
  }
}
