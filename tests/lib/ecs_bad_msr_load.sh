#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest half of tests/nested-host/bad_msr_neighbour.sh: a guest that writes
# malformed values to MSR_KVM_ECS on every vCPU, ROUNDS times each
# (default 20). Every write must get #GP and leave the MSR 0; afterwards
# the eCS shim must still register every vCPU (the abuse cost this guest
# nothing it may use). KTAP.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/ecs_msr.sh

ecs_msr_require --host-offers
rounds=${1:-20}
bad_values=$(ecs_msr_bad_values)
cpus=$(nproc)
ktap_begin 4

writes=0 faults=0 nonzero=
start=$(date +%s)
r=0
while [ $r -lt "$rounds" ]; do
	cpu=0
	while [ $cpu -lt "$cpus" ]; do
		while read -r v _; do
			writes=$((writes + 1))
			wrmsr_ecs "$v" $cpu || faults=$((faults + 1))
		done <<EOF
$bad_values
EOF
		[ "$(rdmsr_ecs $cpu)" = 0000000000000000 ] || nonzero="$nonzero round $r cpu $cpu"
		cpu=$((cpu + 1))
	done
	r=$((r + 1))
done
ktap_info "$writes malformed writes on $cpus vCPUs in $(($(date +%s) - start)) s, $faults got #GP"
ktap_check every-write-gp [ $faults = $writes ]
ktap_check msr-stays-zero [ -z "$nonzero" ]
ktap_check shim-registers-after sh -c "insmod /ecs/modules/ecs.ko &&
	[ \"\$(sed -n 's/^registered_cpus: //p' /sys/kernel/debug/ecs/state)\" = $cpus ]"
ktap_check shim-unloads rmmod ecs
ktap_end
