#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest half of tests/nested-host/eschdspin.sh: on a host that shares the
# eCS hints, eSCHDSPIN must use them (no fallback), and its waiters must
# get their locks: locktorture on rwsems and the Psearchy-like load under
# eSCHDSPIN, then the module unloaded in the middle of the load. KTAP;
# prints the module's counts.
. /ecs/tests/lib/ktap.sh
dir=/sys/kernel/debug/eschdspin
seconds=${1:-6}
stat() { sed -n "s/^$1: //p" $dir/stats; }
work=/tmp/psearchy
mkdir -p $work

ktap_begin 8
ktap_check shim-enabled sh -c "insmod /ecs/modules/ecs.ko && grep -q '^state: enabled' /sys/kernel/debug/ecs/state"
ktap_check eschdspin-with-hints sh -c "insmod /ecs/modules/eschdspin.ko policy=2 && grep -q '^host_hints: yes' $dir/policy"
ktap_mark stress
if modprobe locktorture torture_type=rwsem_lock nwriters_stress=2 nreaders_stress=2 stat_interval=0; then
	out=$(/ecs/bin/psearchy_load 2 "$seconds" $work)
	rc=$?
	echo "# $out"
	rmmod locktorture
	if [ $rc = 0 ] && ktap_log_has stress 'End of test: SUCCESS'; then
		ktap_pass stress-passes
	else
		ktap_fail stress-passes "psearchy_load exited $rc, or locktorture did not report SUCCESS"
	fi
else
	ktap_fail stress-passes "modprobe locktorture failed"
fi
sed 's/^/# /' $dir/stats
# Every decision read the hints (none fell back); with two vCPUs on one
# CPU the host mostly reports it overloaded, so few or no waiters spin.
waits=$(($(stat waits_mutex) + $(stat waits_rwsem_read) + $(stat waits_rwsem_write)))
ktap_check hints-used [ "$(stat no_ecs)" = 0 -a "$waits" -gt 0 ]
# Two vCPUs share one L1 CPU: the host reports it overloaded at times, or
# the owner's vCPU preempted; either must have sent waiters to sleep. Only
# waiters that passed the guest's own checks (need_resched, another task
# on the vCPU) ask the host; in a slow L1 (the debug kernel's) none may.
asked=$(($(stat spins) + $(stat slept_overloaded) + $(stat slept_owner_off)))
if [ $asked = 0 ]; then
	ktap_skip host-view-sends-to-sleep "none of the $waits waiters got as far as the host's hints"
else
	ktap_check host-view-sends-to-sleep [ $(($(stat slept_overloaded) + $(stat slept_owner_off))) -gt 0 ]
fi
/ecs/bin/psearchy_load 2 "$seconds" $work > /tmp/load.out 2>&1 &
loader=$!
sleep 2
ktap_check unload-mid-load rmmod eschdspin
wait $loader
ktap_check load-finished-after-unload [ $? = 0 ]
sed 's/^/# /' /tmp/load.out
ktap_no_splat no-splat
ktap_end
