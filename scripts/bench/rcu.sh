#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The call_rcu() memory microbenchmark (paper: Table 2, Figure 3) in a
# 2-vCPU TCG guest pinned one vCPU per host CPU: once as the baseline, then
# once with CPU hogs on the same host CPUs (the overcommit run). Each run
# loads rcu_membench in the guest and saves what it prints; then
# scripts/bench/rcu-report.py parses the saved output into JSON, prints a
# Table 2 style comparison with the paper's figures, and draws a PNG.
#
#   scripts/bench/rcu.sh [--duration S] [--pin LIST] [--hog host|none]
#                        [--out DIR] [--report-only DIR] [-- INSMOD_ARG...]
#
#   --duration S    seconds per run (default 20)
#   --pin LIST      host CPUs for the vCPUs and the hogs (default 0,1)
#   --hog host      one busy loop per CPU of LIST, pinned with taskset
#                   (default; a hog VM would mean two VMs at once)
#   --hog none      run the second run without hogs (a noise check)
#   --out DIR       results directory (default
#                   results/bench-rcu/<UTC time>-<commit>)
#   --report-only DIR   only parse, tabulate and plot a finished DIR
#
# Needs ECS_KERNEL and ECS_GUEST_INITRD (`make bench-rcu` sets them).
# DIR gets baseline/ and overcommit/ (the VM's console.log, ktap.log with
# the module's debugfs files, status), meta.json, then from the report:
# baseline.json, overcommit.json, table.txt, rcu_membench.png.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
repo=$ECS_REPO
duration=20
pin=0,1
hog=host
out=
report_only=
while [ $# -gt 0 ]; do
	case $1 in
	--duration) duration=$2; shift 2 ;;
	--pin) pin=$2; shift 2 ;;
	--hog) hog=$2; shift 2 ;;
	--) shift; break ;;
	*) bench_option bench-rcu "$1" "${2-}"; shift 2 ;;
	esac
done
report() { /usr/bin/python3 "$repo/scripts/bench/rcu-report.py" "$1"; }
[ -z "$report_only" ] || { report "$report_only"; exit; }
case $hog in host | none) ;; *) echo "bench-rcu: --hog wants host or none" >&2; exit 2 ;; esac
case $duration in '' | *[!0-9]*) echo "bench-rcu: --duration wants seconds" >&2; exit 2 ;; esac
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_GUEST_INITRD:-}" ] ||
	{ echo "bench-rcu: no ECS_KERNEL/ECS_GUEST_INITRD: run through make bench-rcu" >&2; exit 2; }

out=$(bench_dir bench-rcu "$out") || exit
insmod_args=(duration="$duration" "$@")
timeout=$((duration + 300))

hog_pids=()
stop_hogs() {
	local p
	for p in "${hog_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${hog_pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	hog_pids=()
}
trap 'stop_hogs' EXIT
trap 'exit 130' INT TERM

# One busy loop per host CPU of the pin list, pinned there like the vCPUs.
start_hogs() {
	local cpu
	[ "$hog" = host ] || return 0
	for cpu in ${pin//,/ }; do
		taskset -c "$cpu" sh -c 'while :; do :; done' &
		hog_pids+=($!)
	done
	sleep 1
}

# run NAME: one guest, pinned, that runs the benchmark and prints its files.
run() {
	local name=$1 rc
	echo "bench-rcu: $name run (${duration}s) ..." >&2
	"$repo/scripts/vm" --initrd "$ECS_GUEST_INITRD" --smp 2 --mem 1G --pin "$pin" \
		--name "rcu-$name" --out "$out/$name" --timeout "$timeout" \
		-- /ecs/bench/rcu_membench_dump.sh "${insmod_args[@]}" > /dev/null 2> "$out/$name.err"
	rc=$?
	[ $rc = 0 ] || { echo "bench-rcu: $name run failed (exit $rc), see $out/$name.err" >&2; cat "$out/$name.err" >&2; }
	return $rc
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
bench_meta "$out/meta.json" duration_s:="$duration" pin="$pin" hog="$hog" \
	insmod_args="${insmod_args[*]}" || exit 1

run baseline || exit 1
start_hogs
run overcommit
rc=$?
stop_hogs
[ $rc = 0 ] || exit 1
echo "bench-rcu: host load average after the runs: $(loadavg)" >&2
report "$out"
