// SPDX-License-Identifier: MIT
/**
 * Ring settings shared by every io_uring sender of one bench run (TS API,
 * raw koffi and C), so a comparison never mixes configurations.
 */
export interface RingSettings {
  /** IORING_SETUP_DEFER_TASKRUN; undefined = the library default (on) */
  deferTaskrun?: boolean;
}

let current: RingSettings = {};

export function setRingSettings(s: RingSettings): void {
  current = { ...s };
}

export function ringSettings(): Readonly<RingSettings> {
  return current;
}
