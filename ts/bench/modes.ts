// SPDX-License-Identifier: MIT
/** Every benchmark mode, in table order. */
import { cSend, cZcFixed, cZcVec } from './c-sender.ts';
import { duplexMode } from './duplex.ts';
import { ffiModes } from './ffi-raw.ts';
import { nodeNet, nodeNetWindow } from './node-net.ts';
import type { BenchMode } from './types.ts';
import { uringModes } from './uring.ts';

/** Run by default (and by `make bench`). */
export const MODES: readonly BenchMode[] = [nodeNet, ...uringModes, cZcFixed, cZcVec];
/** Selectable with --mode only: for finding where time goes. */
export const DIAGNOSTIC_MODES: readonly BenchMode[] = [nodeNetWindow, duplexMode, ...ffiModes, cSend];
export const ALL_MODES: readonly BenchMode[] = [...MODES, ...DIAGNOSTIC_MODES];

export function modeByName(name: string): BenchMode | undefined {
  return ALL_MODES.find((m) => m.name === name);
}
