// SPDX-License-Identifier: MIT
/**
 * `uring-zc serve [dir] [--port N] [--host H] [--index NAME] [--dotfiles]
 * [--method M] [--backend B]`: the static file server of ts/serve/ until
 * SIGINT or SIGTERM.
 */
import { parseArgs } from 'node:util';
import { serve } from '../serve/server.ts';

export const SERVE_USAGE = `  uring-zc serve [DIR] [--port N] [--host H] [--index NAME] [--dotfiles]
                 [--method auto|splice|read|read-copy|direct] [--backend auto|uring|net]
      A static HTTP/1.1 file server for DIR (default: the current directory), bodies
      sent with sendFile (no copy through JavaScript): GET/HEAD, keep-alive, ranges,
      304s.  Nothing outside DIR is served (no '..', encoded slashes, NUL bytes or
      symlinks out of it); directories are 404 unless --index names a file for them;
      names starting with '.' are 404 unless --dotfiles.
      --port     default 8080 (0: any free port, printed)
      --host     default 127.0.0.1 (0.0.0.0 or :: to serve other machines)
`;

export async function cmdServe(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      index: { type: 'string' },
      dotfiles: { type: 'boolean' },
      method: { type: 'string' },
      backend: { type: 'string' },
    },
  });
  if (positionals.length > 1) throw new Error(`serve: one directory, not ${positionals.length}`);
  const port = values.port === undefined ? 8080 : Number(values.port);
  const s = await serve({
    root: positionals[0] ?? '.',
    port,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values.index !== undefined ? { index: values.index } : {}),
    ...(values.dotfiles ? { dotfiles: true } : {}),
    ...(values.method !== undefined ? { method: values.method as 'auto' } : {}),
    ...(values.backend !== undefined ? { backend: values.backend as 'auto' } : {}),
  });
  process.stdout.write(`serving ${s.root} at ${s.url} (${s.backend})\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await s.close();
  return 0;
}
