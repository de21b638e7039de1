// SPDX-License-Identifier: MIT
/**
 * Ring settings shared by every io_uring sender of one bench run (TS API,
 * raw koffi and C), so a comparison never mixes configurations.
 */
import { parseRingOptions } from '../config.ts';

export interface RingSettings {
  /** IORING_SETUP_DEFER_TASKRUN */
  deferTaskrun: boolean;
  /** RingOptions.loopWait of the TypeScript rr peers (`bench --rr --loop-wait`) */
  loopWait: 'auto' | 'epoll' | 'ring';
}

/** What Ring.create() does by default: the C and raw senders follow it. */
const LIBRARY_DEFAULT: RingSettings = { deferTaskrun: parseRingOptions().deferTaskrun, loopWait: parseRingOptions().loopWait };

let current: RingSettings = LIBRARY_DEFAULT;

/** --defer-taskrun on|off, --loop-wait epoll|ring; an unset field keeps the library default. */
export function setRingSettings(s: Partial<RingSettings>): void {
  current = { ...LIBRARY_DEFAULT, ...s };
}

export function ringSettings(): Readonly<RingSettings> {
  return current;
}

/** For the report: how every io_uring sender of this run was set up. */
export function ringSettingsText(): string {
  const def = current.deferTaskrun === LIBRARY_DEFAULT.deferTaskrun ? ', the library default' : '';
  return `every io_uring sender (TS, raw koffi and C) ran with DEFER_TASKRUN ${current.deferTaskrun ? 'on' : 'off'}${def}`;
}

/** For the rr report: where the TypeScript ring peers' event loops slept. */
export function loopWaitText(): string {
  const def = current.loopWait === LIBRARY_DEFAULT.loopWait ? ', the library default' : '';
  const where = current.loopWait === 'ring' ? 'the ring' : current.loopWait === 'auto' ? 'the ring or epoll, by their wakeups' : 'epoll';
  return `the TypeScript io_uring peers' event loops slept in ${where} (loopWait '${current.loopWait}'${def})`;
}
