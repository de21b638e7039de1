// SPDX-License-Identifier: MIT
/** `uring-zc bench --file`: option handling and output (the bench itself: ts/bench/file.ts). */
import { hostname, loadavg } from 'node:os';
import { updateDoc } from '../bench/report.ts';
import { FILE_CASES, FILE_SERVERS, fileJson, fileReport, runFileBench, type FileServerKind } from '../bench/file.ts';

export const BENCH_FILE_USAGE = `  uring-zc bench --file [--server node,uring-zc,nginx] [--size 1G,1M] [--seconds N] [--rounds N] [--json]
      Static files over loopback HTTP/1.1 keep-alive, loaded by wrk: Node's http +
      fs.createReadStream, \`uring-zc serve\`, and nginx (sendfile on, one worker, a
      generated config in a temp dir); one 1 GiB file over 1 connection and a 1 MiB
      file over 16 connections, page cache warm.  Needs wrk and nginx (make setup).
      --seconds  per server, case and round (default: 5); --rounds (default: 3)
      --json     stdout is only a JSON array of { server, file, conns, mbps, rps, cpuPct }
      --update-doc  also write the table into docs/PERFORMANCE.md (bench-file markers)
`;

export interface BenchFileValues {
  server?: string | undefined;
  size?: string | undefined;
  seconds?: string | undefined;
  rounds?: string | undefined;
  json?: boolean | undefined;
  'update-doc'?: boolean | undefined;
}

function num(flag: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${flag}: "${v}" is not a number in ${min}..${max}`);
  return n;
}

export async function cmdBenchFile(values: BenchFileValues): Promise<number> {
  const servers = (values.server ?? FILE_SERVERS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of servers) {
    if (!(FILE_SERVERS as readonly string[]).includes(s)) throw new Error(`--server: unknown server "${s}" (known: ${FILE_SERVERS.join(', ')})`);
  }
  const sizes = (values.size ?? FILE_CASES.map((c) => c.file).join(',')).split(',').map((s) => s.trim());
  const cases = FILE_CASES.filter((c) => sizes.includes(c.file));
  if (cases.length !== sizes.length) throw new Error(`--size: known sizes are ${FILE_CASES.map((c) => c.file).join(', ')}`);
  const seconds = num('--seconds', values.seconds, 5, 1, 3600);
  const rounds = Math.trunc(num('--rounds', values.rounds, 3, 1, 100));
  const loadStart = loadavg()[0]!;
  const res = await runFileBench({
    seconds,
    rounds,
    servers: FILE_SERVERS.filter((s) => servers.includes(s)) as FileServerKind[],
    cases,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const info = {
    seconds,
    rounds,
    loadStart,
    loadEnd: loadavg()[0]!,
    versions: res.versions,
    wrkVersion: res.wrkVersion,
    date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
    host: hostname(),
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(fileJson(res.runs))}\n`);
  } else {
    const report = fileReport(res.runs, cases, info);
    process.stdout.write(`${report}\n`);
    if (values['update-doc']) process.stderr.write(`bench: wrote ${updateDoc(report, 'bench-file')}\n`);
  }
  return res.runs.some((r) => r.errors > 0) ? 1 : 0;
}
