#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: a vCPU created in a VM whose TSC rate KVM cannot
# give it (1000 ppm below or above the host's, and TCG's SVM has no TSC
# scaling) still has a TSC that runs. Without host-patches/0006 the vCPU
# was left with a TSC multiplier of 0 and KVM read its TSC as standing
# still, which made an L2's timers fire tens of seconds late
# (docs/kvm-tsc-ratio-zero.md).
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ktap_begin 3
for ppm in 0 -1000 1000; do
	case $ppm in
	0) name=same-rate-tsc-runs ;;
	-*) name=slower-rate-tsc-runs ;;
	*) name=faster-rate-tsc-runs ;;
	esac
	out=$(/ecs/bin/kvm_tsc_rate "$ppm" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	ktap_check "$name" [ $rc = 0 ]
done
ktap_end
