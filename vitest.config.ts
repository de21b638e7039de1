import { defineConfig } from 'vitest/config';

// Real kernel, real sockets: suites run one file at a time (they count fds and
// pinned memory of the process) in forked workers so a crash in native code
// fails one file, not the runner.
export default defineConfig({
  test: {
    include: ['tests/ts/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
