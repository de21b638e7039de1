// SPDX-License-Identifier: MIT
/**
 * Diagnostic modes (not run by default): the send loop written straight
 * on the koffi declarations of libzc (ts/ffi), blocking in zc_wait()
 * instead of using Node's event loop, with no Promise per send.  Between
 * c-zc-fixed (no JS at all) and zc-fixed (the full TypeScript API) this
 * tells where the overhead is: koffi + libzc, or the API layer.
 */
import { LAYOUT, RING_FLAGS, SEND_FLAGS, SYS } from '../ffi/abi.gen.ts';
import { loadNative, PointerOut, type NativePointer } from '../ffi/libzc.ts';
import { encodeStruct } from '../ffi/structs.ts';
import { memoryView } from '../ffi/poll.ts';
import { fillPattern, Meter, type BenchMode, type RunSpec, type SenderResult } from './types.ts';
import { ringSettings } from './settings.ts';
import { windowFor } from './window.ts';

const REC = LAYOUT.zc_completion.size;
const OFF_RES = LAYOUT.zc_completion.fields.res.offset;
const OFF_FLAGS = LAYOUT.zc_completion.fields.flags.offset;
const ZC_USED = 1;
const ZC_COPIED = 2;

function sockaddrIn(port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(SYS.AF_INET, 0);
  b.writeUInt16BE(port, 2);
  b.writeUInt32BE(0x7f000001, 4);
  return b;
}

function check(what: string, rc: number): number {
  if (rc < 0) throw new Error(`${what}: errno ${-rc}`);
  return rc;
}

async function rawRun(spec: RunSpec, kind: 'send' | 'zc-fixed'): Promise<SenderResult> {
  const { zc } = loadNative();
  const window = windowFor(spec.size);
  const out = new PointerOut('zc_ring');
  check('zc_ring_create', zc.zc_ring_create(encodeStruct('zc_ring_config', {
    sq_entries: 256,
    flags: RING_FLAGS.SINGLE_ISSUER | (ringSettings().deferTaskrun ? RING_FLAGS.DEFER_TASKRUN : 0),
  }), out.bytes));
  const ring = out.get()!;
  const recs = Buffer.alloc(256 * REC);
  const one = (what: string): number => {
    check('zc_submit', zc.zc_submit(ring));
    const n = check('zc_wait', zc.zc_wait(ring, recs, 1, 1, 5000));
    if (n !== 1) throw new Error(`${what}: no completion`);
    return check(what, recs.readInt32LE(OFF_RES));
  };
  let pool: NativePointer | null = null;
  let fd = -1;
  try {
    check('zc_socket', zc.zc_socket(ring, SYS.AF_INET, SYS.SOCK_STREAM, 0, 1));
    fd = one('socket');
    const sa = sockaddrIn(spec.port);
    check('zc_connect', zc.zc_connect(ring, fd, sa, sa.length, 1));
    one('connect');
    const pout = new PointerOut('zc_pool');
    const bufSize = Math.ceil(spec.size / 4096) * 4096;
    check('zc_pool_create', zc.zc_pool_create(ring, encodeStruct('zc_pool_config', { count: window, size: bufSize }), pout.bytes));
    pool = pout.get()!;
    const plain = new Uint8Array(memoryView(BigInt(zc.zc_pool_base(pool)), window * bufSize));
    fillPattern(plain);
    const free: number[] = [];
    for (let i = window - 1; i >= 0; i--) free.push(i);
    const meter = new Meter(spec);
    let bytes = 0;
    let sends = 0;
    let used = 0;
    let copied = 0;
    let inflight = 0;
    let running = true;
    while (running || inflight > 0) {
      if (running) {
        running = meter.tick(bytes, sends, used, copied);
        while (running && free.length > 0) {
          const b = free.pop()!;
          const rc = kind === 'zc-fixed'
            ? zc.zc_send_fixed(ring, fd, pool, b, 0, spec.size, SEND_FLAGS.ZEROCOPY, b)
            : zc.zc_send(ring, fd, plain.subarray(b * bufSize, b * bufSize + spec.size), spec.size, 0, b);
          if (rc < 0) {
            free.push(b);
            if (rc === -11) break;
            check('send', rc);
          }
          inflight++;
        }
      }
      zc.zc_submit(ring);
      const n = check('zc_wait', zc.zc_wait(ring, recs, 256, 1, 5000));
      for (let i = 0; i < n; i++) {
        const o = i * REC;
        const res = recs.readInt32LE(o + OFF_RES);
        const flags = recs.readUInt32LE(o + OFF_FLAGS);
        if (res < 0) throw new Error(`send: errno ${-res}`);
        bytes += res;
        sends++;
        if (flags & ZC_USED) used++;
        if (flags & ZC_COPIED) copied++;
        free.push(recs.readUInt32LE(o));
        inflight--;
      }
    }
    return { ...meter.done!, detail: `window ${window}` };
  } finally {
    if (pool) zc.zc_pool_destroy(pool);
    if (fd >= 0) loadNative().c.close(fd);
    zc.zc_ring_destroy(ring);
  }
}

export const ffiModes: BenchMode[] = [
  {
    name: 'ffi-send',
    describe: 'diagnostic: plain SEND through raw koffi calls, blocking zc_wait loop, no Promises',
    zeroCopy: false,
    run: (spec) => rawRun(spec, 'send'),
  },
  {
    name: 'ffi-zc-fixed',
    describe: 'diagnostic: SEND_ZC fixed through raw koffi calls, blocking zc_wait loop, no Promises',
    zeroCopy: true,
    run: (spec) => rawRun(spec, 'zc-fixed'),
  },
];
