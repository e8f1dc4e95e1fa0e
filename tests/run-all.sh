#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: every test the suite has, as one nested KTAP stream.
#   1. host-side Rust (cargo test in tests/host), the linters of make lint
#      (rustfmt, clippy, shellcheck, pyflakes), host-side script tests
#      (tests/scripts)
#   2. the guest selftests (tests/guest) in a TCG guest
#   3. the nested selftests (tests/nested) in a 1-vCPU L1 KVM host under
#      TCG, which boots one L2 guest of the same kernel at a time (in a
#      2-vCPU L1 an L2 running locktorture hung; two L2s at once are
#      tests/stress/, run by make campaign)
#   4. the eCS host side end to end (tests/nested-host) in the same kind
#      of L1, with a shorter time limit (a run takes about 2 minutes); then
#      its KVM selftests again in an L1 of Debian's own build of the same
#      kernel (nested-host-stock): every upstream test must give the same
#      result there, and the series' own tests what they must without it
#   5. the guest selftests again on the debug kernel (guest-debug:
#      lockdep, KASAN, kmemleak, ...; scripts/kconfig/debug.config), whose
#      console must show no splat
#   6. 4 again in an L1 of the debug kernel whose L2s run the default
#      one (nested-host-debug): KVM with the host patches under lockdep,
#      KASAN and kmemleak
# Under CI's limit (90 minutes for a cold run, kernel builds included, on
# two cores) 5 and 6 are cut to what finds bugs in our code, not to what
# only repeats the default kernel's runs slower: lifecycle loads each
# module 10 times, not 100, and the debug L1 runs the KVM selftests that
# drive the series' host paths (ecs_test: MSRs, restore, the slice
# extension and directed yield; kvm_pv_test) and the upstream ones for
# the state, stats and TSC rate it changes, but boots no L2 kernel: on a
# slower machine an L2 of a debug L1 took minutes to boot or died at boot
# (docs/nested-reliability.md). ECS_DEBUG_FULL=1 (make check-debug) runs
# 5 and 6 whole and 3 in a debug L1 as well (nested-debug).
# A nested suite whose L1 stops dead (QEMU's SVM emulation) runs once more,
# said in the KTAP; both consoles must be clean (vm_suite says how).
# Results go to results/<time>-<commit>/ (git-ignored); the last lines are
# the kselftest totals and "N passed, N failed, N skipped".
#
# Environment: ECS_KERNEL, ECS_GUEST_INITRD, ECS_HOST_INITRD,
# ECS_DEBUG_KERNEL, ECS_DEBUG_GUEST_INITRD, ECS_DEBUG_HOST_INITRD (set by
# make), ECS_CHECK_ONLY="cargo lint scripts guest nested nested-host
# nested-host-stock guest-debug nested-host-debug" (the default) or a
# part, or nested-debug, e.g.
# ECS_CHECK_ONLY="nested-host nested-host-stock" for the eCS host side
# and the control alone (make check-host);
# ECS_CHECK_ONLY=fuzz (make fuzz, never part of the default) fuzzes the
# eCS guest-host surface for ECS_FUZZ_SECONDS.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
only=${ECS_CHECK_ONLY:-cargo lint scripts guest nested nested-host nested-host-stock guest-debug nested-host-debug}
. "$repo/scripts/lib/common.sh"
results=$(results_dir check)
source_revision > "$results/COMMIT"
ktap="$results/check.ktap"
# Seconds between an L1's heartbeat lines; six missed end it.
heartbeat=20
# What the debug suites leave out unless ECS_DEBUG_FULL=1 (see the top).
if [ "${ECS_DEBUG_FULL:-0}" = 1 ]; then
	debug_guest_env=()
	debug_host_env=()
else
	debug_guest_env=(LIFECYCLE_CYCLES=10)
	debug_host_env=(ECS_SUITE_ONLY=kvm_selftests
		"ECS_KVM_SELFTESTS=ecs_test kvm_pv_test state_test kvm_binary_stats_test tsc_rate_mismatch_test")
