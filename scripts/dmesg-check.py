#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dmesg-check: fail on kernel splats in VM kernel logs.

usage: dmesg-check.py [--label NAME] LOG...
       dmesg-check.py --self-test [DIR]

Scans kernel logs (a `dmesg` dump, or a serial console capture) for real
splat markers: KASAN/KFENCE/UBSAN reports, lockdep splats, WARN()s, BUG()s,
Oopses, panics, general protection faults, kmemleak reports.  Each splat is
printed with the lines that follow it (up to its end-of-trace line) and the
VM test step that was running when it happened (the guest writes
"uring-zc-vm: step NAME begin" into /dev/kmsg before every step).

Only markers at the start of a kernel message count, so ordinary boot lines
that merely mention a bug ("... please report a bug", "Warning: Processor
Platform Limit ...", "RETBleed: WARNING: Spectre v2 mitigation ...",
"[Firmware Bug]: ...") do not.  A userspace fault logged by the kernel
("traps: node[42] general protection fault ip:...") is not a kernel splat:
the test that crashed fails on its own.

In a file where kernel lines carry printk timestamps, lines without one
(messages of vng or qemu in a console capture) are ignored.

The same splat found in several files (console capture and dmesg dump of
one boot) is reported once.  Exit status: 0 clean, 1 splats found, 2 usage
or unreadable file.

