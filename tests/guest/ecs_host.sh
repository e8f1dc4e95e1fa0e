#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What a KVM host with the eCS host patches does for a guest (run in an L2
# guest of our L1 that QEMU started with -cpu host,migratable=off, so that
# the unnamed KVM_FEATURE_ECS bit reaches the guest): MSR_KVM_ECS reads as
# 0 until written; a reserved bit, an address outside guest RAM and a
# reserved bit with the enable bit clear all get #GP (EIO through
# /dev/cpu/0/msr) and leave it 0; with the eCS shim registered, the host
# publishes vcpu_preempted and pcpu_overloaded. Skips where the host does
# not offer the feature.
. /ecs/tests/lib/ktap.sh

msr=0x4b564d80
shim=/ecs/modules/ecs.ko
dir=/sys/kernel/debug/ecs
[ -c /dev/cpu/0/msr ] && [ -c /dev/cpu/0/cpuid ] || ktap_skip_all "no /dev/cpu/0/msr or cpuid"

# cpuid_reg LEAF N: register N (0 eax .. 3 edx) of CPUID LEAF on CPU 0.
cpuid_reg() {
	dd if=/dev/cpu/0/cpuid bs=16 count=1 skip=$(($1)) iflag=skip_bytes 2>/dev/null |
		od -An -tu4 -w16 | awk -v n="$2" '{ print $(n + 1) }'
}
signature=$(dd if=/dev/cpu/0/cpuid bs=16 count=1 skip=$((0x40000000)) iflag=skip_bytes 2>/dev/null |
	dd bs=1 skip=4 count=12 2>/dev/null | tr -d '\0')
[ "$signature" = KVMKVMKVM ] || ktap_skip_all "not a KVM guest (signature '$signature')"
features=$(cpuid_reg 0x40000001 0)
[ $(((features >> 23) & 1)) = 1 ] ||
	ktap_skip_all "the host does not offer KVM_FEATURE_ECS (features $(printf '%#x' "$features"))"

# rdmsr_ecs CPU: the MSR's value in hex, empty if the read faults.
rdmsr_ecs() {
	dd if=/dev/cpu/$1/msr bs=8 count=1 skip=$((msr)) iflag=skip_bytes 2>/dev/null |
		od -An -tx8 | tr -d ' '
}
# wrmsr_ecs VALUE: write VALUE (decimal or 0x) on CPU 0; fails on #GP.
wrmsr_ecs() {
	v=$(($1))
	i=0 bytes=
	while [ $i -lt 8 ]; do
		bytes="$bytes\\$(printf '%03o' $(((v >> (8 * i)) & 255)))"
		i=$((i + 1))
	done
	# shellcheck disable=SC2059 # the octal escapes are the format
	printf "$bytes" | dd of=/dev/cpu/0/msr bs=8 count=1 seek=$((msr)) oflag=seek_bytes conv=notrunc 2>/dev/null
}
field() { sed -n "s/^$1: //p" $dir/state; }
# hint_seen COLUMN: some other CPU shows 1 in COLUMN of the shim's cpus file
# within 40 samples (column 7 vcpu_preempted, 8 pcpu_overloaded).
hint_seen() {
	i=0
	while [ $i -lt 40 ]; do
		awk -v c="$1" '$1 == "self" { next } /^cpu/ && $c == 1 { found = 1 } END { exit !found }' \
			$dir/cpus && return 0
		i=$((i + 1))
	done
	return 1
}

ram_end=$(awk -F'[- :]+' '/System RAM/ { end = $2 } END { print "0x" end }' /proc/iomem)
beyond_ram=$(((ram_end + 0x100000000) & ~0x3f))
bad_values="0x2 0x3e 0x1000002 $(printf '%#x' $((beyond_ram | 1))) 0x8000000000000001"
n_bad=$(echo $bad_values | wc -w)
ktap_begin $((6 + n_bad))

ktap_check reads-zero [ "$(rdmsr_ecs 0)" = 0000000000000000 ]
for v in $bad_values; do
	if wrmsr_ecs "$v"; then
		ktap_fail "gp-$v" "the write succeeded"
		wrmsr_ecs 0
	else
		ktap_check "gp-$v" [ "$(rdmsr_ecs 0)" = 0000000000000000 ]
	fi
done
ktap_check disable-accepted wrmsr_ecs 0

# --- The shim registers every CPU; the host's hints reach the guest. ----------
if insmod $shim; then
	ktap_check shim-enabled [ "$(field state)" = enabled -a "$(field registered_cpus)" = "$(nproc)" ]
	ktap_check msr-enabled sh -c "[ \$(( 0x$(rdmsr_ecs 0) & 1 )) = 1 ]"
	# Busy loops on every vCPU: whichever vCPU reads, the L1 CPU is shared
	# (overloaded), and the other vCPU waits for it (preempted).
	end=$(($(date +%s) + 30))
	pids=
	for _ in $(seq "$(nproc)"); do
		(while [ "$(date +%s)" -lt $end ]; do :; done) &
		pids="$pids $!"
	done
	ktap_check pcpu-overloaded-seen hint_seen 8
	ktap_check vcpu-preempted-seen hint_seen 7
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null
	wait
	rmmod ecs
else
	ktap_fail shim-enabled "insmod $shim failed"
	for t in msr-enabled pcpu-overloaded-seen vcpu-preempted-seen; do
		ktap_skip $t "the shim did not load"
	done
fi
ktap_end
