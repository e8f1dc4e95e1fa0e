#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: malformed MSR_KVM_ECS writes from one guest while
# another keeps using eCS. With KVM's slice extension on
# (kvm.ecs_slice_us=1000), a 2-vCPU "bystander" L2 registers its shim
# and runs locktorture; once it runs, a 1-vCPU "attacker" L2 writes every
# kind of malformed value (tests/lib/ecs_bad_msr_load.sh) and must get #GP
# each time, then still be able to register. Meanwhile the host must keep
# granting the bystander extensions, during the attack and after it, and
# the bystander's load must pass. Both L2s share the L1's one CPU (two L2s
# at once are dependable only in a 1-vCPU L1). The extension is turned
# off again at the end.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ecs_slice_require
slice_us=1000
# The bystander's load (two locktorture runs of $seconds each) outlives
# the 25 s attack in a default L1. In an L1 of the debug kernel the attack
# takes 92 s and a longer load only slows it down more (2 x 80 s: 196 s),
# so there the count after the attack may be unmeasurable (a SKIP).
seconds=35
rounds=10
by=/tmp/l2-bystander
at=/tmp/l2-attacker

# extensions: the bystander's ecs_extensions so far, empty once it is gone.
extensions() { l2_ecs_extensions "$by_pid"; }

ktap_kmemleak_begin
ktap_begin 11
ecs_slice_check slice-on $slice_us
l2_vm l2-bystander "$by" --smp 2 --cpu host,migratable=off --append "ecs.expect_ecs=1" -- \
	/ecs/tests/lib/ecs_lock_load.sh $seconds &
by_job=$!
# The bystander is registered once its load prints its first result.
i=0
while [ $i -lt 200 ] && ! grep -q '^ok 1 shim-enabled' "$by/ktap.log" 2>/dev/null; do
	kill -0 $by_job 2>/dev/null || break
	sleep 1
	i=$((i + 1))
done
by_pid=$(l2_qemu_pid l2-bystander)
before=$(extensions)
ktap_info "bystander registered after ${i} s; its extensions so far: ${before:-none}"

# The bystander's count every 2 s while the attack runs; the last one
# read is "during" (the bystander may end first in a slow L1).
samples=/tmp/bystander-extensions
: > $samples
(while :; do extensions >> $samples; sleep 2; done) &
sampler=$!
start=$(date +%s)
l2_vm_retry_boot l2-attacker "$at" --smp 1 --cpu host,migratable=off -- /ecs/tests/lib/ecs_bad_msr_load.sh $rounds
at_rc=$?
attack=$(($(date +%s) - start))
kill $sampler
during=$(extensions)
[ -n "$during" ] || during=$(grep . $samples | tail -n 1)
sleep 3
after=$(extensions)
ktap_info "attack took $attack s; bystander extensions: ${before:-none} before, ${during:-none} at its end (or its last during it), ${after:-none} 3 s later"
sed 's/^/    /' "$at.ktap"
ktap_check attacker-gets-gp-and-recovers [ $at_rc = 0 ]
l2_console_clean attacker-console-clean "$at/console.log"
ktap_check bystander-served-during-attack grew "$before" "$during"
if [ -n "$during" ] && [ -z "$after" ]; then
	ktap_skip bystander-served-after-attack "the bystander's load ended before the attack did"
else
	ktap_check bystander-served-after-attack grew "$during" "$after"
fi

wait $by_job
by_rc=$?
sed 's/^/    /' "$by.ktap"
ktap_check bystander-load-passed [ $by_rc = 0 ]
l2_console_clean bystander-console-clean "$by/console.log"
ktap_info "bystander $(grep seconds= "$by/status"), attacker $(grep seconds= "$at/status")"
ecs_slice_check slice-off 0
ktap_check kvm-unloads sh -c "rmmod kvm_amd && rmmod kvm"
l1_host_clean
ktap_kmemleak_check
ktap_end
