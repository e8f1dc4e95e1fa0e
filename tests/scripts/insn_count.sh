#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: scripts/ecs-insn-count.py on the built vmlinux. Every
# annotated path adds what docs/ecs-guest.md's hand counts say (key off and
# on), the spinlock, rwlock, irq and bh paths have no kvm_ecs_key site, and
# the check fails when told to expect another count, when the doc's table
# (the one place the counts are written) says another, or given no vmlinux.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
count=$repo/scripts/ecs-insn-count.py
[ -f "${ECS_VMLINUX:-}" ] || ktap_missing_all "no vmlinux '${ECS_VMLINUX:-}' (run through make check)"
/usr/bin/python3 -c 'import elftools' 2>/dev/null || ktap_missing_all "no pyelftools (scripts/setup.sh installs python3-pyelftools)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ktap_begin 6

/usr/bin/python3 "$count" --vmlinux "$ECS_VMLINUX" --json "$tmp/insns.json" > "$tmp/out" 2>&1
rc=$?
grep '^check:' "$tmp/out" | sed 's/^/# /'
ktap_check counts-match-docs [ $rc = 0 ]
ktap_check json-has-every-path /usr/bin/python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
labels = {p["label"] for p in doc["paths"] if p["group"] == "annotated" and p["sites"]}
assert labels == set(doc["check"]["expected"]), labels
assert all(not p["sites"] for p in doc["paths"] if p["group"] == "no-site")' "$tmp/insns.json"

/usr/bin/python3 "$count" --vmlinux "$ECS_VMLINUX" --expect mutex_lock=1,3 > "$tmp/wrong" 2>&1
rc=$?
grep '^check: mutex_lock' "$tmp/wrong" | sed 's/^/# /'
ktap_check wrong-count-fails sh -c "[ $rc = 2 ] && grep -q '^check: mutex_lock: got (1, 2)' '$tmp/wrong'"

# The doc is where the counts come from: a copy whose mutex_lock() row
# says +3 on makes the same vmlinux fail.
sed 's/^\(| `mutex_lock()` fast path | +1: a 2-byte NOP | \)+2:/\1+3:/' "$repo/docs/ecs-guest.md" > "$tmp/doc.md"
/usr/bin/python3 "$count" --vmlinux "$ECS_VMLINUX" --expected-from "$tmp/doc.md" > "$tmp/doc" 2>&1
rc=$?
grep '^check: mutex_lock' "$tmp/doc" | sed 's/^/# /'
ktap_check doc-is-the-source sh -c "[ $rc = 2 ] && grep -q '^check: mutex_lock: got (1, 2)' '$tmp/doc' &&
	! cmp -s '$tmp/doc.md' '$repo/docs/ecs-guest.md'"

/usr/bin/python3 "$count" --vmlinux "$repo/README.md" > "$tmp/notelf" 2>&1
rc=$?
sed 's/^/# /' "$tmp/notelf"
ktap_check not-elf-refused sh -c "[ $rc = 1 ] && grep -q 'not an ELF file' '$tmp/notelf'"

ECS_VMLINUX='' /usr/bin/python3 "$count" > "$tmp/none" 2>&1
rc=$?
ktap_check no-vmlinux-refused sh -c "[ $rc = 1 ] && grep -q 'no vmlinux' '$tmp/none'"
ktap_end
