#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the pinned tree's selftests that our VMs run, from a kernel tree
# that build-kernel.sh made (both series applied), statically linked for
# the busybox initramfs:
#  - kvm/: for an L1 host (tests/nested-host/kvm_selftests.sh), the host
#    series' own x86/ecs_test (and the row it adds to x86/kvm_pv_test) and
#    the upstream tests that exercise what the series touches;
#  - rseq/: for the guest suite (tests/guest/rseq_slice.sh), rseq's time
#    slice extension test, the upstream mechanism the host series' slice
#    extension for vCPUs is modelled on; and, linked with the same rseq
#    library, the benchmark's user-space section under such an extension
#    (scripts/bench/vm/rseq_slice_load.c).
#
#   build-selftests.sh KDIR
#
# They go to KDIR/selftests/, and are built again only when KDIR holds
# another kernel build (its built-<key> stamp) or the benchmark's load
# changed.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

[ $# = 1 ] || die "usage: $0 KDIR"
kdir=$1
stamp=$(cd "$kdir" && compgen -G "built-*" | head -1) || die "$kdir holds no finished kernel build"
load=$ECS_REPO/scripts/bench/vm/rseq_slice_load.c
stamp="$stamp $(sha256sum < "$load" | cut -c1-16)"
out=$kdir/selftests
[ "$(cat "$out/.built" 2>/dev/null)" = "$stamp" ] && exit 0

# Upstream tests left out, each failing on Debian's stock 7.3.4 kernel in
# a TCG L1 too (docs/testing.md): msrs_test (TCG reads SYSENTER_ESP back
# as 64 bits), nested_exceptions_test and svm_nested_soft_inject_test (TCG's
# SVM has no NRIPS), debug_regs (an unhandled #BP under TCG), and
# set_memory_region_test (needs transparent huge pages, off in our config).
tests=(
	x86/ecs_test x86/kvm_pv_test
	x86/cpuid_test x86/feature_msrs_test x86/fix_hypercall_test x86/hwcr_msr_test
	x86/kvm_clock_test x86/platform_info_test x86/set_sregs_test x86/state_test
	x86/svm_vmcall_test x86/sync_regs_test x86/tsc_msrs_test x86/tsc_rate_mismatch_test
	x86/tsc_scaling_sync
	x86/userspace_msr_exit_test x86/xapic_state_test
	kvm_binary_stats_test steal_time system_counter_offset_test
)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ecs-selftests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building ${#tests[@]} KVM selftests and rseq's slice_test from $kdir/src"
make -s -C "$kdir/src" O="$tmp/obj" INSTALL_HDR_PATH="$tmp/usr" headers_install
targets=()
for t in "${tests[@]}"; do
	targets+=("$tmp/out/$t")
done
# Compiler warnings of the upstream tests are not ours to fix: keep them
# out of the log unless the build fails.
make -C "$kdir/src/tools/testing/selftests/kvm" -j"$(nproc)" OUTPUT="$tmp/out" \
	INSTALL_HDR_PATH="$tmp/usr" EXTRA_CFLAGS=-static LDFLAGS=-static "${targets[@]}" \
	> "$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; die "building the KVM selftests failed"; }
rm -rf "$out.tmp"
mkdir -p "$out.tmp/kvm" "$out.tmp/rseq"
for t in "${tests[@]}"; do
	install -m 755 "$tmp/out/$t" "$out.tmp/kvm/$(basename "$t")"
done
# rseq's Makefile links its tests against a shared librseq.so: build the
# two the guest runs with rseq.c linked in instead.
rseq=$kdir/src/tools/testing/selftests/rseq
for t in check_optimized slice_test; do
	gcc -O2 -Wall -static -I"$rseq" -isystem "$tmp/usr/include" -I"$rseq/.." \
		-I"$kdir/src/tools/include" -o "$out.tmp/rseq/$t" "$rseq/$t.c" "$rseq/rseq.c" \
		-lpthread -ldl 2> "$tmp/rseq-$t.log" || { cat "$tmp/rseq-$t.log" >&2; die "building rseq's $t failed"; }
done
gcc -O2 -Wall -Werror -static -I"$rseq" -isystem "$tmp/usr/include" -I"$rseq/.." \
	-I"$kdir/src/tools/include" -o "$out.tmp/rseq/rseq_slice_load" "$load" "$rseq/rseq.c" \
	-lpthread -ldl || die "building $load failed"
echo "$stamp" > "$out.tmp/.built"
rm -rf "$out"
mv "$out.tmp" "$out"
