#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ecs_pvinfo loads, its report agrees with what the kernel itself detected,
# and it unloads cleanly. Boot with ecs.expect_kvm=1 where the hypervisor
# is known to be KVM (an L2 guest of our L1 host).
. /ecs/tests/lib/ktap.sh

ko=/ecs/modules/ecs_pvinfo.ko
report=/sys/kernel/debug/ecs_pvinfo/features
[ -f $ko ] || ktap_missing_all "$ko is not in this initramfs"

field() { sed -n "s/^$1: //p" $report; }

ktap_begin 8
ktap_check load insmod $ko
if [ ! -r $report ]; then
	ktap_fail report-present "no $report"
	ktap_skip hypervisor-bit "no report"
	ktap_skip kvm-detection "no report"
	ktap_skip kvm-clock "no report"
	ktap_skip expected-hypervisor "no report"
else
	ktap_pass report-present
	sed 's/^/# /' $report

	cpuinfo_hv=0
	grep -qw hypervisor /proc/cpuinfo && cpuinfo_hv=1
	ktap_check hypervisor-bit [ "$(field hypervisor_bit)" = "$cpuinfo_hv" ]

	kernel_kvm=0
	dmesg | grep -q 'Hypervisor detected: KVM' && kernel_kvm=1
	module_kvm=1
	[ "$(field kvm_base)" = none ] && module_kvm=0
	ktap_check kvm-detection [ "$module_kvm" = "$kernel_kvm" ]

	if [ $module_kvm = 1 ]; then
		clock=0
		grep -qw kvm-clock /sys/devices/system/clocksource/clocksource0/available_clocksource && clock=1
		ktap_check kvm-clock [ "$(field KVM_FEATURE_CLOCKSOURCE2)" = "$clock" ]
	else
		ktap_skip kvm-clock "no KVM paravirt interface here"
	fi

	case $(ecs_cmdline expect_kvm) in
	1) ktap_check expected-hypervisor [ $module_kvm = 1 ] ;;
	*) ktap_skip expected-hypervisor "boot did not say which hypervisor to expect" ;;
	esac
fi
ktap_check unload rmmod ecs_pvinfo
ktap_check debugfs-removed [ ! -e /sys/kernel/debug/ecs_pvinfo ]
ktap_end
