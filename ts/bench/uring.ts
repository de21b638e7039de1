// SPDX-License-Identifier: MIT
/** Modes that send through the uring-zc TypeScript API (filled in below). */
import type { BenchMode } from './types.ts';

export const uringModes: BenchMode[] = [];
