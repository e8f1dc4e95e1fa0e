#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: fuzz the eCS guest-host surface from one L2 while
# another uses eCS normally. With KVM's slice extension on
# (kvm.ecs_slice_us=1000), a 2-vCPU "bystander" L2 registers its shim and
# runs locktorture; a 2-vCPU "fuzzer" L2 then writes random and edge
# values that no host may accept to MSR_KVM_ECS from both vCPUs at once
# for a time budget, toggling its registration and CPU hotplug all the
# while (tests/lib/ecs_msr_fuzz_load.sh).
# Every write must get #GP and leave the registration intact; the
# bystander's extensions must go on during the fuzzing, within their
# bound; the extension turns off again; the L1 must stay clean. The budget
# is ecs.fuzz_seconds= (600 s in make fuzz, FUZZ_SECONDS);
# ecs.fuzz_hotplug=0 leaves the fuzzer's vCPUs online.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ecs_slice_require
fuzz_s=$(ecs_cmdline fuzz_seconds)
fuzz_s=${fuzz_s:-600}
slice_us=1000
# EXTENSION_SLACK_NS (tests/lib/nested.sh): an extension that nothing cuts
# short lasts the bystander's whole 2 s section.
# The bystander's two locktorture runs outlast the fuzzer's boot and budget
# in a default L1; in a debug L1 it may end first (then the last sample
# taken during the fuzzing counts).
by_seconds=$((fuzz_s / 2 + 30))
by=/tmp/l2-fuzz-bystander
fz=/tmp/l2-fuzzer

# extensions: the bystander's ecs_extensions so far, empty once it is gone.
extensions() { l2_ecs_extensions "$by_pid"; }

ktap_kmemleak_begin
ktap_begin 12
ecs_slice_check slice-on $slice_us
samples=/tmp/fuzz-kvm-stats
: > $samples
# shellcheck disable=SC2086 # the names are split on purpose
kvm_stats_sampler $samples /nonexistent $ECS_KVM_STATS &
sampler=$!
l2_vm l2-fuzz-bystander "$by" --smp 2 --cpu host,migratable=off --append "ecs.expect_ecs=1" -- \
	/ecs/tests/lib/ecs_lock_load.sh $by_seconds &
by_job=$!
i=0
while [ $i -lt 200 ] && ! grep -q '^ok 1 shim-enabled' "$by/ktap.log" 2>/dev/null; do
	kill -0 $by_job 2>/dev/null || break
	sleep 1
	i=$((i + 1))
done
by_pid=$(l2_qemu_pid l2-fuzz-bystander)
before=$(extensions)
ktap_info "bystander registered after ${i} s; its extensions so far: ${before:-none}"

counts=/tmp/fuzz-bystander-extensions
: > $counts
(while :; do extensions >> $counts; sleep 2; done) &
counter=$!
l2_vm_retry_boot l2-fuzzer "$fz" --smp 2 --cpu host,migratable=off \
	--append "ecs.fuzz_hotplug=$(ecs_cmdline fuzz_hotplug)" -- /ecs/tests/lib/ecs_msr_fuzz_load.sh "$fuzz_s"
fz_rc=$?
kill $counter
during=$(extensions)
[ -n "$during" ] || during=$(grep . $counts | tail -n 1)
sed 's/^/    /' "$fz.ktap"
ktap_info "bystander extensions: ${before:-none} before the fuzzing, ${during:-none} at its end (or the last during it)"
ktap_check fuzzer-every-write-gp-registration-intact [ $fz_rc = 0 ]
l2_console_clean fuzzer-console-clean "$fz/console.log"
ktap_check bystander-served-during-fuzzing grew "$before" "$during"

wait $by_job
by_rc=$?
kill $sampler
wait $sampler 2>/dev/null
sed 's/^/    /' "$by.ktap"
ktap_check bystander-load-passed [ $by_rc = 0 ]
l2_console_clean bystander-console-clean "$by/console.log"
# KVM's stats stay sane: of the VMs that registered (the fuzzer's shim
# phases too), none had an extension longer than its bound plus slack, and
# every count only grew.
max_ns=$(awk '{ if ($9 > m) m = $9 } END { print m + 0 }' $samples)
ktap_info "the sample with it: $(awk -v m="$max_ns" '$9 == m { print; exit }' $samples) ($ECS_KVM_STATS)"
ktap_info "longest extension of any VM: $max_ns ns (bound $((slice_us * 1000)) ns + $EXTENSION_SLACK_NS ns slack)"
ktap_check kvm-stats-extension-bounded [ "$max_ns" -gt 0 -a "$max_ns" -le $((slice_us * 1000 + EXTENSION_SLACK_NS)) ]
ktap_check kvm-stats-monotonic sh -c "awk '{
	for (i = 3; i <= 9; i++) { k = \$1 \" \" i; if (\$i < last[k]) bad++; last[k] = \$i } }
	END { exit bad > 0 || NR < 2 }' $samples"
ecs_slice_check slice-off 0
ktap_check kvm-unloads sh -c "rmmod kvm_amd && rmmod kvm"
l1_host_clean
ktap_kmemleak_check
ktap_end
