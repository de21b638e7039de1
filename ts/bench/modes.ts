// SPDX-License-Identifier: MIT
/** Every benchmark mode, in table order. */
import { cZcFixed } from './c-sender.ts';
import { nodeNet } from './node-net.ts';
import type { BenchMode } from './types.ts';
import { uringModes } from './uring.ts';

export const MODES: readonly BenchMode[] = [nodeNet, ...uringModes, cZcFixed];

export function modeByName(name: string): BenchMode | undefined {
  return MODES.find((m) => m.name === name);
}
