#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run rcu_membench once and print its debugfs files, for scripts/bench/rcu.sh
# (which parses them on the host). Not a test: no KTAP.
#
#   rcu_membench_dump.sh [INSMOD_ARG...]
#
# Output: "=== NAME" marker lines, each followed by that file's contents
# (summary, series, gp_samples, then /proc/meminfo after the run, and the
# external fragmentation index before and after where it exists), and
# "=== end". Exit 1 if the module does not load or the run never finishes.
ko=/ecs/modules/rcu_membench.ko
dir=/sys/kernel/debug/rcu_membench
field() { sed -n "s/^$1: //p" $dir/summary; }

extfrag=/sys/kernel/debug/extfrag/extfrag_index
echo "=== meminfo_before"
cat /proc/meminfo
# The external fragmentation index exists with CONFIG_COMPACTION.
if [ -r $extfrag ]; then
	echo "=== extfrag_before"
	cat $extfrag
fi
insmod $ko "$@" || exit 1
limit=$(($(field duration_s) + 120))
start=$(cut -d. -f1 /proc/uptime)
while [ "$(field state)" != "done" ]; do
	if [ $(($(cut -d. -f1 /proc/uptime) - start)) -gt "$limit" ]; then
		echo "rcu_membench_dump: run not done after ${limit}s" >&2
		cat $dir/summary >&2
		exit 1
	fi
	sleep 1
done
for f in summary series gp_samples; do
	echo "=== $f"
	cat $dir/$f
done
echo "=== meminfo_after"
cat /proc/meminfo
if [ -r $extfrag ]; then
	echo "=== extfrag_after"
	cat $extfrag
fi
rmmod rcu_membench || exit 1
echo "=== dmesg"
dmesg | grep rcu_membench
dmesg | console-check -
echo "=== end"
