#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: the KVM selftests of our L1 kernel's tree
# (scripts/build-selftests.sh), one result each. x86/ecs_test is the
# host series' own test of MSR_KVM_ECS and the slice extension; the others
# are upstream's, for what the series touches (MSRs, CPUID, PV features,
# stats, state save/restore, the TSC, steal time), and must pass with the
# series (docs/testing.md lists the ones left out and why). A test that
# skips says why. With ecs.stock_control=1 this runs in the control L1 of
# Debian's own kernel (tests/run-all.sh, nested-host-stock), which has no
# eCS: there the series' own tests skip as any other test does.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

dir=/ecs/selftests/kvm
[ -x "$dir/ecs_test" ] || ktap_missing_all "no KVM selftests in this initramfs (scripts/build-selftests.sh)"
nested_prepare
# The series' own first.
tests="ecs_test kvm_pv_test"
for f in "$dir"/*; do
	case ${f##*/} in ecs_test | kvm_pv_test) ;; *) tests="$tests ${f##*/}" ;; esac
done
# ECS_KVM_SELFTESTS="name ...": only those (make check's debug L1).
if [ -n "${ECS_KVM_SELFTESTS:-}" ]; then
	tests=$(for t in $tests; do
		case " $ECS_KVM_SELFTESTS " in *" $t "*) echo "$t" ;; esac
	done)
fi
ktap_begin $(($(echo "$tests" | wc -w) + 1))
for t in $tests; do
	out=$(cd /tmp && timeout 120 "$dir/$t" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	case $rc in
	0) ktap_pass "$t" ;;
	4)
		why=$(echo "$out" | grep -i 'skip\|requirement' | tail -n 1)
		case $t in
		# The series' own: its feature is missing, not a test to skip,
		# except in the stock control L1.
		ecs_test | kvm_pv_test)
			if [ "$(ecs_cmdline stock_control)" = 1 ]; then
				ktap_skip "$t" "the stock kernel has no eCS: ${why:-skipped}"
			else
				ktap_missing "$t" "${why:-skipped}"
			fi
			;;
		*) ktap_skip "$t" "${why:-skipped}" ;;
		esac
		;;
	*) ktap_fail "$t" "exit status $rc" ;;
	esac
done
l1_host_clean
ktap_end
