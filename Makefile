# uring-zc: see README.md.  `make bench` and `make test` are the two entry points.
SHELL := /bin/bash
.DEFAULT_GOAL := build

.PHONY: setup build libzc test test-c test-c-asan test-ts vm-test kernel patch-check bench probe package clean

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

# checkpatch --strict on each patch, W=1 build of io_uring/ at each commit.
patch-check: kernel
	scripts/patch-check.sh

vm-test: kernel
	scripts/vm-test.sh

# Everything: host suites, then both kernels (built if needed) and the VM
# suites; ends with one "N passed, N failed" line (scripts/test-all.sh).
test: setup
	$(MAKE) build
	scripts/test-all.sh

bench: setup
	$(MAKE) build
	npx tsx ts/cli/main.ts bench

# The publishable package in dist/ (esbuild bundles, declarations, libzc.so).
package: build
	npx tsx scripts/build-package.ts dist

probe: build
	npx tsx ts/cli/main.ts probe

clean:
	$(MAKE) -C libzc clean
	rm -rf dist
