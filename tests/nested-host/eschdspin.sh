#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# eSCHDSPIN with real host hints: a 2-vCPU L2 of this L1, whose
# vCPU threads share the L1's one CPU, with the eCS shim and
# modules/guest/eschdspin under eSCHDSPIN, the ecs_host policy loaded here. The
# L2 (tests/lib/eschdspin_hints_load.sh) checks that eSCHDSPIN reads the
# host's hints instead of falling back, that its waiters get their locks
# under locktorture and the Psearchy-like load, that the host's view sent
# some to sleep, and that an unload in the middle of the load loses
# nothing.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
host_ko=/ecs/modules/ecs_host.ko
[ -f $host_ko ] || ktap_missing_all "$host_ko is not in this initramfs"
ktap_begin 5
ktap_check policy-loaded insmod $host_ko
out=/tmp/l2-eschdspin
l2_vm_retry_boot l2-eschdspin "$out" --smp 2 --cpu host,migratable=off --append "ecs.expect_ecs=1" -- \
	/ecs/tests/lib/eschdspin_hints_load.sh 6
rc=$?
l2_results "$out" $rc
ktap_check policy-unloaded rmmod ecs_host
l1_host_clean
ktap_end
