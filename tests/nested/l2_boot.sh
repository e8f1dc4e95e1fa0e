#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: load kvm_amd, boot one L2 guest of the same kernel
# under it, and run the guest selftests in L2. The L2's own KTAP is nested
# under l2-selftests; ecs.expect_kvm=1 makes its pvinfo test insist that
# the L2 sees our KVM's paravirt interface. The L2 runs the pvinfo and ecs
# selftests (the ones whose answer depends on the hypervisor).
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ktap_begin 3
ktap_check kvm-amd-loaded [ -c /dev/kvm ]
ktap_info "kvm_amd: npt=$(cat /sys/module/kvm_amd/parameters/npt) nested=$(cat /sys/module/kvm_amd/parameters/nested)"

out=/tmp/l2-boot
# Only the selftests whose answer differs under KVM: the L1 hung twice
# (silent console, QEMU's SVM emulation) while the L2 ran all of them.
l2_vm l2 "$out" --smp 2 --append "ecs.expect_kvm=1" -- \
	env ECS_SUITE_ONLY="pvinfo ecs" /ecs/tests/run-suite.sh /ecs/tests/guest
l2_results "$out" $?
ktap_end
