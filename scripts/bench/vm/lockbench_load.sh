#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The lock benchmark's guest side, for scripts/bench/vm/paired_l1.sh. Not a
# test: it prints raw counters for scripts/bench/paired-report.py.
#
#   lockbench_load.sh [--rcu RCU_MEMBENCH_PARAMS] SNAPSHOTS [ECS_LOCKBENCH_PARAM...]
#
# RCU_MEMBENCH_PARAMS are separated by commas ("rate=500,sample_every=50"),
# so that they travel as one word.
#
# Loads the eCS shim and ecs_lockbench with the given parameters (and,
# with --rcu, rcu_membench beside it for the whole run), prints
# "load-started", then SNAPSHOTS + 1 snapshots one second apart, each a line
# "snap SEQ UPTIME" followed by the module's cumulative counters (lines
# "lb ...") and this guest's /proc/stat "cpu" line ("stat cpu ..."). The
# L1 side tells phases apart by SEQ, so guest and host need no common
# clock. rcu_membench's samples carry milliseconds since its run started:
# "rcu-start UPTIME" before the snapshots, and after them its summary,
# grace periods and footprint as "rcu summary|gp|series ..." lines, which
# the report cuts into phases by the snapshots' uptimes. Exit 1 if a
# module does not load.
rcu=
if [ "${1:-}" = --rcu ]; then
	rcu=$(echo "$2" | tr ',' ' ')
	shift 2
fi
snapshots=${1:?usage: lockbench_load.sh [--rcu PARAMS] SNAPSHOTS [ECS_LOCKBENCH_PARAM...]}
shift
rcu_dir=/sys/kernel/debug/rcu_membench

insmod /ecs/modules/ecs.ko || exit 1
state=$(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state)
[ "$state" = enabled ] || { echo "lockbench_load: shim state '$state', not enabled" >&2; exit 1; }
insmod /ecs/modules/ecs_lockbench.ko "$@" || exit 1
if [ -n "$rcu" ]; then
	read -r up _ < /proc/uptime
	# The longest run it allows: a snapshot can take two seconds in a
	# nested guest, so the run ends by "stop" after the last one.
	# shellcheck disable=SC2086 # the module's parameters are split on purpose
	insmod /ecs/modules/rcu_membench.ko duration=3600 $rcu || exit 1
	echo "rcu-start $up"
fi
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
if [ -n "$rcu" ]; then
	echo stop > $rcu_dir/control
	sed 's/^/rcu summary /' $rcu_dir/summary
	sed 's/^/rcu gp /' $rcu_dir/gp_samples
	sed 's/^/rcu series /' $rcu_dir/series
	rmmod rcu_membench
fi
echo "=== end"
