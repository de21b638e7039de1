// SPDX-License-Identifier: MIT
/** What a settled send reports (ZcSocket.send, ZcDatagram.send/sendTo). */
export interface SendResult {
  /** bytes sent (the whole length: short sends are completed by libzc) */
  bytes: number;
  /** 'used': sent without a copy; 'copied': the kernel (or plain send) copied; 'unknown': not reported */
  zeroCopy: 'used' | 'copied' | 'unknown';
}
