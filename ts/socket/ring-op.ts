// SPDX-License-Identifier: MIT
/** One-shot socket operations (socket, bind, connect, close...) as Promises. */
import { ZcError } from '../errors.ts';
import type { Ring } from '../ring.ts';

/** Run one ring op to its record; resolves res, rejects ZcError. */
export function ringOp(ring: Ring, opName: string, issue: (ud: number) => number, hint?: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    ring.enqueue({
      opName,
      issue,
      done: (c) => {
        if (c.res < 0) reject(new ZcError({ errno: c.res, op: opName, hint }));
        else resolve(c.res);
      },
      fail: reject,
    });
  });
}
