// SPDX-License-Identifier: MIT
/** AbortSignal support shared by connect, accept, receive and send. */

/** The error an aborted operation fails with (name 'AbortError', code 'ABORT_ERR', as in Node). */
export function abortError(signal: AbortSignal): Error {
  const e = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string };
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

/** Run `onAbort` once when `signal` aborts; returns the function that stops listening. */
export function onAbort(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (!signal) return () => {};
  const f = (): void => onAbort();
  signal.addEventListener('abort', f, { once: true });
  return () => signal.removeEventListener('abort', f);
}
