#!/usr/bin/env bash
# Regenerate ts/ffi/abi.gen.ts from libzc/libzc.h (the one source of truth
# for ABI constants and struct layouts shared by C and TypeScript).
#   scripts/gen-abi.sh          write ts/ffi/abi.gen.ts
#   scripts/gen-abi.sh FILE     write FILE instead (the ABI test compares)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-ts/ffi/abi.gen.ts}
bin=libzc/build/gen-abi
mkdir -p libzc/build
${CC:-cc} -std=c11 -Wall -Wextra -Werror -O0 -o "$bin.tmp.$$" libzc/tools/gen-abi.c
mv -f "$bin.tmp.$$" "$bin"
"$bin" > "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
