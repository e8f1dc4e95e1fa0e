#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# eSCHDSPIN with real host hints: a 2-vCPU L2 of this L1, whose
# vCPU threads share the L1's one CPU, with the eCS shim and
# modules/guest/eschdspin under eSCHDSPIN, KVM's slice extension on here
# (kvm.ecs_slice_us=1000). Its VMM opts in to eCS with
# pcpu_overloaded (--kvm-ecs 3, KVM_X86_ECS_PCPU_OVERLOADED; l2_vm's
# default, said here because the hints need it). The L2
# (tests/lib/eschdspin_hints_load.sh) checks that eSCHDSPIN reads the
# host's hints instead of falling back, that its waiters get their locks
# under locktorture and the Psearchy-like load, that the host's view sent
# some to sleep, and that an unload in the middle of the load loses
# nothing. The extension is turned off again at the end.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ecs_slice_require
ktap_begin 5
ecs_slice_check slice-on 1000
out=/tmp/l2-eschdspin
l2_vm_retry_boot l2-eschdspin "$out" --smp 2 --cpu host,migratable=off --kvm-ecs 3 \
	--append "ecs.expect_ecs=1" -- /ecs/tests/lib/eschdspin_hints_load.sh 6
rc=$?
l2_results "$out" $rc
ecs_slice_check slice-off 0
l1_host_clean
ktap_end
