#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: the eCS host side of our L1 kernel, seen from an L2
# guest that QEMU starts with -cpu host,migratable=off (QEMU passes an
# unnamed KVM feature bit such as KVM_FEATURE_ECS only then). The L2 runs
# the ecs selftest expecting the shim to register with the host
# (ecs.expect_ecs=1), the ecs_host selftest (MSR checks and #GP, the
# host's hints), ecs_lockbench (whose vCPUs must be seen preempted in
# their holds) and lifecycle (with 3 load cycles a module, not 100: its
# vCPU hotplug must leave every vCPU registered with the host again).
# A second L2, whose VMM does not opt in (KVM_CAP_X86_ECS), must find the
# MSRs #GP although CPUID shows the feature. Afterwards the L1 must still
# be healthy.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ktap_begin 6
ktap_check kvm-offers-ecs [ "$(cat /sys/module/kvm/parameters/ecs 2>/dev/null)" = Y ]

out=/tmp/l2-ecs-host
l2_vm_retry_boot l2-ecs "$out" --smp 2 --cpu host,migratable=off \
	--append "ecs.expect_kvm=1 ecs.expect_ecs=1" -- \
	env ECS_SUITE_ONLY="ecs ecs_host lifecycle ecs_lockbench" LIFECYCLE_CYCLES=3 /ecs/tests/run-suite.sh /ecs/tests/guest
l2_results "$out" $?

out=/tmp/l2-ecs-no-optin
l2_vm_retry_boot l2-no-optin "$out" --smp 1 --cpu host,migratable=off --kvm-ecs 0 -- \
	/ecs/tests/lib/ecs_no_optin_load.sh
l2_results "$out" $?
l1_host_clean
ktap_end