fi

suites=()
for s in cargo lint scripts guest nested nested-host nested-host-stock guest-debug nested-debug nested-host-debug fuzz; do
	case " $only " in *" $s "*) suites+=("$s") ;; esac
done

emit() { echo "$*" | tee -a "$ktap"; }
indent() { sed -u 's/^/    /' | tee -a "$ktap"; }

# cargo's own lines become KTAP results.
cargo_suite() {
	local log="$results/cargo.log"
	(cd "$repo/tests/host" && cargo test --color never 2>&1) > "$log"
	local rc=$?
	local n
	n=$(grep -cE '^test .* \.\.\. ' "$log")
	echo "TAP version 13"
	echo "1..$n"
	awk '/^test .* \.\.\. / {
		i++; name=$2; res=$NF
		if (res == "ok") print "ok " i " " name
		else if (res == "ignored") print "ok " i " " name " # SKIP ignored"
		else print "not ok " i " " name
	}' "$log"
	[ $rc = 0 ] || { echo "# cargo test failed (exit $rc):"; tail -n 20 "$log" | sed 's/^/# /'; }
	return $rc
}

# The linters of make lint, one case each: rustfmt over our modules, the
# shell linter over our scripts, pyflakes over our Python, and one clippy
# build of every module.
lint_suite() {
	local t i=0 rc=0
	echo "TAP version 13"
	echo "1..4"
	for t in rustfmt shell python clippy; do
		i=$((i + 1))
		if make -C "$repo" --no-print-directory -s "lint-$t" > "$results/lint-$t.log" 2>&1; then
			echo "ok $i $t"
		else
			grep -vE '^make(\[[0-9]+\])?: ' "$results/lint-$t.log" | head -n 40 | sed 's/^/# /'
			echo "not ok $i $t"
			rc=1
		fi
	done
	return $rc
}

# missing WHY: a whole suite cannot run for want of a part that setup.sh
# and make provide. A SKIP on a developer's machine; under CI (CI=true) a
# failure, since it would hide every regression the suite looks for.
missing() {
	if [ "${CI:-}" = true ]; then
		echo "# missing under CI, not a skip: $*"
		echo "1..0"
		return 1
	fi
	echo "1..0 # SKIP $*"
	return 4
}

# vm_suite NAME KERNEL INITRD [vm options] -- COMMAND...
vm_suite() {
	local name=$1 kernel=$2 initrd=$3
	shift 3
	if ! command -v qemu-system-x86_64 >/dev/null; then
		missing "qemu-system-x86_64 is not installed (scripts/setup.sh)"
		return
	fi
	# Debian's binary has the fault of docs/nested-reliability.md: a
	# developer may run it, CI must run the suite's own.
	if [ -z "${ECS_QEMU:-}" ] && [ "${CI:-}" = true ]; then
		missing "the suite's QEMU is not built (scripts/setup.sh builds it)"
		return
	fi
	if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
		missing "no kernel or initramfs: run make (kernel ${kernel:-unset})"
		return
	fi
	local rc
	vm_attempt "$name" "$kernel" "$initrd" "$@"
	rc=$?
	# An L1 KVM host under TCG can stop dead while an L2 runs: QEMU 10.0
	# loses an interrupt's notice (docs/nested-reliability.md), which
	# scripts/vm's nudge should recover within a second. Its heartbeat
	# (scripts/vm --heartbeat) tells that apart from an L1 that is only
	# slow and ends it after two minutes of silence. That is not a test
	# result, so the suite runs once more, said in the KTAP, the hung
	# attempt kept beside the new one. A failure of any other kind, a
	# second hang or a hang of a plain guest is never retried.
	case $name in nested*) ;; *) return $rc ;; esac
	[ $rc = 1 ] && vm_stopped_dead "$results/$name" || return $rc
	rm -rf "$results/$name.hung"
	mv "$results/$name" "$results/$name.hung"
	mv "$results/$name.err" "$results/$name.hung.err"
	echo "# $name: retrying once; the hung attempt is in ${results#"$repo"/}/$name.hung"
	echo "$name" >> "$results/retried"
	vm_attempt "$name" "$kernel" "$initrd" "$@"
}

