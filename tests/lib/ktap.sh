# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
# KTAP output for the shell selftests (busybox ash and bash alike), with
# kselftest exit codes: 0 pass, 1 fail, 4 skip. The results and totals are
# the pinned tree's kselftest ktap_helpers.sh; this file adds what our
# tests need around them (checks, CI's rule for skips, kernel-log marks,
# the splat oracle, leak checks).
#
#   . /ecs/tests/lib/ktap.sh
#   ktap_begin 3
#   ktap_check NAME COMMAND...
#   ktap_pass NAME / ktap_fail NAME [why] / ktap_skip NAME why
#   ktap_end

# ktap_helpers.sh: beside this file in every initramfs (scripts/mkinitramfs.sh
# copies it), else in the built tree (host-side tests, run by make with
# ECS_KERNEL_DIR).
for _h in /ecs/tests/lib/ktap_helpers.sh \
	"${ECS_KERNEL_DIR:-/nonexistent}/src/tools/testing/selftests/kselftest/ktap_helpers.sh"; do
	[ -r "$_h" ] && break
done
if [ ! -r "$_h" ]; then
	echo "ktap.sh: no kselftest ktap_helpers.sh (run through make, which sets ECS_KERNEL_DIR)" >&2
	exit 1
fi
# shellcheck source=/dev/null # the pinned tree's file, found above
. "$_h"

ktap_begin() {
	ktap_print_header
	ktap_set_plan "$1"
}

ktap_info() {
	echo "# $*"
}

ktap_pass() {
	ktap_test_pass "$1"
}

ktap_fail() {
	[ -n "${2:-}" ] && echo "# $1: $2"
	ktap_test_fail "$1"
}

ktap_skip() {
	echo "# $1: $2"
	ktap_test_skip "$1"
}

# ktap_check NAME COMMAND...: pass if COMMAND succeeds.
ktap_check() {
	_ktap_name=$1
	shift
	if "$@"; then ktap_pass "$_ktap_name"; else ktap_fail "$_ktap_name" "failed: $*"; fi
}

# ktap_skip_test WHY: the whole test cannot run here.
ktap_skip_test() {
	ktap_print_header
	ktap_skip_all "$*"
	exit "$KSFT_SKIP"
}

# Under CI (CI=true; a VM has ecs.ci=1 on its command line, which
# scripts/vm adds) a skip that could hide a regression is a failure.
ktap_ci() {
	[ "${CI:-}" = true ] || [ "$(ecs_cmdline ci)" = 1 ]
}

# ktap_missing_all WHY: the whole test cannot run because a part of the
# suite that setup and make provide is missing (a module, a load, the L2's
# images, QEMU). A SKIP on a developer's machine, a failure under CI.
ktap_missing_all() {
	if ktap_ci; then
		ktap_print_header
		ktap_print_msg "missing under CI, not a skip: $*"
		ktap_set_plan 0
		exit "$KSFT_FAIL"
	fi
	ktap_skip_test "$*"
}

# ktap_missing NAME WHY: one result that cannot run because a part of the
# suite is missing, as ktap_missing_all: a SKIP, a failure under CI.
ktap_missing() {
	if ktap_ci; then
		ktap_fail "$1" "missing under CI, not a skip: $2"
	else
		ktap_skip "$1" "$2"
	fi
}

# ktap_mark NAME: put a marker line in the kernel log. ktap_dmesg_since
# NAME prints the last such marker and what came after it: all of the log
# without NAME, or once the ring buffer has wrapped past the marker (then
# every line left is newer). Never empty: console-check fails an empty log. A count of lines (dmesg | tail -n +N) is wrong after a
# wrap, which locktorture's output causes.
ktap_mark() {
	echo "<5>ecs-ktap: mark $1" > /dev/kmsg
}

ktap_dmesg_since() {
	dmesg | awk -v m="ecs-ktap: mark ${1:-}" -v want="${1:-}" '
		{ line[NR] = $0 }
		want != "" && substr($0, length($0) - length(m) + 1) == m { from = NR }
		END { for (i = from ? from : 1; i <= NR; i++) print line[i] }'
}

# ktap_log_has MARK ERE: a line after MARK matches ERE (for ktap_check).
ktap_log_has() {
	ktap_dmesg_since "$1" | grep -qE "$2"
}

# ktap_no_splat NAME [MARK [ERE]]: one result, console-check (the suite's
# one splat oracle) finds nothing in ktap_dmesg_since MARK; ERE adds a
# test's own patterns (its error messages).
ktap_no_splat() {
	_log=/tmp/ktap-dmesg.$$
	ktap_dmesg_since "${2:-}" > "$_log"
	_found=$(console-check - < "$_log")
	_rc=$?
	if [ -n "${3:-}" ] && grep -E "$3" "$_log" > "$_log.own"; then
		_found="$_found
$(sed 's/^/own pattern: /' "$_log.own")"
		_rc=1
	fi
	rm -f "$_log" "$_log.own"
	[ $_rc = 0 ] || echo "$_found" | grep . | head -n 20 | sed 's/^/# /'
	ktap_check "$1" [ $_rc = 0 ]
}

