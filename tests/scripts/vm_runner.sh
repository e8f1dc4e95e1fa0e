#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: scripts/vm rejects bad options, passes the guest command's
# exit status through, and reports a hung guest as a failure with its
# console tail instead of waiting forever; a guest's heartbeat tells one
# that is only busy from one that stopped dead, and its registers and
# local APICs are saved before it is killed (tests/run-all.sh retries a
# nested suite only in the second case), and a guest that reset is told
# from one that exited or timed out (paired.sh retries a 2-vCPU L1 only
# then). Its nudge (--nudge) reaches the
# guest as serial interrupts and leaves no trace on the console; with
# --tcg-threads single one QEMU thread runs both vCPUs, and --icount
# runs a guest in virtual time.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by scripts/lib/common.sh
ECS_REPO=$repo
. "$repo/scripts/lib/common.sh"
vm=$repo/scripts/vm
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_GUEST_INITRD:-}" ] ||
	ktap_missing_all "no kernel or guest initramfs (run through make check)"
command -v qemu-system-x86_64 >/dev/null || ktap_missing_all "no qemu-system-x86_64"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ktap_begin 21
"$vm" --initrd "$ECS_GUEST_INITRD" --smp two -- true 2> "$tmp/err"
rc=$?
ktap_check rejects-bad-smp [ $rc = 1 ]
grep -q -- '--smp wants a number' "$tmp/err" || ktap_info "no --smp message: $(cat "$tmp/err")"
"$vm" --initrd "$ECS_GUEST_INITRD" --heartbeat -1 -- true 2> "$tmp/err"
ktap_check rejects-bad-heartbeat grep -q -- "--heartbeat wants seconds, got '-1'" "$tmp/err"
"$vm" --initrd "$ECS_GUEST_INITRD" --nudge often -- true 2> "$tmp/err"
ktap_check rejects-bad-nudge grep -q -- "--nudge wants seconds, got 'often'" "$tmp/err"
"$vm" --initrd "$ECS_GUEST_INITRD" --tcg-threads two -- true 2> "$tmp/err"
ktap_check rejects-bad-tcg-threads grep -q -- "--tcg-threads wants multi or single, got 'two'" "$tmp/err"
"$vm" --initrd "$ECS_GUEST_INITRD" --icount 11 -- true 2> "$tmp/err"
ktap_check rejects-bad-icount grep -q -- "--icount wants a shift of 0-10, got '11'" "$tmp/err"
"$vm" --kernel /nonexistent --initrd "$ECS_GUEST_INITRD" -- true 2> "$tmp/err"
ktap_check rejects-missing-kernel grep -q "kernel image '/nonexistent' not found" "$tmp/err"

"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --out "$tmp/exit3" -- sh -c 'echo hello; exit 3' > "$tmp/ktap" 2> "$tmp/err"
rc=$?
ktap_check passes-exit-status [ $rc = 3 ]
ktap_check passes-output grep -qx hello "$tmp/ktap"
# A guest that resets (here it reboots) ends without an exit status, and
# vm_reset (paired.sh's retry of a 2-vCPU L1) tells it from one that
# exited or timed out.
"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --out "$tmp/reset" -- reboot -f > /dev/null 2> "$tmp/err"
rc=$?
reset_told() {
	[ $rc = 1 ] && grep -q 'ended without an exit status' "$tmp/err" &&
		vm_reset "$tmp/reset" && ! vm_reset "$tmp/exit3"
}
ktap_check reset-told-from-exit reset_told
"$vm" --initrd "$ECS_GUEST_INITRD" --tcg-threads single --smp 2 --mem 256M --out "$tmp/single" -- \
	sh -c 'grep -c ^processor /proc/cpuinfo' > "$tmp/ktap" 2> "$tmp/err"
ktap_check one-thread-runs-two-vcpus sh -c "grep -qx 2 '$tmp/ktap' && grep -q 'tcg_threads=single' '$tmp/single/status'"
"$vm" --initrd "$ECS_GUEST_INITRD" --icount 0 --smp 1 --mem 256M --out "$tmp/icount" -- \
	sh -c 'echo counted' > "$tmp/ktap" 2> "$tmp/err"
ktap_check icount-runs sh -c "grep -qx counted '$tmp/ktap' && grep -q 'tcg_threads=single icount=0' '$tmp/icount/status'"

# ttyS0's interrupt count after 6 s, nudged every second and not at all.
for n in 1 0; do
	"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --nudge $n --out "$tmp/nudge$n" -- \
		sh -c 'sleep 6; grep ttyS0 /proc/interrupts' > "$tmp/nudge$n.ktap" 2> "$tmp/err"
