// SPDX-License-Identifier: MIT
/**
 * The veth-drop path of `bench --udp`: where a zero-copy send is really
 * zero-copy on a box without a NIC to spare.  Two network namespaces made
 * for this run (names carry the bench's PID, so parallel runs do not
 * collide): a veth pair between them, the sender in A sends UDP to
 * 198.18.0.2, whose neighbour entry in A is a MAC nobody owns, so B drops
 * every frame before local delivery (PACKET_OTHERHOST).  Nothing is
 * delivered locally, so nothing is copied: REPORT_USAGE says "used".
 *
 *   ip netns add A; ip netns add B
 *   ip link add v0 netns A type veth peer name v1 netns B
 *   ip -n A addr add 198.18.0.1/24 dev v0; ip -n A link set v0 up mtu 65535
 *   ip -n B link set v1 up mtu 65535
 *   ip -n A neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent
 *
 * Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2.  Everything is
 * removed again by {@link VethDrop.remove} (also on SIGINT/SIGTERM).
 */
import { spawnSync } from 'node:child_process';

/** Sender side address (in namespace A) and the dropped destination. */
export const UDP_SRC = '198.18.0.1';
export const UDP_DST = '198.18.0.2';
/** Destination port: nobody listens (nothing is delivered anyway). */
export const UDP_PORT = 9;

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) return { ok: false, err: r.error.message };
  return { ok: r.status === 0, err: (r.stderr || r.stdout || '').trim() };
}

export class VethDrop {
  /** the sender's namespace: run senders with `ip netns exec <a> ...` */
  readonly a: string;
  readonly b: string;
  #removed = false;
  readonly #onSignal = (sig: NodeJS.Signals): void => {
    this.remove();
    process.kill(process.pid, sig);
  };

  private constructor(tag: string) {
    this.a = `uzc-${tag}-a`;
    this.b = `uzc-${tag}-b`;
  }

  /**
   * Make the namespaces and the veth pair.  Throws with the fix when not
   * root or when `ip` fails (and removes what was made).
   */
  static create(tag = `bench${process.pid}`): VethDrop {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error(
        'bench --udp: needs root to create its two network namespaces and veth pair ' +
          '(ip netns add, ip link add): run it as root, e.g. `sudo npx tsx ts/cli/main.ts bench --udp`',
      );
    }
    const n = new VethDrop(tag);
    const steps: string[][] = [
      ['netns', 'add', n.a],
      ['netns', 'add', n.b],
      ['link', 'add', 'v0', 'netns', n.a, 'type', 'veth', 'peer', 'name', 'v1', 'netns', n.b],
      ['-n', n.a, 'addr', 'add', `${UDP_SRC}/24`, 'dev', 'v0'],
      ['-n', n.a, 'link', 'set', 'lo', 'up'],
      ['-n', n.a, 'link', 'set', 'v0', 'up', 'mtu', '65535'],
      ['-n', n.b, 'link', 'set', 'v1', 'up', 'mtu', '65535'],
      ['-n', n.a, 'neigh', 'add', UDP_DST, 'lladdr', '02:00:00:00:00:02', 'dev', 'v0', 'nud', 'permanent'],
    ];
    process.once('SIGINT', n.#onSignal);
    process.once('SIGTERM', n.#onSignal);
    for (const s of steps) {
      const r = ip(s);
      if (!r.ok) {
        n.remove();
        throw new Error(`bench --udp: \`ip ${s.join(' ')}\` failed: ${r.err || 'no output'} (is iproute2 installed, are we root?)`);
      }
    }
    return n;
  }

  /** argv prefix that runs a command in the sender's namespace */
  exec(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.a, ...argv];
  }

  /** Delete both namespaces (the veth pair goes with them).  Idempotent. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    process.removeListener('SIGINT', this.#onSignal);
    process.removeListener('SIGTERM', this.#onSignal);
    ip(['netns', 'del', this.a]);
    ip(['netns', 'del', this.b]);
  }
}
