#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The eCS host side, KVM's slice extension (kvm.ecs_slice_us), measured
# in a 1-vCPU L1 of our host kernel under TCG, with L2 guests of the same
# kernel:
#   (a) the fraction of in-critical-section preemptions that eCS avoids
#       (paper: 85-100%), a churn load in a 2-vCPU L2, with the extension
#       off and on;
#   (b) fairness as in the paper's Figure 7: an annotated and a plain
#       1-vCPU L2 share the L1's CPU, cumulative CPU time of each over
#       10 s (paper: 4.95 s each);
#   (c) rcu_membench in an overcommitted L2, with the extension off and on;
#   and (abuse) fairness again with an annotated L2 that keeps a
#       non-preemptible section open almost all the time.
# scripts/bench/vm/ecs_host_bench.sh runs in the L1 and prints raw data;
# scripts/bench/host-report.py parses it, prints the three results and
# draws fairness.png.
#
#   scripts/bench/host.sh [--parts "avoided fairness abuse rcu"] [--seconds S]
#                         [--repeat N] [--fair-seconds S] [--slice-us US]
#                         [--out DIR] [--report-only DIR]
#
#   --parts LIST      which of avoided, fairness, abuse, rcu (default all)
#   --seconds S       churn load per avoided run (default 20)
#   --repeat N        baseline/eCS pairs of avoided runs (default 2)
#   --fair-seconds S  the fairness window (default 10)
#   --slice-us US     the extension's bound when on, 5 to 10000 (default
#                     4000: the paper's 1 ms scaled for TCG)
#   --out DIR         results directory (default
#                     results/bench-host/<UTC time>-<commit>)
#   --report-only DIR only parse and report a finished DIR
#
# Needs ECS_KERNEL and ECS_HOST_INITRD (`make bench-host` sets them). DIR
# gets l1/ (the L1's console.log and ktap.log with every sample), meta.json,
# then from the report: samples.json, report.txt and fairness.png.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
repo=$ECS_REPO
parts="avoided fairness abuse rcu"
seconds=20
repeat=2
fair_seconds=10
slice_us=4000
out=
report_only=
while [ $# -gt 0 ]; do
	case $1 in
	--parts) parts=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	--fair-seconds) fair_seconds=$2; shift 2 ;;
	--slice-us) slice_us=$2; shift 2 ;;
	*) bench_option bench-host "$1" "${2-}"; shift 2 ;;
	esac
done
report() { /usr/bin/python3 "$repo/scripts/bench/host-report.py" "$1"; }
[ -z "$report_only" ] || { report "$report_only"; exit; }
for n in "$seconds" "$repeat" "$fair_seconds" "$slice_us"; do
	case $n in '' | *[!0-9]* | 0) echo "bench-host: --seconds, --repeat, --fair-seconds and --slice-us want positive numbers" >&2; exit 2 ;; esac
done
slice_us_valid bench-host "$slice_us"
for p in $parts; do
	case $p in avoided | fairness | abuse | rcu) ;; *) echo "bench-host: unknown part '$p'" >&2; exit 2 ;; esac
done
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_HOST_INITRD:-}" ] ||
	{ echo "bench-host: no ECS_KERNEL/ECS_HOST_INITRD: run through make bench-host" >&2; exit 2; }

out=$(bench_dir bench-host "$out") || exit
bench_meta "$out/meta.json" parts="$parts" seconds:="$seconds" repeat:="$repeat" \
	fair_seconds:="$fair_seconds" slice_us:="$slice_us" l1_vcpus:=1 accel=tcg || exit 1

# Per avoided run: L2 boot (~30 s nested) + load; the others ~2-5 min each.
timeout=$((repeat * 2 * (seconds + 90) + 900))
echo "bench-host: parts '$parts', slice ${slice_us} us, in a 1-vCPU L1 (up to ${timeout}s) ..." >&2
"$repo/scripts/vm" --kernel "$ECS_KERNEL" --initrd "$ECS_HOST_INITRD" --smp 1 --mem 2G \
	--append idle=poll --name bench-host --out "$out/l1" --timeout "$timeout" \
	-- /ecs/bench/ecs_host_bench.sh --parts "$parts" --seconds "$seconds" \
	--repeat "$repeat" --fair-seconds "$fair_seconds" --slice-us "$slice_us" > /dev/null 2> "$out/l1.err"
rc=$?
if [ $rc != 0 ]; then
	echo "bench-host: the L1 run failed (exit $rc), see $out/l1.err; reporting what it printed" >&2
	tail -n 20 "$out/l1.err" >&2
fi
report "$out" || exit
exit $rc
