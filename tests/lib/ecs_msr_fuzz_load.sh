#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest half of tests/fuzz/msr_fuzz.sh: fuzz MSR_KVM_ECS for
# SECONDS (default 60) from every vCPU at once (/ecs/bin/ecs_msr_fuzz,
# tests/lib/ecs_msr_fuzz.c), in four phases: with the eCS shim registered,
# without it, with it, without it, so that enabling is toggled between
# them; vCPU 1 goes offline and online again all the while. Every write
# must get #GP and leave the registration as it was; after each phase the
# shim must have every vCPU registered without an MSR error, or every
# vCPU's MSR must read 0. KTAP; the fuzzer's counters as comments.
#
#   ecs_msr_fuzz_load.sh [SECONDS [SEED]]
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/ecs_msr.sh

ecs_msr_require --host-offers
seconds=${1:-60}
seed=${2:-$(date +%s)}
fuzz=/ecs/bin/ecs_msr_fuzz
shim=/ecs/modules/ecs.ko
[ -x $fuzz ] || ktap_missing_all "no $fuzz in the initramfs"
ktap_require_module $shim
phases=4
phase_s=$((seconds / phases))
[ $phase_s -ge 5 ] || phase_s=5
cpus=$(nproc)
# ecs.fuzz_hotplug=0 leaves every vCPU online.
hotplug_cpu=
[ -w /sys/devices/system/cpu/cpu1/online ] && [ "$(ecs_cmdline fuzz_hotplug)" != 0 ] && hotplug_cpu=1
state_field() { sed -n "s/^$1: //p" /sys/kernel/debug/ecs/state; }

# all_msrs_zero: every online vCPU's MSR reads 0.
all_msrs_zero() {
	for _c in /dev/cpu/[0-9]*; do
		[ "$(rdmsr_ecs "${_c#/dev/cpu/}")" = 0000000000000000 ] || return 1
	done
}

ktap_begin $((2 * phases))
ktap_info "fuzzing ${phase_s}s per phase on $cpus vCPUs, seed $seed, hotplug of cpu${hotplug_cpu:-none}"
writes=0
p=1
while [ $p -le $phases ]; do
	if [ $((p % 2)) = 1 ]; then
		with=shim
		insmod $shim || ktap_info "insmod $shim failed"
		[ "$(state_field state)" = enabled ] || ktap_info "shim state '$(state_field state)', not enabled"
	else
		with=noshim
	fi
	# shellcheck disable=SC2086 # an empty hotplug_cpu is no argument
	out=$($fuzz $phase_s $((seed + 2 * p)) $hotplug_cpu)
	rc=$?
	ktap_info "phase $p ($with): $(echo "$out" | tr '\n' ' ')"
	n=$(echo "$out" | sed -n 's/^writes=//p')
	writes=$((writes + ${n:-0}))
	ktap_check "fuzz-$p-$with-every-write-gp" [ $rc = 0 ]
	if [ $with = shim ]; then
		ktap_check "fuzz-$p-shim-registered-after" [ "$(state_field registered_cpus)" = "$cpus" -a \
			"$(state_field msr_errors)" = 0 ]
		rmmod ecs || ktap_info "rmmod ecs failed"
	else
		ktap_check "fuzz-$p-noshim-msr-zero-after" all_msrs_zero
	fi
	p=$((p + 1))
done
ktap_info "$writes fuzzed writes in all"
ktap_end
