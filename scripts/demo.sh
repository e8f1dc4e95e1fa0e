#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: the double-scheduling problem and the eCS fix, in nested VMs.
#
#   scripts/demo.sh [--arms "off v2"] [--blocks N] [--phase S] [--out DIR]
#                   [--report-only DIR]
#
# An L1 KVM host with the host series (1 vCPU under QEMU TCG) runs a
# 2-vCPU L2 guest with the eCS shim beside a 2-vCPU competitor L2 whose
# vCPUs are always busy: four vCPUs share the L1's CPU. In the guest, one
# kthread per vCPU takes and releases a spinlock (modules/bench/
# ecs_lockbench) while rcu_membench frees memory through call_rcu(). The
# host side is switched at runtime between the arms, first without it
# ("off"), then with it (default "v2": KVM extends a vCPU's time slice
# while the guest says it is in a critical section, host-patches/0005),
# in alternating order over the blocks. It ends with a table, without vs
# with: in-section preemptions, the time lock waiters lost to a preempted
# holder, lock throughput and tail wait, the RCU grace period p99 and the
# peak memory waiting for it.
#
# This is scripts/bench/paired.sh at one level with few blocks, so the
# figures are a demonstration; `make bench` gives the confidence intervals
# (docs/benchmarks.md). Needs ECS_KERNEL and ECS_HOST_INITRD (make demo).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
repo=$ECS_REPO
arms="off v2"
blocks=4
phase=6
out=
report_only=
while [ $# -gt 0 ]; do
	case $1 in
	--arms) arms=$2; shift 2 ;;
	--blocks) blocks=$2; shift 2 ;;
	--phase) phase=$2; shift 2 ;;
	*) bench_option demo "$1" "${2-}"; shift 2 ;;
	esac
done
if [ -n "$report_only" ]; then
	"$repo/scripts/bench/paired.sh" --report-only "$report_only" > /dev/null || exit 1
	exec /usr/bin/python3 "$repo/scripts/bench/demo-table.py" "$report_only"
fi
out=$(bench_dir demo "$out") || exit
echo "demo: an L1 KVM host under QEMU TCG, a 2-vCPU eCS guest and a busy 2-vCPU competitor on its one CPU" >&2
echo "demo: host side '${arms// / vs }', $blocks blocks of ${phase} s phases; raw data in $out" >&2
started=$(date +%s)
# The slice is scaled for TCG, as in make bench.
"$repo/scripts/bench/paired.sh" --levels 4:1 --arms "$arms" --blocks "$blocks" --boots 1 \
	--phase "$phase" --warmup 4 --lockbench "lock=0 hold=500 think=5000" --slice-us 4000 \
	--rcu "rate=500,batch=10,sample_every=100,series_ms=250" --out "$out" > /dev/null || rc=$?
/usr/bin/python3 "$repo/scripts/bench/demo-table.py" "$out" || exit 1
echo "demo: took $(($(date +%s) - started)) s" >&2
exit "${rc:-0}"
