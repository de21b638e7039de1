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

/** utime + stime of a process and all its threads, in seconds; 0 once it is gone. */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "(comm)": state is [0]; utime (field 14 of stat) is [11], stime [12]
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks();
  } catch {
    return 0;
  }
}
