#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Lifecycle under load: while a busy loop runs on every vCPU and
# the benchmark load of eSCHDSPIN (psearchy_load: mmap_lock and i_rwsem
# writers) runs over and over, each of our guest modules is loaded and
# unloaded 100 times (rcu_membench in the middle of a run, so that its
# unload must wait for the callbacks in flight: rcu_barrier(); eschdspin
# with blocked waiters spinning in its policy); then, with the eCS shim and
# an rcu_membench run loaded, vCPU 1 goes offline and online again 10
# times. Nothing may hang (the suite's time limit), fail, splat or leak:
# the slab and vmalloc totals before and after are compared (the slab
# total once every cache is shrunk, KASAN's quarantine included; a loose
# bound) and printed, and on the debug kernel kmemleak must find nothing.
. /ecs/tests/lib/ktap.sh

mods=/ecs/modules
for m in pvinfo ecs ecs_costbench rcu_membench eschdspin; do
	[ $m = pvinfo ] && m=ecs_pvinfo
	ktap_require_module $mods/$m.ko
done
load=/ecs/bin/psearchy_load
[ -x $load ] || ktap_missing_all "no $load in the initramfs"
cycles=${LIFECYCLE_CYCLES:-100}
hotplugs=10
# Loose, as the load and the hotplugs move the total too (debug: +628 kB).
SLAB_GROWTH_MAX_KB=2048
# A vmalloc leak per load adds hundreds of areas; a clean run: 11 -> 11.
VMALLOC_GROWTH_MAX=16
cpu1=/sys/devices/system/cpu/cpu1/online

vmalloc_n() { grep -c . /proc/vmallocinfo; }

ktap_begin 14

# MODULE "ARGS": load and unload $cycles times; one result.
cycle() {
	i=0
	failed=
	while [ $i -lt "$cycles" ]; do
		# shellcheck disable=SC2086 # ARGS are split on purpose
		insmod $mods/$1.ko $2 || { failed="insmod #$i"; break; }
		rmmod "$1" || { failed="rmmod #$i"; break; }
		i=$((i + 1))
	done
	if [ -z "$failed" ] && [ ! -d "/sys/module/$1" ]; then
		ktap_pass "load-unload-${cycles}x-$1"
	else
		ktap_fail "load-unload-${cycles}x-$1" "${failed:-module left loaded}"
	fi
}

# Warm the caches, then take the totals.
insmod $mods/ecs_pvinfo.ko && rmmod ecs_pvinfo
slab_before=$(ktap_settled_kb Slab)
vmalloc_before=$(vmalloc_n)
ktap_mark lifecycle
ktap_kmemleak_begin

end=$(($(date +%s) + 100000))
spinners=
i=0
while [ $i -lt "$(nproc)" ]; do
	(while [ "$(date +%s)" -lt $end ]; do :; done) &
	spinners="$spinners $!"
	i=$((i + 1))
done
# The benchmark load, 2 s at a time until told to stop; a run that fails
# is recorded.
work=$(mktemp -d /tmp/lifecycle.XXXXXX)
(
	while [ ! -f "$work/stop" ]; do
		if $load 2 2 "$work" > "$work/last" 2>&1; then
			echo ok >> "$work/runs"
		else
			cat "$work/last" >> "$work/failed"
		fi
	done
) &
loader=$!

start=$(date +%s)
cycle ecs_pvinfo ""
cycle ecs ""
cycle ecs_costbench "iterations=10 rounds=1 threads=1"
# A run of 1 s at load, unloaded at once: its callbacks are in flight.
cycle rcu_membench "duration=1 rate=2000"
# SCHDSPIN: with no host hints, the policy that spins.
cycle eschdspin "policy=1"
ktap_info "$((5 * cycles)) load/unload cycles under load in $(($(date +%s) - start)) s"