# The totals, then the exit code: 1 if anything failed or the plan was not
# met, 4 if nothing passed (all skipped), else 0.
ktap_end() {
	_ran=$((KTAP_TESTNO - 1))
	if [ "$_ran" -ne "$KSFT_NUM_TESTS" ]; then
		echo "# planned $KSFT_NUM_TESTS tests but ran $_ran"
		exit "$KSFT_FAIL"
	fi
	ktap_print_totals
	[ "$KTAP_CNT_FAIL" -eq 0 ] || exit "$KSFT_FAIL"
	[ "$KTAP_CNT_PASS" -gt 0 ] || exit "$KSFT_SKIP"
	exit "$KSFT_PASS"
}

# Kernel command-line value of ecs.NAME=VALUE, empty if absent.
ecs_cmdline() {
	tr ' ' '\n' < /proc/cmdline | sed -n "s/^ecs\.$1=//p" | tail -n 1
}

# ktap_rejects NAME KO MODULE "ARGS" PATTERN: `insmod KO ARGS` must fail with
# EINVAL and a kernel message matching PATTERN (the parameter's name).
ktap_rejects() {
	ktap_mark "rejects-$1"
	# shellcheck disable=SC2086 # ARGS are split on purpose
	if _err=$(insmod "$2" $4 2>&1); then
		rmmod "$3"
		ktap_fail "$1" "insmod succeeded"
	elif ! echo "$_err" | grep -q 'Invalid argument'; then
		ktap_fail "$1" "not EINVAL: $_err"
	elif ! ktap_dmesg_since "rejects-$1" | grep -q "$5"; then
		ktap_fail "$1" "no error naming it: $(dmesg | tail -n 2)"
	else
		ktap_pass "$1"
	fi
}

# ktap_require_module KO: skip the whole test (fail it under CI) unless the
# module KO is in this initramfs and debugfs, where our modules report, is
# mounted.
ktap_require_module() {
	[ -f "$1" ] || ktap_missing_all "$1 is not in this initramfs"
	[ -d /sys/kernel/debug ] || ktap_missing_all "no debugfs"
}

# ktap_settled_kb FIELD: /proc/meminfo's FIELD (Slab, SUnreclaim) in kB
# once the slab allocator holds only live objects: every cache is shrunk
# (kmem_cache_shrink() through /sys/kernel/slab/*/shrink), which flushes
# the per-CPU slabs, frees the empty ones and, under KASAN, first empties
# that cache's part of the quarantine, where freed objects would otherwise
# wait (megabytes of them) for a later allocation to push them out. The
# debug kernel's own bookkeeping is left out. DEBUG_OBJECTS' entries
# (debug_objects_cache) are not dropped when their memory is freed unless
# DEBUG_OBJECTS_FREE is on, so they grow with every address ever used for
# an rcu_head: 17,776 -> 105,904 entries over bad_input, rcu_membench and
# lifecycle (objs_freed 0 in debugfs' debug_objects/stats). kmemleak keeps
# one kmemleak_object per live allocation, which is itself counted. A
# leaked object stays in its own cache either way.
ktap_settled_kb() {
	for _f in /sys/kernel/slab/*/shrink; do
		echo 1 > "$_f"
	done 2>/dev/null
	_debug=$(awk '$1 == "debug_objects_cache" || $1 == "kmemleak_object" { kb += $15 * $6 * 4 }
		END { print kb + 0 }' /proc/slabinfo 2>/dev/null)
	echo $(($(sed -n "s/^$1: *\([0-9]*\) kB/\1/p" /proc/meminfo) - ${_debug:-0}))
}

# ktap_slab_not_leaked BEFORE_KB AFTER_KB LIMIT_KB: one result, the Slab
# total (ktap_settled_kb Slab) grew by less than LIMIT_KB.
ktap_slab_not_leaked() {
	ktap_check slab-not-leaked [ $(($2 - $1)) -lt "$3" ]
}

# kmemleak (the debug kernel has it, scanning only on demand). Call
# ktap_kmemleak_begin before the work and ktap_kmemleak_check after it: the
# check scans and fails if any object allocated since is unreferenced,
# printing the first reports; it skips on a kernel without kmemleak.
KTAP_KMEMLEAK=/sys/kernel/debug/kmemleak

ktap_kmemleak_begin() {
	[ -w $KTAP_KMEMLEAK ] || return 0
	# What is unreferenced now (boot, earlier tests) is not ours: mark it.
	echo scan > $KTAP_KMEMLEAK
	echo clear > $KTAP_KMEMLEAK
}

ktap_kmemleak_check() {
	if [ ! -w $KTAP_KMEMLEAK ]; then
		ktap_skip kmemleak-clean "no kmemleak in this kernel (the debug scenario has it)"
		return
	fi
	# kmemleak reports only objects older than 5 s, and an object whose
	# last reference was in flight may survive one scan: wait, scan twice.
	sleep 6
	echo scan > $KTAP_KMEMLEAK
	echo scan > $KTAP_KMEMLEAK
	_leaks=$(grep -c '^unreferenced object' $KTAP_KMEMLEAK)
	if [ "$_leaks" = 0 ]; then
		ktap_pass kmemleak-clean
	else
		head -n 40 $KTAP_KMEMLEAK | sed 's/^/# /'
		ktap_fail kmemleak-clean "$_leaks unreferenced objects"
	fi
}