--self-test checks every sample in DIR (default tests/vm/dmesg): files named
good-*.log must be clean, bad-*.log must be flagged, and a bad sample's first
line "# expect: TEXT" names text that must appear in the reported splat.
"""

import os
import re
import sys

# Prefixes in front of a kernel message: console/dmesg timestamp
# "[   12.345678] ", printk caller id "[  T123] " / "[ C1] ", syslog-style
# "<4>" levels and "kernel: " (journalctl/syslog captures).
_PREFIX = re.compile(r'^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[TC]\d+\]\s?)?(?:kernel:\s)?')
_STAMP = re.compile(r'^(?:<\d+>)?\[\s*(\d+\.\d+)\]')

# Each entry: (kind, regex matched against the message with its prefix removed).
# Anchored at the start of the message unless the marker legitimately follows
# a subsystem prefix (e.g. "Oops: ..." has none, "Internal error: Oops" does).
MARKERS = [
	('KASAN', re.compile(r'^BUG: KASAN: ')),
	('KFENCE', re.compile(r'^BUG: KFENCE: ')),
	('UBSAN', re.compile(r'^UBSAN: ')),
	('lockdep', re.compile(r'^WARNING: (?:possible (?:circular|recursive|irq)|inconsistent lock state'
			       r'|bad unlock balance|held lock freed|lock held when returning'
			       r'|suspicious RCU usage|HARDIRQ-|SOFTIRQ-|.*lock)')),
	('lockdep', re.compile(r'^(?:\[ BUG: )?inconsistent lock state')),
	('sleep-in-atomic', re.compile(r'^BUG: sleeping function called from invalid context')),
	('WARNING', re.compile(r'^WARNING: CPU: \d+ PID: \d+ at ')),
	('WARNING', re.compile(r'^WARNING: .* at \S')),
	('WARNING', re.compile(r'^WARNING: ')),
	('BUG', re.compile(r'^kernel BUG at ')),
	('BUG', re.compile(r'^BUG: ')),
	('Oops', re.compile(r'^(?:Internal error: )?Oops\b')),
	('panic', re.compile(r'^Kernel panic - not syncing')),
	('general protection fault', re.compile(r'^(?:Oops: )?general protection fault')),
	('kmemleak', re.compile(r'^kmemleak: \d+ new suspected memory leaks')),
	('refcount', re.compile(r'^refcount_t: ')),
	('list corruption', re.compile(r'^list_(?:add|del) corruption')),
]

# Userspace faults reported by the kernel: not kernel splats.
_USER_FAULT = re.compile(r'^traps: \S+\[\d+\] general protection fault ip:')
_END = re.compile(r'^(?:---\[ end |={20,}$)')
_STEP = re.compile(r'uring-zc-vm: step (\S+) begin')
MAX_SPLAT_LINES = 60


def message(line):
	return _PREFIX.sub('', line.rstrip('\r\n').replace('\r', ''), count=1)


def classify(msg):
	if _USER_FAULT.match(msg):
		return None
	for kind, rx in MARKERS:
		if rx.match(msg):
			return kind
	return None


def scan(lines):
	"""Return splats: dicts with kind, step, key (marker line) and text lines."""
	splats = []
	step = '(boot)'
	cur = None
	# In a capture that mixes kernel lines with a host tool's own output
	# (vng/qemu messages on the console stream), kernel lines are the
	# timestamped ones.
	stamped = any(_STAMP.match(raw) for raw in lines)
	for raw in lines:
		line = raw.rstrip('\r\n').replace('\r', '')
		if stamped and not _STAMP.match(line):
			continue
		msg = message(line)
		m = _STEP.search(msg)
		if m:
			step = m.group(1)
			cur = None
			continue
		kind = classify(msg)
		if kind and cur is not None and len(cur['text']) < MAX_SPLAT_LINES and \
		   not cur['ended'] and kind in ('Oops', 'panic', 'general protection fault', 'BUG', 'WARNING'):
			# A splat inside a splat (e.g. "Oops:" after "BUG: unable to
			# handle page fault", or the panic that ends an Oops) belongs
			# to the report being collected.
			cur['text'].append(line)
			if kind == 'panic':
				cur['ended'] = True
			continue
		if kind:
			stamp = _STAMP.match(line)
			cur = {'kind': kind, 'step': step, 'ended': False,
			       'key': (stamp.group(1) if stamp else None, msg),
			       'text': [line]}
			splats.append(cur)
			continue
		if cur is not None and not cur['ended']:
			if len(cur['text']) >= MAX_SPLAT_LINES:
				cur['text'].append('    [... trimmed]')
				cur['ended'] = True
			else:
				cur['text'].append(line)
				if _END.match(msg):
					cur['ended'] = True
	return splats


def check_files(paths, label=None, out=sys.stdout):
	seen = set()
	found = []
	for p in paths:
		try:
			with open(p, encoding='utf-8', errors='replace') as f:
				lines = f.readlines()
		except OSError as e:
			print(f'dmesg-check: cannot read {p}: {e.strerror}', file=sys.stderr)
			return 2
		for s in scan(lines):
			if s['key'] in seen:
				continue
			seen.add(s['key'])
			s['file'] = p
			found.append(s)
	name = f'{label}: ' if label else ''
	# Known, not ours: under TCG the 7.2 KASAN kernel sometimes reports a
	# wild access in do_raw_spin_lock from an interrupt (handle_edge_irq)
	# taken during start_kernel's CPU identification (identify_cpu), before
	# any test runs.  The unpatched kernel hits it as often as the patched
	# one ("Not tainted 7.2.13", 1 of 3 boots each, 2026-11-24), so it is
	# 7.2 under TCG, not the series.  Printed, not failed; anything else in
	# the same boot still fails the run.
	early = [s for s in found if all(m in '\n'.join(s['text']) for m in
		 ('do_raw_spin_lock', 'handle_edge_irq', 'start_kernel'))]
	for s in early:
		print(f'dmesg-check: {name}known early-boot TCG splat, not counted ({s["file"]}): {s["text"][0]}', file=out)
	found = [s for s in found if s not in early]
	for s in found:
		print(f'dmesg-check: {name}{s["kind"]} splat during step {s["step"]} ({s["file"]}):', file=out)
		for t in s['text']:
			print(f'    | {t}', file=out)
	if found:
		kinds = ', '.join(sorted({s['kind'] for s in found}))
		print(f'dmesg-check: {name}{len(found)} splat(s) found ({kinds})', file=out)
		return 1
	print(f'dmesg-check: {name}clean ({", ".join(paths)})', file=out)
	return 0


def self_test(d):
	try:
		names = sorted(n for n in os.listdir(d) if n.endswith('.log'))
	except OSError as e:
		print(f'dmesg-check: self-test: cannot list {d}: {e.strerror}', file=sys.stderr)
		return 2
	good = [n for n in names if n.startswith('good-')]
	bad = [n for n in names if n.startswith('bad-')]
	if not good or not bad:
		print(f'dmesg-check: self-test: {d} needs good-*.log and bad-*.log samples', file=sys.stderr)
		return 2
	ok = 0
	fail = 0
	for n in good + bad:
		p = os.path.join(d, n)
		with open(p, encoding='utf-8', errors='replace') as f:
			lines = f.readlines()
		splats = scan(lines)
		if n.startswith('good-'):
			res = not splats
			why = '' if res else f'false positive: {splats[0]["text"][0]}'
		else:
			want = lines[0][len('# expect:'):].strip() if lines and lines[0].startswith('# expect:') else ''
			text = '\n'.join(t for s in splats for t in s['text'])
			res = bool(splats) and (want in text)
			why = '' if res else ('not flagged' if not splats else f'splat lacks "{want}"')
		print(f'dmesg-check: self-test {"ok  " if res else "FAIL"} {n}'
		      + (f' ({len(splats)} splat(s): {", ".join(s["kind"] for s in splats)})' if splats and res else '')
		      + (f': {why}' if why else ''))
		if res:
			ok += 1
		else:
			fail += 1
	print(f'dmesg-check: self-test {ok} passed, {fail} failed')
	return 0 if fail == 0 else 1


def main(argv):
	if argv[:1] == ['--self-test']:
		here = os.path.dirname(os.path.abspath(__file__))
		d = argv[1] if len(argv) > 1 else os.path.join(here, '..', 'tests', 'vm', 'dmesg')
		return self_test(d)
	label = None
	if argv[:1] == ['--label'] and len(argv) >= 2:
		label = argv[1]
		argv = argv[2:]
	if not argv or argv[0].startswith('-'):
		print(__doc__.strip().split('\n\n')[1], file=sys.stderr)
		return 2
	return check_files(argv, label)


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
