// SPDX-License-Identifier: MIT
/**
 * Microtasks for the per-tick paths (the ring's flush, a socket's tick
 * cork).  `queueMicrotask(fn)` makes an AsyncResource, a bound function
 * and an async scope on every call (~250 bytes, and ~2x the time of a
 * settled promise's `then`: docs/PERFORMANCE.md, issue 9, session 9);
 * these paths run once per tick of every busy connection.
 */

const SETTLED = Promise.resolve();

/**
 * `fn` as a task for {@link runSoon}, made once per call site (a field,
 * not an arrow per call).  What it throws is re-thrown from a
 * `queueMicrotask`, so it stays an uncaught exception, as from
 * `queueMicrotask(fn)`, not a rejected promise.
 */
export function microtaskOf(fn: () => void): () => void {
  return () => {
    try {
      fn();
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  };
}

/** Run a task made by {@link microtaskOf} in the current microtask checkpoint, after what is queued. */
export function runSoon(task: () => void): void {
  void SETTLED.then(task);
}