vm_attempt() {
	local name=$1 kernel=$2 initrd=$3
	shift 3
	"$repo/scripts/vm" --kernel "$kernel" --initrd "$initrd" --name "$name" --out "$results/$name" "$@" 2> "$results/$name.err"
	local rc=$?
	if [ $rc != 0 ] && [ $rc != 4 ]; then
		sed 's/^/# /' "$results/$name.err"
	fi
	return $rc
}

# The control: kvm_selftests.sh in an L1 of Debian's own build of the
# pinned kernel (scripts/setup.sh unpacks it), with KVM's modules added
# to the host image. Its results are data, kept in results/, not KTAP of
# this run (the series' own tests fail or skip there by design); what
# counts is the comparison with the nested-host suite's.
stock_suite() {
	local stock rc
	stock=$(stock_dir)
	if [ ! -f "$stock/.complete" ]; then
		missing "no stock kernel in $stock (scripts/setup.sh)"
		return
	fi
	if [ ! -f "$results/nested-host/ktap.log" ]; then
		missing "the nested-host suite, the control's comparison, did not run in this check"
		return
	fi
	vm_suite nested-host-stock "$stock/vmlinuz" "${ECS_HOST_INITRD:-}" \
		--add-cpio "$stock/kvm-modules.cpio" --smp 1 --mem 2G --timeout 600 \
		--heartbeat $heartbeat --append "idle=poll ecs.stock_control=1" \
		-- /ecs/tests/nested-host/kvm_selftests.sh > "$results/nested-host-stock.out"
	rc=$?
	# 1: some test failed, as tsc_rate_mismatch_test must there.
	case $rc in 0 | 1) ;; *) cat "$results/nested-host-stock.out"; return $rc ;; esac
	if ! grep -Eq '^(not )?ok [0-9]+ l1-host-clean' "$results/nested-host-stock/ktap.log" 2>/dev/null; then
		sed 's/^/# /' "$results/nested-host-stock.out"
		echo "# the stock L1 did not finish its selftests (exit $rc)"
		echo "1..0"
		return 1
	fi
	"$repo/scripts/lib/selftests_vs_stock.py" "$results/nested-host/ktap.log" \
		"$results/nested-host-stock/ktap.log"
}

# Each VM suite adds a second result: its console is free of splats.
planned=0
for s in "${suites[@]}"; do
	case $s in guest* | nested* | fuzz) planned=$((planned + 2)) ;; *) planned=$((planned + 1)) ;; esac
