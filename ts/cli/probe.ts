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
import { errnoName, hintFor } from '../errors.ts';
import { probe, type ProbeInfo } from '../probe.ts';

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
  info: ProbeInfo;
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
  SEND_ZC_SINGLE_CQE: 'IORING_SEND_ZC_SINGLE_CQE: one CQE per zero-copy send (uring-zc kernel series)',
  BUFRING: 'provided-buffer rings',
  RECV_MULTISHOT: 'multishot receive',
  SENDMSG_ZC_FIXED: 'SENDMSG_ZC from several registered buffers (6.15): same-tick sends coalesced',
};

function memlockText(v: number | null): { value: number | string; text: string } {
  if (v === null) return { value: 'unlimited', text: 'unlimited' };
  return { value: v, text: `${v} bytes (${(v / 1048576).toFixed(v % 1048576 ? 1 : 0)} MiB)` };
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
    const p = ctx.info;
    const mcur = memlockText(p.memlock.current);
    const mmax = memlockText(p.memlock.max);
    return [
      { label: 'kernel release', key: 'kernelRelease', value: p.kernelRelease },
      { label: 'io_uring_disabled sysctl', key: 'ioUringDisabled', value: p.ioUringDisabled, text: DISABLED_TEXT[p.ioUringDisabled] ?? String(p.ioUringDisabled) },
      { label: 'RLIMIT_MEMLOCK soft', key: 'memlockCur', value: mcur.value, text: mcur.text },
      { label: 'RLIMIT_MEMLOCK hard', key: 'memlockMax', value: mmax.value, text: mmax.text },
      { label: 'page size', key: 'pageSize', value: p.pageSize },
      { label: 'liburing', key: 'liburing', value: p.liburing.version },
      { label: 'libzc', key: 'libzc', value: p.libzcVersion },
      { label: 'libzc library', key: 'libzcPath', value: p.libraryPath },
      {
        label: 'ring watcher',
        key: 'pollWatcher',
        value: p.pollWatcher.kind,
        text: p.pollWatcher.reason ? `${p.pollWatcher.kind} (${p.pollWatcher.reason})` : `${p.pollWatcher.kind} (${p.pollWatcher.path})`,
      },
      { label: 'node', key: 'node', value: process.version },
    ];
  },
});

registerProbeSection({
  id: 'io_uring',
  title: 'io_uring',
  collect: (ctx) => {
    const p = ctx.info;
    const fields: ProbeField[] = [
      {
        label: 'io_uring_setup',
        key: 'setupError',
        value: p.setupError,
        text: p.setupErrno === 0 ? 'ok' : `fails: ${p.setupError ?? p.setupErrno}${errnoHint(p.setupErrno, p.ioUringDisabled)}`,
      },
      { label: 'features', key: 'features', value: p.features, text: `0x${(p.features >>> 0).toString(16)}` },
      { label: 'last opcode', key: 'lastOp', value: p.lastOp },
      {
        label: 'unified completion',
        key: 'unifiedNative',
        value: p.caps.SEND_ZC_SINGLE_CQE,
        text:
          p.caps.SEND_ZC_SINGLE_CQE
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
      const on = ctx.info.caps[name];
      return { label: name, key: camel(name), value: on, text: `${on ? 'yes' : 'no '}  ${CAP_TEXT[name]}` };
    }),
});

function camel(s: string): string {
  return s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function errnoHint(errno: number, ioUringDisabled: number): string {
  const h = hintFor('ring.create', errno, { ioUringDisabled });
  return h ? ` (${errnoName(errno)}: ${h})` : '';
}

export async function runProbe(): Promise<Record<string, unknown>> {
  const ctx: ProbeContext = { info: probe() };
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
