// SPDX-License-Identifier: MIT
/** What the running kernel and process allow (zc_probe), as a plain object. */
import { CAPS } from './ffi/abi.gen.ts';
import { loadNative, type ProbeStruct } from './ffi/libzc.ts';
import { decodeStruct, structBuffer } from './ffi/structs.ts';
import { pollWatcherKind, type PollWatcherInfo } from './ffi/poll.ts';
import { errnoName } from './errors.ts';

/** Capability names (enum zc_caps without the ZC_CAP_ prefix). */
export type CapName = keyof typeof CAPS;

/** Result of {@link probe}. */
export interface ProbeInfo {
  /** every capability by name, true when available */
  caps: Record<CapName, boolean>;
  /** raw enum zc_caps bitmask */
  capsMask: number;
  /** io_uring_setup errno (0 if it works) and its name */
  setupErrno: number;
  setupError: string | null;
  /** io_uring_params.features */
  features: number;
  /** kernel.io_uring_disabled: 0, 1, 2, or -1 when unknown */
  ioUringDisabled: number;
  /** RLIMIT_MEMLOCK in bytes; null = unlimited */
  memlock: { current: number | null; max: number | null };
  liburing: { major: number; minor: number; version: string };
  pageSize: number;
  /** IORING_OP_LAST of the kernel */
  lastOp: number;
  kernelRelease: string;
  /** libzc's version string */
  libzcVersion: string;
  /** path of the libzc.so in use */
  libraryPath: string;
  /**
   * What watches a ring's eventfd on Node's loop: `native`, the zc_poll.node
   * addon next to libzc.so, or `koffi`, the fallback (with the reason).
   */
  pollWatcher: PollWatcherInfo;
}

const UNLIMITED = 0xffffffffffffffffn;

function limit(v: number | bigint): number | null {
  const b = BigInt(v);
  if (b === UNLIMITED || b > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(b);
}

/** Probe the kernel (opcodes, flags, limits, versions). Loads libzc. */
export function probe(): ProbeInfo {
  const { zc } = loadNative();
  const b = structBuffer('zc_probe');
  const rc = zc.zc_probe(b);
  const out = decodeStruct('zc_probe', b) as unknown as ProbeStruct;
  if (rc < 0) throw new Error(`zc_probe failed: ${errnoName(rc)}`);
  const caps = {} as Record<CapName, boolean>;
  for (const [name, bit] of Object.entries(CAPS) as [CapName, number][]) caps[name] = (out.caps & bit) !== 0;
  return {
    caps,
    capsMask: out.caps,
    setupErrno: out.setup_errno,
    setupError: out.setup_errno ? errnoName(out.setup_errno) : null,
    features: out.features,
    ioUringDisabled: out.io_uring_disabled,
    memlock: { current: limit(out.memlock_cur), max: limit(out.memlock_max) },
    liburing: {
      major: out.liburing_major,
      minor: out.liburing_minor,
      version: `${out.liburing_major}.${out.liburing_minor}`,
    },
    pageSize: out.page_size,
    lastOp: out.last_op,
    kernelRelease: out.kernel_release,
    libzcVersion: zc.zc_version(),
    libraryPath: zc.path,
    pollWatcher: { ...pollWatcherKind() },
  };
}

/**
 * @internal Why this kernel cannot run uring-zc although io_uring works, or
 * undefined when it can: every send path and the receive buffer rings need
 * IORING_OP_SEND_ZC's generation (Linux 6.0).  Ring.create() throws it as
 * ENOSYS, so connect()/createServer() fall back to node:net as for a kernel
 * without io_uring.
 */
export function kernelTooOld(info: ProbeInfo): string | undefined {
  if (!info.caps.IO_URING || info.caps.SEND_ZC) return undefined;
  return (
    `uring-zc needs Linux >= 6.0 (IORING_OP_SEND_ZC); this kernel (${info.kernelRelease}) lacks it: ` +
    'run on a newer kernel, or use node:net'
  );
}
