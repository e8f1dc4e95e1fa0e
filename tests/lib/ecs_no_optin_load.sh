#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest half of the second L2 of tests/nested-host/ecs_host.sh, whose VMM
# did not enable KVM_CAP_X86_ECS: CPUID still shows KVM_FEATURE_ECS (the
# host supports it), but both MSRs #GP, so the shim registers no CPU and
# counts each refused write.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/ecs_msr.sh
dir=/sys/kernel/debug/ecs
field() { sed -n "s/^$1: //p" $dir/state; }

ecs_msr_require --host-offers
ktap_begin 4
ktap_check msr-read-gp [ -z "$(rdmsr_ecs 0)" ]
ktap_check shim-loads insmod /ecs/modules/ecs.ko
ncpus=$(grep -c ^processor /proc/cpuinfo)
ktap_info "shim: $(field state), registered $(field registered_cpus), $(field msr_writes) writes, $(field msr_errors) refused"
ktap_check shim-registers-nothing [ "$(field registered_cpus)" = 0 -a "$(field msr_errors)" -ge "$ncpus" ]
ktap_check shim-unloads rmmod ecs
ktap_end
