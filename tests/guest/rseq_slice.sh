#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# rseq's time slice extension (CONFIG_RSEQ_SLICE_EXTENSION, 7.0), the
# upstream mechanism the host series' slice extension for vCPUs follows:
# the pinned tree's tools/testing/selftests/rseq/slice_test passes (a task
# and a noise thread on one CPU, three variants of 5 s), and the kernel
# granted it extensions: the task saw its grant and yielded (or, in the
# no_yield variant, made a syscall) at least once.
. /ecs/tests/lib/ktap.sh

dir=/ecs/selftests/rseq
[ -x $dir/slice_test ] || ktap_missing_all "no rseq selftests in this initramfs (scripts/build-selftests.sh)"
# As the tree's run_timeslice_test.sh: glibc must not register rseq itself.
GLIBC_TUNABLES=glibc.pthread.rseq=0
export GLIBC_TUNABLES

# rseq's bound at its maximum, 50 us: the 5 us default is shorter than a
# TCG guest's way back to user space after a grant, so the grant can
# expire before the task sees it (a debug guest saw 0 grants in 15 s at
# 5 us while the kernel cleared its request thousands of times).
bound=/sys/kernel/debug/rseq/slice_ext_nsec
[ -w $bound ] && echo 50000 > $bound

ktap_begin 3
out=$($dir/check_optimized 2>&1)
rc=$?
[ -n "$out" ] && echo "$out" | sed 's/^/# /'
ktap_check rseq-optimized-mode [ $rc = 0 ]

out=$($dir/slice_test 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
case $rc in
0) ktap_pass slice-test ;;
4)
	# The kernel lacks the extension: nothing to count grants of either.
	why=$(echo "$out" | grep -i skip | tail -n 1)
	ktap_missing slice-test "$why"
	ktap_missing slice-extensions-granted "$why"
	ktap_end
	;;
*) ktap_fail slice-test "exit status $rc" ;;
esac
granted=$(echo "$out" | awk '$2 == "Yielded" || $2 == "Aborted" { n += $3 } END { print n + 0 }')
ktap_info "grants seen by the task: $granted"
ktap_check slice-extensions-granted [ "$granted" -gt 0 ]
ktap_end
