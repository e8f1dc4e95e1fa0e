#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The cost of the eCS annotation (the paper's Table 4): ecs_costbench times
# empty critical sections of each kind in a 2-vCPU TCG guest pinned one vCPU
# per host CPU, with kvm_ecs_key off and on, on one thread and on every vCPU;
# scripts/ecs-insn-count.py counts the instructions each hook adds in the
# built vmlinux; scripts/bench/cost-report.py puts both beside the paper's
# figures.
#
#   scripts/bench/cost.sh [--repeat N] [--pin LIST] [--out DIR]
#                         [--report-only DIR] [-- INSMOD_ARG...]
#
#   --repeat N      key-off/key-on run pairs in the guest (default 3)
#   --pin LIST      host CPUs for the vCPUs (default 0,1)
#   --out DIR       results directory (default
#                   results/bench-cost/<UTC time>-<commit>)
#   --report-only DIR   only parse and tabulate a finished DIR
#   INSMOD_ARG      ecs_costbench parameters (iterations=, rounds=, threads=)
#
# Needs ECS_KERNEL, ECS_GUEST_INITRD and ECS_VMLINUX (`make bench-cost` sets
# them). DIR gets guest/ (the VM's console.log and ktap.log with the samples),
# insns.json, meta.json, then from the report: samples.json and table.txt.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
repo=$ECS_REPO
repeat=3
pin=0,1
out=
report_only=
while [ $# -gt 0 ]; do
	case $1 in
	--repeat) repeat=$2; shift 2 ;;
	--pin) pin=$2; shift 2 ;;
	--) shift; break ;;
	*) bench_option bench-cost "$1" "${2-}"; shift 2 ;;
	esac
done
report() { python3 "$repo/scripts/bench/cost-report.py" "$1"; }
[ -z "$report_only" ] || { report "$report_only"; exit; }
case $repeat in '' | *[!0-9]* | 0) echo "bench-cost: --repeat wants a positive number" >&2; exit 2 ;; esac
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_GUEST_INITRD:-}" ] && [ -f "${ECS_VMLINUX:-}" ] ||
	{ echo "bench-cost: no ECS_KERNEL/ECS_GUEST_INITRD/ECS_VMLINUX: run through make bench-cost" >&2; exit 2; }

out=$(bench_dir bench-cost "$out") || exit

bench_meta "$out/meta.json" repeat:="$repeat" pin="$pin" insmod_args="$*" guest_vcpus:=2 \
	accel=tcg || exit 1

python3 "$repo/scripts/ecs-insn-count.py" --vmlinux "$ECS_VMLINUX" --json "$out/insns.json" \
	> "$out/insns.txt" || { echo "bench-cost: counting instructions failed" >&2; exit 1; }

echo "bench-cost: $repeat key-off/key-on pairs in a 2-vCPU guest ..." >&2
"$repo/scripts/vm" --kernel "$ECS_KERNEL" --initrd "$ECS_GUEST_INITRD" --smp 2 --mem 1G \
	--pin "$pin" --name cost --out "$out/guest" --timeout 1800 \
	-- /ecs/bench/ecs_costbench_dump.sh --repeat "$repeat" "$@" > /dev/null 2> "$out/guest.err" ||
	{ echo "bench-cost: the guest run failed, see $out/guest.err" >&2; cat "$out/guest.err" >&2; exit 1; }
report "$out"
