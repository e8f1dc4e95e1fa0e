#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: scripts/vm rejects bad options, passes the guest command's
# exit status through, and reports a hung guest as a failure with its
# console tail instead of waiting forever.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
vm=$repo/scripts/vm
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_GUEST_INITRD:-}" ] ||
	ktap_skip_all "no kernel or guest initramfs (run through make check)"
command -v qemu-system-x86_64 >/dev/null || ktap_skip_all "no qemu-system-x86_64"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ktap_begin 5
"$vm" --initrd "$ECS_GUEST_INITRD" --smp two -- true 2> "$tmp/err"
rc=$?
ktap_check rejects-bad-smp [ $rc = 1 ]
grep -q -- '--smp wants a number' "$tmp/err" || ktap_info "no --smp message: $(cat "$tmp/err")"
"$vm" --kernel /nonexistent --initrd "$ECS_GUEST_INITRD" -- true 2> "$tmp/err"
ktap_check rejects-missing-kernel grep -q "kernel image '/nonexistent' not found" "$tmp/err"

"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --out "$tmp/exit3" -- sh -c 'echo hello; exit 3' > "$tmp/ktap" 2> "$tmp/err"
rc=$?
ktap_check passes-exit-status [ $rc = 3 ]
ktap_check passes-output grep -qx hello "$tmp/ktap"

start=$(date +%s)
"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --timeout 25 --out "$tmp/hang" -- sleep 100000 > /dev/null 2> "$tmp/err"
rc=$?
took=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/err" | grep -E 'TIMED OUT|last 40'
hang_reported() {
	[ $rc = 1 ] && [ $took -lt 60 ] &&
		grep -q 'TIMED OUT after 25s' "$tmp/err" &&
		grep -q 'ecs-vm: .* up at' "$tmp/err"
}
ktap_check hang-fails-with-console-tail hang_reported
ktap_end
