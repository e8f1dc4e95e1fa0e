#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What a KVM host with the eCS host patches does for a guest (run in an L2
# guest of our L1 that QEMU started with -cpu host,migratable=off, so that
# the unnamed KVM_FEATURE_ECS bit reaches the guest): MSR_KVM_ECS reads as
# 0 until written; reserved bits (with the enable bit clear too), an
# unaligned area, an address outside guest RAM or not canonical all get
# #GP (EIO through /dev/cpu/0/msr) and leave it 0; with the eCS shim registered, the host
# publishes vcpu_preempted and pcpu_overloaded. Skips where the host does
# not offer the feature.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/ecs_msr.sh

shim=/ecs/modules/ecs.ko
dir=/sys/kernel/debug/ecs
ecs_msr_require

field() { sed -n "s/^$1: //p" $dir/state; }
# Hints come and go as the L1 switches vCPUs: 40 quick reads to catch one.
HINT_SAMPLES=40
# hint_seen COLUMN: some other CPU shows 1 in COLUMN of the shim's cpus file
# within HINT_SAMPLES samples (column 7 vcpu_preempted, 8 pcpu_overloaded).
hint_seen() {
	i=0
	while [ $i -lt $HINT_SAMPLES ]; do
		awk -v c="$1" '$1 == "self" { next } /^cpu/ && $c == 1 { found = 1 } END { exit !found }' \
			$dir/cpus && return 0
		i=$((i + 1))
	done
	return 1
}

bad_values=$(ecs_msr_bad_values)
n_bad=$(echo "$bad_values" | grep -c .)
ktap_begin $((6 + n_bad))

ktap_check reads-zero [ "$(rdmsr_ecs 0)" = 0000000000000000 ]
while read -r v kind; do
	if wrmsr_ecs "$v"; then
		ktap_fail "gp-$kind" "writing $v succeeded"
		wrmsr_ecs 0
	else
		ktap_check "gp-$kind" [ "$(rdmsr_ecs 0)" = 0000000000000000 ]
	fi
done <<EOF
$bad_values
EOF
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
