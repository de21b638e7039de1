// SPDX-License-Identifier: MIT
/** What a settled send reports (ZcSocket.send, ZcDatagram.send/sendTo). */
export interface SendResult {
  /** bytes sent (the whole length: short sends are completed by libzc) */
  bytes: number;
  /**
   * 'used': sent without a copy; 'copied': the kernel (or plain send) copied;
   * 'unknown': not reported (reportUsage: false, or the ring uses the kernel's
   * single-CQE mode, `ring.unifiedNative`, which cannot carry the report).
   */
  zeroCopy: 'used' | 'copied' | 'unknown';
}

/**
 * How the callback form of send() reports: `err` null when the whole
 * length left (`bytes` is it); otherwise the ZcError, and `bytes` what left
 * before it failed (its `bytesSent`).  Called once, never synchronously.
 */
export type SendCallback = (err: Error | null, bytes: number, zeroCopy: SendResult['zeroCopy']) => void;
