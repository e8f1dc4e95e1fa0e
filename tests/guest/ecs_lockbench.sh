#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ecs_lockbench, the lock benchmark behind `make bench`: bad parameters get
# EINVAL and an error naming them; with each lock kind, every thread keeps
# acquiring and its histogram counts every acquisition; unload stops the
# threads. Its preempted-holder detection is checked both ways: in a TCG
# guest no hypervisor keeps a steal clock, so no hold may count as
# preempted; in an L2 of our KVM host (ecs.expect_kvm=1, booted by
# tests/nested-host/ecs_host.sh with 2 vCPUs on the L1's one CPU) the
# vCPUs must be preempted in holds, and waiters must see it.
. /ecs/tests/lib/ktap.sh

ko=/ecs/modules/ecs_lockbench.ko
stats=/sys/kernel/debug/ecs_lockbench/stats
ktap_require_module $ko
online=$(grep -c '^processor' /proc/cpuinfo)
under_kvm=$(ecs_cmdline expect_kvm)
# Seconds each lock kind runs before its counters are read.
RUN_SECONDS=2
# An overcommitted L2 saw about 50 preempted holds a second (make bench
# pilot, 2 vCPUs on one L1 CPU): a run of this length without one means the
# detection is broken, not that the host was kind.
OVERCOMMIT_SECONDS=4

bad_params="lock=3 hold=1000001 think=1000001 threads=$((online + 1)) lock=x"
n_bad=$(echo $bad_params | wc -w)
ktap_begin $((n_bad + 3 * 3 + 2))
for p in $bad_params; do
	ktap_rejects "rejects-$p" $ko ecs_lockbench "$p" "${p%%=*}"
done

# column N: column N of every thread's line, one a line.
column() { awk -v n="$1" 'NF > 6 && $1 != "#" && $1 != "lock" { print $n }' $stats; }
sum_column() { column "$1" | awk '{ s += $1 } END { print s + 0 }'; }

# progress: two reads one second apart; every thread acquired in between,
# and each thread's histogram counts its acquisitions (the read is not
# atomic: a thread preempted between its two stores is one behind).
progress() {
	a=$(column 2 | tr '\n' ' ')
	sleep 1
	b=$(column 2 | tr '\n' ' ')
	[ "$(echo $a | wc -w)" = "$online" ] || { echo "# $(echo $a | wc -w) threads, $online CPUs"; return 1; }
	set -- $b
	for x in $a; do
		[ "$1" -gt "$x" ] || { echo "# a thread did not acquire: $a -> $b"; return 1; }
		shift
	done
	awk 'NF > 6 && $1 != "#" && $1 != "lock" { s = 0; for (i = 7; i <= NF; i++) s += $i
		if (s + 1 < $2) { print "# histogram " s " < acquisitions " $2; bad = 1 } } END { exit bad }' $stats
}

for lock in 0 1 2; do
	name=$(echo "spinlock mutex rwsem" | cut -d' ' -f$((lock + 1)))
	if insmod $ko lock=$lock hold=200 think=2000; then
		ktap_pass "load-$name"
		sleep $RUN_SECONDS
		ktap_check "progress-$name" progress
		ktap_check "unload-$name" sh -c "rmmod ecs_lockbench && ! grep -qs '^ecs_lockbench/' /proc/[0-9]*/comm"
	else
		ktap_fail "load-$name" "insmod failed"
		ktap_skip "progress-$name" "not loaded"
		ktap_skip "unload-$name" "not loaded"
	fi
done

if [ "$under_kvm" = 1 ]; then
	insmod $ko lock=0 hold=500 think=5000
	sleep $OVERCOMMIT_SECONDS
	sed 's/^/# /' $stats
	ktap_check preempted-holds-seen [ "$(sum_column 4)" -gt 0 ]
	ktap_check waits-on-preempted-holder-seen [ "$(sum_column 5)" -gt 0 ]
	rmmod ecs_lockbench
else
	insmod $ko lock=0 hold=500 think=5000
	sleep $RUN_SECONDS
	ktap_check no-preempted-hold-without-steal-clock [ "$(sum_column 4)" = 0 ]
	ktap_check no-wait-on-preempted-holder-without-steal-clock [ "$(sum_column 5)" = 0 ]
	rmmod ecs_lockbench
fi
ktap_end
