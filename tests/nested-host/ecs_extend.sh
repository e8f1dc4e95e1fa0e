#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: the eCS extension end to end. The L1 (1 vCPU) loads
# the policy module ecs_host and boots a 2-vCPU L2 whose vCPU threads share
# its one CPU (overcommitted), with the eCS shim registered and a lock-heavy
# load (tests/lib/ecs_lock_load.sh). While the L2 runs, KVM's per-VM stats
# are sampled. Asserts: the policy rejects bad parameters; extensions were
# granted and most ended with the guest out of its section (avoided
# preemptions); a guest holding a section for 2 s is still preempted (its
# extensions reach their bound and it is preempted in the section); no
# extension lasted longer than its bound (1 ms) plus the slack of the
# emulated L1's late and lost timer interrupts (EXTENSION_SLACK_NS,
# tests/lib/nested.sh), while an extension that nothing cut short would
# last the guest's whole 2 s section; rmmod of the policy leaves a healthy
# host.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
host_ko=/ecs/modules/ecs_host.ko
[ -f $host_ko ] || ktap_missing_all "$host_ko is not in this initramfs"
stats=/sys/kernel/debug/ecs_host/stats

bad_params="extension_us=0 extension_us=9 extension_us=10001 poll_us=0 poll_us=4294967295 extension_us=100,poll_us=200"
ktap_begin $((10 + $(echo $bad_params | wc -w)))
for p in $bad_params; do
	ktap_rejects "rejects-$p" $host_ko ecs_host "$(echo "$p" | tr ',' ' ')" "ecs_host: ${p##*,}"
done
extension_us=1000
ktap_check policy-loaded insmod $host_ko extension_us=$extension_us poll_us=50
before=$(sed 's/: /=/' $stats | tr '\n' ' ')

l2_extension_run l2-extend $extension_us
sed 's/^/# /' $stats
ktap_check policy-counted sh -c "[ \$(sed -n 's/^deferred: //p' $stats) -gt 0 ]"
ktap_info "policy counters before the L2: $before"
ktap_check policy-unloaded rmmod ecs_host
l1_host_clean
ktap_end
