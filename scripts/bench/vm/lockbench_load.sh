#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The lock benchmark's guest side, for scripts/bench/vm/paired_l1.sh. Not a
# test: it prints raw counters for scripts/bench/paired-report.py.
#
#   lockbench_load.sh SNAPSHOTS [ECS_LOCKBENCH_PARAM...]
#
# Loads the eCS shim and ecs_lockbench with the given parameters, prints
# "load-started", then SNAPSHOTS + 1 snapshots one second apart, each a line
# "snap SEQ UPTIME" followed by the module's cumulative counters (lines
# "lb ...") and this guest's /proc/stat "cpu" line ("stat cpu ..."). The
# L1 side tells phases apart by SEQ, so guest and host need no common
# clock. Exit 1 if the shim or the benchmark does not load.
snapshots=${1:?usage: lockbench_load.sh SNAPSHOTS [ECS_LOCKBENCH_PARAM...]}
shift

insmod /ecs/modules/ecs.ko || exit 1
state=$(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state)
[ "$state" = enabled ] || { echo "lockbench_load: shim state '$state', not enabled" >&2; exit 1; }
insmod /ecs/modules/ecs_lockbench.ko "$@" || exit 1
echo load-started
seq=0
while [ $seq -le "$snapshots" ]; do
	read -r up _ < /proc/uptime
	echo "snap $seq $up"
	sed 's/^/lb /' /sys/kernel/debug/ecs_lockbench/stats
	sed -n 's/^cpu /stat cpu /p' /proc/stat
	seq=$((seq + 1))
	sleep 1
done
rmmod ecs_lockbench
echo "=== end"
