#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Keep every vCPU busy for $1 seconds, then report in KTAP that they were:
# the guest's idle time over the run (idle + iowait in /proc/stat) stayed
# under BUSY_IDLE_MAX_PCT of it. Stolen time does not count as idle, so an
# overcommitted vCPU still passes; loops that never started or ended early
# do not.
. /ecs/tests/lib/ktap.sh
seconds=${1:-10}
# A loop per vCPU leaves only the start-up of the shells idle; 10% is far
# above that and far below the half a missing loop on two vCPUs would
# leave.
BUSY_IDLE_MAX_PCT=10
# The loops read the clock from /proc/uptime with the shell's own read:
# a loop that forks, e.g. date(1) for its clock, idles its vCPU until the
# child has run, which may be on a vCPU whose host CPU is busy elsewhere.
# With a date(1) per iteration an L2 of a 2-vCPU L1 measured 13% idle
# (results/nested-campaign/20261207T100712Z-85f8728-dirty-l1smp2-tcgsingle,
# run 4); with one per 500 iterations an L2 of a 1-vCPU L1 under icount
# still measured 10.1% (20261207T133149Z-aefc185-l1smp1-tcgsingle-icount5,
# run 2).

# idle and total jiffies of all CPUs so far: "IDLE TOTAL".
cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t }' /proc/stat
}

ktap_begin 1
# shellcheck disable=SC2046 # two numbers, split on purpose
set -- $(cpu_jiffies)
idle0=$1 total0=$2
read -r up _ < /proc/uptime
end=$((${up%.*} + seconds))
i=0
while [ $i -lt "$(nproc)" ]; do
	(while read -r up _ < /proc/uptime && [ "${up%.*}" -lt $end ]; do :; done) &
	i=$((i + 1))
done
wait
# shellcheck disable=SC2046 # as above
set -- $(cpu_jiffies)
idle=$(($1 - idle0)) total=$(($2 - total0))
ktap_info "idle $idle of $total jiffies over ${seconds}s on $(nproc) vCPUs"
ktap_check "busy-${seconds}s-on-$(nproc)-vcpus" [ "$total" -gt 0 -a $((idle * 100)) -lt $((total * BUSY_IDLE_MAX_PCT)) ]
ktap_end