done
nudged=$(awk '{ print $2 }' "$tmp/nudge1.ktap")
plain=$(awk '{ print $2 }' "$tmp/nudge0.ktap")
ktap_info "ttyS0 interrupts in 6 s: $nudged nudged, $plain not"
# 6 s of nudges once a second add about 6 (seen: 13 against 6); 4 is margin.
NUDGE_MIN_EXTRA_IRQS=4
ktap_check nudge-interrupts [ "${nudged:-0}" -ge $((${plain:-0} + NUDGE_MIN_EXTRA_IRQS)) ]
no_trace() { ! grep -q -e "$(printf '\021')" -e '\^Q' "$tmp/nudge1/console.log" "$tmp/nudge1/ktap.log"; }
ktap_check nudge-leaves-no-trace no_trace

start=$(date +%s)
"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --timeout 25 --heartbeat 2 \
	--out "$tmp/hang" -- sleep 100000 > /dev/null 2> "$tmp/err"
rc=$?
took=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/err" | grep -E 'TIMED OUT|last 40'
# The 25 s limit, boot and the hang dump; waiting out the guest takes 100000 s.
HANG_REPORTED_MAX_S=60
hang_reported() {
	[ $rc = 1 ] && [ $took -lt $HANG_REPORTED_MAX_S ] &&
		grep -q 'TIMED OUT after 25s' "$tmp/err" &&
		grep -q 'ecs-vm: .* up at' "$tmp/err"
}
ktap_check hang-fails-with-console-tail hang_reported
timeout_no_reset() { ! vm_reset "$tmp/hang"; }
ktap_check timeout-is-no-reset timeout_no_reset
# Before killing it, vm asked its QEMU where the vCPU was.
ktap_check hang-dump-has-registers grep -q '^RIP=' "$tmp/hang/hang-registers.txt"
ktap_check hang-dump-has-lapic grep -q 'local APIC state for CPU 0' "$tmp/hang/hang-registers.txt"
ktap_check hang-dump-has-stack grep -Eq '^[0-9a-f]{16}: 0x[0-9a-f]{16} 0x' "$tmp/hang/hang-registers.txt"
live_not_dead() { ! vm_stopped_dead "$tmp/hang"; }
ktap_check live-guest-not-dead live_not_dead

# A guest QEMU stops (the monitor's "stop") is as dead as an L1 whose
# vCPU never comes back from its L2: six silent beats end it long before
# its limit.
start=$(date +%s)
"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --timeout 120 --heartbeat 2 \
	--out "$tmp/dead" -- sleep 100000 > /dev/null 2> "$tmp/err" &
vm_pid=$!
for _ in $(seq 60); do
	grep -q 'ecs-vm: alive at' "$tmp/dead/console.log" 2>/dev/null && break
	sleep 0.5
done
echo stop > "$tmp/dead/monitor.in"
wait $vm_pid
rc=$?
took=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/err" | grep -E 'STOPPED DEAD|TIMED OUT'
# Six silent 2 s beats end it some 12 s after the stop; its limit is 120 s.
DEAD_REPORTED_MAX_S=60
dead_reported() {
	[ $rc = 1 ] && [ $took -lt $DEAD_REPORTED_MAX_S ] && vm_stopped_dead "$tmp/dead" &&
		grep -q 'STOPPED DEAD: its console silent for' "$tmp/err"
}
ktap_check stopped-guest-dead dead_reported

# A guest stopped before its init said "up at" (an L2 that dies while
# booting) is ended after BOOT_BEATS (9) beats, not at its limit.
start=$(date +%s)
"$vm" --initrd "$ECS_GUEST_INITRD" --smp 1 --mem 256M --timeout 120 --heartbeat 1 \
	--out "$tmp/boot" -- true > /dev/null 2> "$tmp/err" &
vm_pid=$!
for _ in $(seq 100); do
	[ -p "$tmp/boot/monitor.in" ] && break
	sleep 0.1
done
echo stop > "$tmp/boot/monitor.in"
wait $vm_pid
rc=$?
took=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/err" | grep -E 'STOPPED DEAD|TIMED OUT'
# Nine 1 s beats and the hang dump; its limit is 120 s.
BOOT_DEAD_REPORTED_MAX_S=60
boot_dead_reported() {
	[ $rc = 1 ] && [ $took -lt $BOOT_DEAD_REPORTED_MAX_S ] && vm_stopped_dead "$tmp/boot" &&
		grep -q 'STOPPED DEAD: no "up at" line' "$tmp/err"
}
ktap_check guest-dead-at-boot boot_dead_reported
ktap_end
