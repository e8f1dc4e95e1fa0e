#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# eSCHDSPIN measured (the paper's Figure 6): the Psearchy-like
# load (scripts/bench/vm/psearchy_load.c) in L2 guests of our host kernel, under
# each waiting policy of modules/guest/eschdspin (stock, SCHDSPIN, eSCHDSPIN), all
# with eCS on (KVM's slice extension in the L1, kvm.ecs_slice_us; the shim
# in the L2s, whose VMM opts in to the pcpu_overloaded hint), in a
# 1-vCPU L1 (the configuration in which nested runs are dependable here
# under TCG: in a 2-vCPU L1, L2s and the L1 itself died without a message
# during these runs), two threads of the load per L2:
#   under  one 1-vCPU L2: L2 vCPUs = L1 vCPUs;
#   over1  one 2-vCPU L2: two vCPUs per L1 CPU;
#   over2  two 2-vCPU L2s at once: four vCPUs per L1 CPU;
# and, in a 2-vCPU L1, where spinning can pay (a waiter and the owner can
# run at the same time), but which is not dependable:
#   under2 one 2-vCPU L2: L2 vCPUs = L1 vCPUs.
# Within one L1 run the L2s warm up (10 s of the load, not measured), then
# run the policies one after the other and back
# (stock, SCHDSPIN, eSCHDSPIN, eSCHDSPIN, SCHDSPIN, stock: a drift over the
# run weighs on each policy alike), the phases started at the same
# wall-clock second in all L2s; --repeat N repeats
# each scenario's L1 run. scripts/bench/vm/eschdspin_bench.sh runs in the L1;
# scripts/bench/spin-report.py parses its output, prints the table
# (throughput and guest idle time per policy, next to the paper's figures)
# and draws spin.png.
#
#   scripts/bench/spin.sh [--scenarios "under over1 over2 under2"] [--seconds S]
#                         [--repeat N] [--slice-us US] [--out DIR]
#                         [--report-only DIR]
#
#   --scenarios LIST  which of under, over1, over2, under2 (default all)
#   --seconds S       length of each policy's phase (default 20)
#   --repeat N        L1 runs per scenario (default 1)
#   --slice-us US     kvm.ecs_slice_us in the L1, 5 to 10000 (default 1000:
#                     the paper's 1 ms, the bound of earlier runs too)
#   --out DIR         results directory (default
#                     results/bench-spin/<UTC time>-<commit>)
#   --report-only DIR only parse and report a finished DIR
#
# Needs ECS_KERNEL and ECS_HOST_INITRD (`make bench-spin` sets them). DIR
# gets <scenario>-<n>/ per L1 run (its console.log and ktap.log), meta.json,
# then from the report: samples.json, report.txt and spin.png.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
repo=$ECS_REPO
scenarios="under over1 over2 under2"
seconds=20
repeat=1
slice_us=1000
out=
report_only=
while [ $# -gt 0 ]; do
	case $1 in
	--scenarios) scenarios=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	--slice-us) slice_us=$2; shift 2 ;;
	*) bench_option bench-spin "$1" "${2-}"; shift 2 ;;
	esac
done
report() { /usr/bin/python3 "$repo/scripts/bench/spin-report.py" "$1"; }
[ -z "$report_only" ] || { report "$report_only"; exit; }
for n in "$seconds" "$repeat" "$slice_us"; do
	case $n in '' | *[!0-9]* | 0) echo "bench-spin: --seconds, --repeat and --slice-us want positive numbers" >&2; exit 2 ;; esac
done
slice_us_valid bench-spin "$slice_us"
for s in $scenarios; do
	case $s in under | over1 | over2 | under2) ;; *) echo "bench-spin: unknown scenario '$s'" >&2; exit 2 ;; esac
done
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_HOST_INITRD:-}" ] ||
	{ echo "bench-spin: no ECS_KERNEL/ECS_HOST_INITRD: run through make bench-spin" >&2; exit 2; }

policies="stock schdspin eschdspin eschdspin schdspin stock"
out=$(bench_dir bench-spin "$out") || exit
bench_meta "$out/meta.json" scenarios="$scenarios" seconds:="$seconds" repeat:="$repeat" \
	policies="$policies" slice_us:="$slice_us" accel=tcg || exit 1

rc=0
for s in $scenarios; do
	# L2s, their vCPUs, and the time they get to boot before the phases
	# start (measured: one L2 ~20-30 s, two at once ~65 s).
	case $s in
	under) l1_cpus=1 guests=1 l2_vcpus=1 allowance=60 ;;
	over1) l1_cpus=1 guests=1 l2_vcpus=2 allowance=60 ;;
	over2) l1_cpus=1 guests=2 l2_vcpus=2 allowance=150 ;;
	under2) l1_cpus=2 guests=1 l2_vcpus=2 allowance=60 ;;
	esac
	n=1
	while [ $n -le "$repeat" ]; do
		# Up to three boots (an L2 that hangs in its boot is booted again).
		phases=$((allowance + 15 + 6 * (seconds + 5)))
		timeout=$((2 * (allowance + 15) + phases + 300))
		echo "bench-spin: $s run $n: $guests $l2_vcpus-vCPU L2(s) in a $l1_cpus-vCPU L1 (up to ${timeout}s) ..." >&2
		threads=$(l1_tcg_threads "$l1_cpus") idle=
		[ "$threads" = single ] || idle=idle=poll
		"$repo/scripts/vm" --kernel "$ECS_KERNEL" --initrd "$ECS_HOST_INITRD" --smp "$l1_cpus" --mem 2G \
			--tcg-threads "$threads" --append "${idle:+$idle }ecs.l2_timeout=$((phases + 200))" --name "bench-spin-$s" \
			--out "$out/$s-$n" --timeout "$timeout" \
			-- /ecs/bench/eschdspin_bench.sh --guests "$guests" --l2-vcpus "$l2_vcpus" --seconds "$seconds" \
			--threads 2 --policies "$policies" --boot-allowance "$allowance" --slice-us "$slice_us" \
			> /dev/null 2> "$out/$s-$n.err"
		l1_rc=$?
		if [ $l1_rc != 0 ]; then
			echo "bench-spin: $s run $n failed (exit $l1_rc), see $out/$s-$n.err; reporting what it printed" >&2
			tail -n 20 "$out/$s-$n.err" >&2
			rc=$l1_rc
		fi
		n=$((n + 1))
	done
done
report "$out" || exit
exit $rc
