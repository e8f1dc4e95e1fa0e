#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: the eCS extension end to end. The L1 (1 vCPU) loads
# the policy module ecs_host and boots a 2-vCPU L2 whose vCPU threads share
# its one CPU (overcommitted), with the eCS shim registered and a lock-heavy
# load (tests/lib/ecs_lock_load.sh). While the L2 runs, KVM's per-VM stats
# are sampled. Asserts: extensions were granted; vCPUs in a critical section
# were still preempted when extended before (never twice in a row, and a
# guest holding a section for 2 s is preempted); no extension lasted longer
# than three ticks (it ends at the next tick, one tick at most; the slack is
# for the emulated L1's timer, which TCG may deliver late); rmmod of the
# policy leaves a healthy host.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
host_ko=/ecs/modules/ecs_host.ko
[ -f $host_ko ] || ktap_skip_all "$host_ko is not in this initramfs"
stats=/sys/kernel/debug/ecs_host/stats
hz=$(ecs_cmdline hz)
tick_ns=$((1000000000 / ${hz:-250}))

ktap_begin 8
ktap_check policy-loaded insmod $host_ko
before=$(sed 's/: /=/' $stats | tr '\n' ' ')

# Sample the L2's KVM stats once a second: its debugfs directory goes with it.
samples=/tmp/ecs-extend-kvm-stats
: > $samples
(while :; do
	for d in /sys/kernel/debug/kvm/*-*; do
		[ -r "$d/ecs_extensions" ] || continue
		echo "$(cat "$d/ecs_extensions") $(cat "$d/ecs_preempted_in_section") $(cat "$d/ecs_give_backs") $(cat "$d/ecs_extension_max_ns")"
	done >> $samples
	sleep 1
done) &
sampler=$!

out=/tmp/l2-ecs-extend
l2_vm l2-extend "$out" --smp 2 --cpu host,migratable=off --append "ecs.expect_ecs=1" -- \
	/ecs/tests/lib/ecs_lock_load.sh 8
rc=$?
kill $sampler
wait $sampler 2>/dev/null
sed 's/^/    /' "$out.ktap"
ktap_check l2-load [ $rc = 0 ]

sed 's/^/# /' $stats
last=$(tail -n 1 $samples)
set -- $last
extensions=${1:-0} in_section=${2:-0} give_backs=${3:-0} max_ns=${4:-0}
ktap_info "KVM stats of the L2 (last sample): ecs_extensions=$extensions ecs_preempted_in_section=$in_section ecs_give_backs=$give_backs ecs_extension_max_ns=$max_ns (tick $tick_ns ns)"
ktap_check extensions-granted [ "$extensions" -gt 0 ]
ktap_check preempted-anyway-in-section [ "$in_section" -gt 0 ]
ktap_check extension-bounded [ "$max_ns" -gt 0 -a "$max_ns" -le $((3 * tick_ns)) ]
ktap_check policy-counted sh -c "[ \$(sed -n 's/^granted: //p' $stats) -gt 0 ]"
ktap_info "policy counters before the L2: $before"
ktap_check policy-unloaded rmmod ecs_host
l1_host_clean
ktap_end
