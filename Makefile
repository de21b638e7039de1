# uring-zc: see README.md.  `make bench` and `make test` are the two entry points.
SHELL := /bin/bash
.DEFAULT_GOAL := build

.PHONY: setup build libzc test test-full test-c test-c-asan test-ts vm-test kernel kernel-bench patch-check bench probe package package-test clean

setup:
	scripts/setup.sh

build: libzc

libzc:
	$(MAKE) -C libzc

# Host C tests, plain and under ASan+UBSan.
test-c: libzc
	$(MAKE) -C libzc test
	$(MAKE) -C libzc test-asan

test-ts: libzc
	npx vitest run

kernel:
	scripts/kernel-build.sh all

# The cover letter's numbers: builds the "bench" kernel (the patched source
# without KASAN/lockdep; scripts/kernel-build.sh bench, under nice 19) and
# runs tests/kernel/unified_bench in a VM on it (scripts/kernel-bench.sh;
# results in build/kernel-bench/).  Not part of `make test`.  On a shared
# machine give it a cache of its own: URING_ZC_CACHE=~/.cache/uz-kernel-bench.
kernel-bench:
	scripts/kernel-bench.sh

# checkpatch --strict on each patch, W=1 build of io_uring/ at each commit.
patch-check: kernel
	scripts/patch-check.sh

vm-test: kernel
	scripts/vm-test.sh

# Everything: setup, build, host suites, then the kernels (built if needed)
# and the VM suites; ends with the wall time of each stage and one
# "N passed, N failed" line (scripts/test-all.sh runs and times setup too).
test:
	scripts/test-all.sh

# The same with URING_ZC_FULL=1: suites that trim themselves to fit CI's
# time run their complete form (README: CI cost), liburing's whole
# test suite in the VMs among them (scripts/liburing-suite.sh).
test-full:
	URING_ZC_FULL=1 scripts/test-all.sh

bench: setup
	$(MAKE) build
	npx tsx ts/cli/main.ts bench

# The npm package's dist/ (scripts/build-package.ts: CommonJS + ESM entry
# points, declarations, the CLI, prebuilt libzc for linux-x64-gnu and
# linux-arm64-gnu); `npm pack` runs it (prepack).
package: build
	$(MAKE) -C libzc prebuilt
	npx tsx scripts/build-package.ts

# The package test (scripts/package-test.sh, part of `make test`): the packed
# tarball installed with no compiler, run by plain node 20, 22, 24 and 26.
package-test: package
	scripts/package-test.sh

probe: build
	npx tsx ts/cli/main.ts probe

clean:
	$(MAKE) -C libzc clean
	rm -rf dist
