/**
 * CPU time of other processes, read from /proc/<pid>/stat (the bench's
 * servers and peers run as separate processes).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks = 0;

/** Clock ticks per second of /proc/<pid>/stat, asked once when first needed. */
function clockTicks(): number {
  if (ticks === 0) {
    // getconf may be absent (a minimal PATH): Linux's USER_HZ is then 100
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const v = Number(r.stdout?.trim());
    ticks = Number.isFinite(v) && v > 0 ? v : 100;
  }
  return ticks;
}

/**
 * The fields of /proc/<pid>/stat after "(comm)": state (field 3) is [0],
 * minflt (10) [7], utime (14) [11], stime (15) [12], processor (39) [36].
 * Throws once the process is gone.
 */
export function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process and all its threads, in seconds; 0 once it is gone. */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / clockTicks();
  } catch {
    return 0;
  }
}

/** Minor page faults of a process so far, or -1 once it is gone. */
export function minorFaultsOf(pid: number): number {
  try {
    return Number(statFields(pid)[7]);
  } catch {
    return -1;
  }
}
