// SPDX-License-Identifier: MIT
/**
 * `uring-zc probe`: what this kernel, liburing and process can do.
 *
 * Output is built from sections.  Each section contributes named fields
 * to the human listing and one key of the JSON object.  Extension point:
 * other parts of the project (e.g. the receive path, which will report its
 * receive modes) add a section with registerProbeSection() from their own
 * module and import that module below, next to the built-in ones; nothing
 * else here needs to change.
 */
import { CAPS } from '../ffi/abi.gen.ts';
import { loadNative, type ProbeStruct } from '../ffi/libzc.ts';

export interface ProbeField {
  /** label in the human listing */
  label: string;
  /** key in this section's JSON object */
  key: string;
  value: string | number | boolean | null;
  /** human rendering when it differs from String(value) */
  text?: string;
}

export interface ProbeSection {
  /** JSON key and human heading */
  id: string;
  title: string;
  collect(ctx: ProbeContext): ProbeField[] | Promise<ProbeField[]>;
}

/** Computed once and handed to every section. */
export interface ProbeContext {
  raw: ProbeStruct;
  /** zc_probe() return value (0, or -errno) */
  status: number;
  libzcVersion: string;
  libzcPath: string;
}

const sections: ProbeSection[] = [];

export function registerProbeSection(s: ProbeSection): void {
  if (sections.some((x) => x.id === s.id)) throw new Error(`probe section "${s.id}" registered twice`);
  sections.push(s);
}

export function probeSections(): readonly ProbeSection[] {
  return sections;
}

const CAP_TEXT: Record<keyof typeof CAPS, string> = {
  IO_URING: 'io_uring_setup works',
  SEND_ZC: 'IORING_OP_SEND_ZC (6.0)',
  SENDMSG_ZC: 'IORING_OP_SENDMSG_ZC (6.1)',
  SEND_ZC_FIXED: 'SEND_ZC from registered buffers',
  REPORT_USAGE: 'IORING_SEND_ZC_REPORT_USAGE (6.2)',
  SEND_VECTORIZED: 'vectored SEND_ZC (IORING_SEND_VECTORIZED)',
  DEFER_TASKRUN: 'IORING_SETUP_DEFER_TASKRUN (6.1)',
  OP_BIND_LISTEN: 'IORING_OP_BIND / LISTEN (6.11)',
  OP_SOCKET: 'IORING_OP_SOCKET (5.19)',
  RECV_ZC: 'IORING_OP_RECV_ZC, zcrx (6.15)',
  ZCRX_NODEV: 'zcrx ZCRX_REG_NODEV copy mode (7.1)',
  UNIFIED_NATIVE: 'one CQE per zero-copy send in the kernel (uring-zc patch)',
  BUFRING: 'provided-buffer rings',
  RECV_MULTISHOT: 'multishot receive',
};

function memlockText(v: number | bigint): { value: number | string | null; text: string } {
  const big = BigInt(v);
  if (big === 0xffffffffffffffffn) return { value: 'unlimited', text: 'unlimited' };
  const n = Number(big);
  return { value: n, text: `${n} bytes (${(n / 1048576).toFixed(n % 1048576 ? 1 : 0)} MiB)` };
}

const DISABLED_TEXT: Record<number, string> = {
  [-1]: 'unknown (no /proc/sys/kernel/io_uring_disabled)',
  0: '0 (enabled for all)',
  1: '1 (only for processes in kernel.io_uring_group or with CAP_SYS_ADMIN)',
  2: '2 (disabled for all)',
};