done
emit "TAP version 13"
emit "1..$planned"
i=0
for s in "${suites[@]}"; do
	i=$((i + 1))
	start=$(date +%s)
	case $s in
	cargo) cargo_suite | indent ;;
	lint) lint_suite | indent ;;
	scripts) "$repo/tests/run-suite.sh" "$repo/tests/scripts" 300 | indent ;;
	guest) vm_suite guest "${ECS_KERNEL:-}" "${ECS_GUEST_INITRD:-}" --smp 2 --mem 1G --timeout 900 \
		-- /ecs/tests/run-suite.sh /ecs/tests/guest 600 | indent ;;
	# KASAN and lockdep make it about ten times slower.
	guest-debug) vm_suite guest-debug "${ECS_DEBUG_KERNEL:-}" "${ECS_DEBUG_GUEST_INITRD:-}" --smp 2 --mem 1G \
		--timeout 1500 -- env "${debug_guest_env[@]}" /ecs/tests/run-suite.sh /ecs/tests/guest 1200 | indent ;;
	# idle=poll: the L1 never halts; one L1 hung halted with its timer
	# interrupt never delivered, and the suite runs faster (136 s, not 200).
	# The L2 takes under a minute; limits of 300 s for it, 400 s for the
	# test and 500 s for the L1 report a hang from the innermost live level.
	nested) vm_suite "$s" "${ECS_KERNEL:-}" "${ECS_HOST_INITRD:-}" --smp 1 --mem 2G --timeout 500 \
		--heartbeat $heartbeat --append "idle=poll ecs.l2_timeout=300" \
		-- /ecs/tests/run-suite.sh "/ecs/tests/$s" 400 | indent ;;
	# Each L2 takes 1-2 minutes, up to 4 on a slower machine, where the
	# suite took 400-660 s: limits of 480 s per L2, 560 s per test and
	# 1200 s for the L1 report a hang from the innermost live level (a
	# silent one sooner, through the heartbeats).
	nested-host) vm_suite "$s" "${ECS_KERNEL:-}" "${ECS_HOST_INITRD:-}" --smp 1 --mem 2G --timeout 1200 \
		--heartbeat $heartbeat --append "idle=poll ecs.l2_timeout=480" \
		-- /ecs/tests/run-suite.sh "/ecs/tests/$s" 560 | indent ;;
	nested-host-stock) stock_suite | indent ;;
	# make fuzz: only the fuzzer of the eCS guest-host surface
	# (tests/fuzz/msr_fuzz.sh), for ECS_FUZZ_SECONDS (600 s), with
	# limits that grow with it.
	fuzz)
		fz=${ECS_FUZZ_SECONDS:-600}
		vm_suite "$s" "${ECS_KERNEL:-}" "${ECS_HOST_INITRD:-}" --smp 1 --mem 2G --timeout $((fz + 900)) \
			--heartbeat $heartbeat --append "idle=poll ecs.l2_timeout=$((fz + 500)) ecs.fuzz_seconds=$fz ecs.fuzz_hotplug=${ECS_FUZZ_HOTPLUG:-1}" \
			-- /ecs/tests/run-suite.sh /ecs/tests/fuzz $((fz + 700)) | indent ;;
	# The same in an L1 of the debug kernel, whose L2s run the default one;
	# nested-host-debug cut unless ECS_DEBUG_FULL=1 (see the top).
	nested-debug | nested-host-debug)
		host_env=()
		[ "$s" = nested-host-debug ] && host_env=("${debug_host_env[@]}")
		vm_suite "$s" "${ECS_DEBUG_KERNEL:-}" "${ECS_DEBUG_HOST_INITRD:-}" --smp 1 --mem 2G --timeout 3600 \
			--heartbeat $heartbeat --append "idle=poll ecs.l2_timeout=1000" \
			-- env "${host_env[@]}" /ecs/tests/run-suite.sh "/ecs/tests/${s%-debug}" 1200 | indent ;;
	esac
	rc=${PIPESTATUS[0]}
	emit "# $s took $(($(date +%s) - start))s"
	case $rc in
	0) emit "ok $i $s" ;;
	4) emit "ok $i $s # SKIP" ;;
	*) emit "not ok $i $s # exit=$rc" ;;
	esac
	case $s in guest* | nested* | fuzz)
		i=$((i + 1))
		consoles=$(ls "$results/$s.hung/console.log" "$results/$s/console.log" 2>/dev/null)
		if [ -z "$consoles" ] && [ "${CI:-}" = true ]; then
			emit "not ok $i $s-console # no console log (the VM did not run)"
		elif [ -z "$consoles" ]; then
			emit "ok $i $s-console # SKIP no console log (the VM did not run)"
		elif "$repo/scripts/console-check" $consoles > "$results/$s.console-check"; then
			emit "ok $i $s-console"
		else
			sed 's/^/# /' "$results/$s.console-check" | tee -a "$ktap"
			emit "not ok $i $s-console"
		fi
	esac
done

if [ -f "$results/retried" ]; then
	emit "# retried once after the L1 stopped dead: $(tr '\n' ' ' < "$results/retried")"
fi
echo "# results in ${results#"$repo"/}"
summary=$(cd "$repo/tests/host" && cargo run --quiet --bin ktap-summary -- "$ktap")
rc=$?
echo "$summary" | tee "$results/summary"
exit $rc