shim_field() { sed -n "s/^$1: //p" /sys/kernel/debug/ecs/state; }
# The shim's registrations: every online CPU has its line in the cpus file,
# with the MSR value it registered (0 while the host lacks eCS).
shim_cpus() { awk '/^cpu[0-9]/ { printf "%s=%s/%s ", $1, $(NF - 1), $NF }' /sys/kernel/debug/ecs/cpus; }
if [ -w $cpu1 ]; then
	insmod $mods/ecs.ko
	# A run that outlasts the hotplugs, also in an L2 of a debug L1 (over
	# 60 s there); unload-after-hotplug ends it.
	insmod $mods/rcu_membench.ko duration=900 rate=2000
	state_before=$(shim_field state)
	cpus_before=$(shim_cpus)
	registered_before=$(shim_field registered_cpus)
	failed=
	n=0
	while [ $n -lt $hotplugs ]; do
		echo 0 > $cpu1 || { failed="offline #$n"; break; }
		echo 1 > $cpu1 || { failed="online #$n"; break; }
		n=$((n + 1))
	done
	if [ -z "$failed" ]; then ktap_pass "hotplug-${hotplugs}x-cpu1"; else ktap_fail "hotplug-${hotplugs}x-cpu1" "$failed"; fi
	# Every CPU is registered again as it was, in the same state, and no
	# MSR write failed: an online callback that did not run, or wrote a
	# wrong value, breaks it (registered_cpus is every CPU where the host
	# offers eCS, none where it lacks it).
	ktap_info "shim before: $state_before, registered $registered_before, $cpus_before"
	ktap_info "shim after:  $(shim_field state), registered $(shim_field registered_cpus), $(shim_cpus)"
	# Where the host lacks eCS the shim registers nothing and takes no
	# part in hotplug, so there is nothing to check: a skip by design.
	# tests/nested-host/ecs_host.sh runs this test in an L2 of a host with
	# eCS (ecs.expect_ecs=1), where the shim must be enabled.
	if [ "$state_before" = enabled ]; then
		ktap_check shim-state-after-hotplug [ "$(shim_field state)" = enabled -a \
			"$(shim_cpus)" = "$cpus_before" -a "$(shim_field registered_cpus)" = "$(nproc)" -a \
			"$(shim_field msr_errors)" = 0 ]
	elif [ "$(ecs_cmdline expect_ecs)" = 1 ]; then
		ktap_fail shim-state-after-hotplug "the shim is '$state_before' although the host offers eCS"
	else
		ktap_skip shim-state-after-hotplug "the shim is '$state_before': no vCPU registers with this host"
	fi
	ktap_check rcu_membench-runs-after-hotplug sh -c "grep -q '^state: running' /sys/kernel/debug/rcu_membench/summary"
	ktap_check unload-after-hotplug sh -c "rmmod rcu_membench && rmmod ecs"
else
	ktap_skip "hotplug-${hotplugs}x-cpu1" "no $cpu1 (one vCPU, or no CPU hotplug)"
	ktap_skip shim-state-after-hotplug "no hotplug"
	ktap_skip rcu_membench-runs-after-hotplug "no hotplug"
	ktap_skip unload-after-hotplug "no hotplug"
fi

touch "$work/stop"
wait $loader
for p in $spinners; do kill "$p"; done
wait 2>/dev/null
runs=$(grep -c . "$work/runs" 2>/dev/null)
ktap_info "psearchy_load ran ${runs:-0} times beside the cycles"
[ -f "$work/failed" ] && head -n 5 "$work/failed" | sed 's/^/# /'
ktap_check benchmark-load-passed [ "${runs:-0}" -gt 0 -a ! -f "$work/failed" ]
rm -rf "$work"

slab_after=$(ktap_settled_kb Slab)
vmalloc_after=$(vmalloc_n)
ktap_info "Slab ${slab_before} -> ${slab_after} kB, vmalloc areas ${vmalloc_before} -> ${vmalloc_after}"
ktap_no_splat no-splat lifecycle
ktap_slab_not_leaked "$slab_before" "$slab_after" $SLAB_GROWTH_MAX_KB
ktap_check vmalloc-not-leaked [ $((vmalloc_after - vmalloc_before)) -lt $VMALLOC_GROWTH_MAX ]
ktap_kmemleak_check
ktap_end