registerProbeSection({
  id: 'system',
  title: 'system',
  collect: (ctx) => {
    const p = ctx.raw;
    const mcur = memlockText(p.memlock_cur);
    const mmax = memlockText(p.memlock_max);
    return [
      { label: 'kernel release', key: 'kernelRelease', value: p.kernel_release },
      { label: 'io_uring_disabled sysctl', key: 'ioUringDisabled', value: p.io_uring_disabled, text: DISABLED_TEXT[p.io_uring_disabled] ?? String(p.io_uring_disabled) },
      { label: 'RLIMIT_MEMLOCK soft', key: 'memlockCur', value: mcur.value, text: mcur.text },
      { label: 'RLIMIT_MEMLOCK hard', key: 'memlockMax', value: mmax.value, text: mmax.text },
      { label: 'page size', key: 'pageSize', value: p.page_size },
      { label: 'liburing', key: 'liburing', value: `${p.liburing_major}.${p.liburing_minor}` },
      { label: 'libzc', key: 'libzc', value: ctx.libzcVersion, text: `${ctx.libzcVersion} (${ctx.libzcPath})` },
      { label: 'node', key: 'node', value: process.version },
    ];
  },
});

registerProbeSection({
  id: 'io_uring',
  title: 'io_uring',
  collect: (ctx) => {
    const p = ctx.raw;
    const fields: ProbeField[] = [
      {
        label: 'io_uring_setup',
        key: 'setupErrno',
        value: p.setup_errno,
        text: p.setup_errno === 0 ? 'ok' : `fails: errno ${p.setup_errno}${errnoHint(p.setup_errno)}`,
      },
      { label: 'features', key: 'features', value: p.features, text: `0x${(p.features >>> 0).toString(16)}` },
      { label: 'last opcode', key: 'lastOp', value: p.last_op },
      {
        label: 'unified completion',
        key: 'unifiedNative',
        value: (p.caps & CAPS.UNIFIED_NATIVE) !== 0,
        text:
          (p.caps & CAPS.UNIFIED_NATIVE) !== 0
            ? 'native (kernel posts one CQE per zero-copy send)'
            : 'userspace (libzc merges the result and notification CQEs)',
      },
    ];
    return fields;
  },
});

registerProbeSection({
  id: 'caps',
  title: 'capabilities',
  collect: (ctx) =>
    (Object.keys(CAPS) as Array<keyof typeof CAPS>).map((name) => {
      const on = (ctx.raw.caps & CAPS[name]) !== 0;
      return { label: CAP_TEXT[name], key: camel(name), value: on, text: on ? 'yes' : 'no' };
    }),
});

function camel(s: string): string {
  return s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function errnoHint(errno: number): string {
  switch (errno) {
    case 1:
      return ' (EPERM: kernel.io_uring_disabled, or a seccomp filter in a container)';
    case 38:
      return ' (ENOSYS: kernel without io_uring, or blocked by seccomp)';
    case 12:
      return ' (ENOMEM: RLIMIT_MEMLOCK too low for the ring)';
    default:
      return '';
  }
}

export async function runProbe(): Promise<Record<string, unknown>> {
  const { zc } = loadNative();
  const out: [ProbeStruct | null] = [null];
  const status = zc.zc_probe(out);
  if (!out[0]) throw new Error(`zc_probe failed: ${status}`);
  const ctx: ProbeContext = { raw: out[0], status, libzcVersion: zc.zc_version(), libzcPath: zc.path };
  const result: Record<string, unknown> = {};
  for (const s of sections) {
    const fields = await s.collect(ctx);
    result[s.id] = { title: s.title, fields };
  }
  return result;
}

export function probeJson(r: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const o: Record<string, Record<string, unknown>> = {};
  for (const [id, sec] of Object.entries(r)) {
    const s = sec as { fields: ProbeField[] };
    o[id] = Object.fromEntries(s.fields.map((f) => [f.key, f.value]));
  }
  return o;
}

export function probeText(r: Record<string, unknown>): string {
  const lines: string[] = [];
  const all = Object.values(r) as Array<{ title: string; fields: ProbeField[] }>;
  const w = Math.max(...all.flatMap((s) => s.fields.map((f) => f.label.length)));
  for (const s of all) {
    lines.push(`${s.title}:`);
    for (const f of s.fields) lines.push(`  ${f.label.padEnd(w)}  ${f.text ?? String(f.value)}`);
  }
  return lines.join('\n');
}
