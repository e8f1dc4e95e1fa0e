#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The splat oracle can fail: throwaway guests load splat_probe, which makes
# a WARN (default kernel) or a lockdep report (debug kernel) on purpose,
# and console-check must fail their console.log, naming the report, while
# a guest that loads it with splat=0 passes. This is what shows that a
# WARN reaches the console at all (scripts/vm boots with loglevel=5: both
# are KERN_WARNING, which loglevel=4 kept off it). In each guest
# tests/lib/splat_probe_load.sh checks the in-guest oracle, ktap_no_splat,
# the same way.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by scripts/lib/common.sh
ECS_REPO=$repo
. "$repo/scripts/lib/common.sh"
vm=$repo/scripts/vm
check=$repo/scripts/console-check
for f in "${ECS_KERNEL:-}" "${ECS_GUEST_INITRD:-}" "${ECS_DEBUG_KERNEL:-}" "${ECS_DEBUG_GUEST_INITRD:-}"; do
	[ -f "$f" ] || ktap_missing_all "no kernel or guest initramfs '$f' (run through make check)"
done
command -v qemu-system-x86_64 >/dev/null || ktap_missing_all "no qemu-system-x86_64"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ktap_begin 6

# probe NAME KIND KERNEL INITRD: boot a guest that runs splat_probe_load.sh
# KIND; its KTAP is shown indented, and the first result is its exit.
probe() {
	"$vm" --kernel "$3" --initrd "$4" --smp 2 --mem 1G --timeout 280 --out "$tmp/$1" \
		-- /ecs/tests/lib/splat_probe_load.sh "$2" > "$tmp/$1.ktap" 2> "$tmp/$1.err"
	local rc=$?
	sed 's/^/    /' "$tmp/$1.ktap"
	[ $rc = 0 ] || sed 's/^/# /' "$tmp/$1.err" | tail -n 20
	ktap_check "$1-guest-checks" [ $rc = 0 ]
}

# console_fails NAME ERE: console-check fails NAME's console.log, and a
# line it prints matches ERE.
console_fails() {
	"$check" "$tmp/$1/console.log" > "$tmp/$1.check"
	local rc=$?
	sed 's/^/# /' "$tmp/$1.check" | head -n 5
	local named=0
	grep -qE "$2" "$tmp/$1.check" && named=1
	ktap_check "$1-console-fails" [ $rc = 1 -a $named = 1 ]
}

probe clean none "$ECS_KERNEL" "$ECS_GUEST_INITRD"
"$check" "$tmp/clean/console.log" > "$tmp/clean.check"
rc=$?
sed 's/^/# /' "$tmp/clean.check" | head -n 5
ktap_check clean-console-passes [ $rc = 0 ]
probe warn warn "$ECS_KERNEL" "$ECS_GUEST_INITRD"
console_fails warn 'WARNING: .*splat_probe'
probe lockdep lockdep "$ECS_DEBUG_KERNEL" "$ECS_DEBUG_GUEST_INITRD"
console_fails lockdep 'WARNING: possible circular locking dependency detected'
ktap_end
