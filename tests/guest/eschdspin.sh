#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# eSCHDSPIN, guest side: with each policy (stock, SCHDSPIN,
# eSCHDSPIN; here the host shares no eCS hints, so eSCHDSPIN falls back),
# locktorture on mutexes and on rwsems and the Psearchy-like load
# (mmap/munmap and file churn in one directory: mmap_lock and i_rwsem
# writers) must pass. The module's counts must add up and follow the
# policy: stock never spins, SCHDSPIN spins, eSCHDSPIN without hints does
# what its fallback says. Then the module is unloaded and loaded again in
# the middle of the stress, 20 times: every waiter must get its lock (the
# loads finish within their time, locktorture reports SUCCESS), no splat,
# and on the debug kernel no leak that kmemleak can find.
. /ecs/tests/lib/ktap.sh

ko=/ecs/modules/eschdspin.ko
load=/ecs/bin/psearchy_load
dir=/sys/kernel/debug/eschdspin
ktap_require_module $ko
[ -x $load ] || ktap_missing_all "no $load in the initramfs"
[ "$(nproc)" -ge 2 ] || ktap_skip_test "needs 2 vCPUs for waiters to spin on"
seconds=${ESCHDSPIN_SECONDS:-4}
work=$(mktemp -d /tmp/eschdspin.XXXXXX)

stat() { sed -n "s/^$1: //p" $dir/stats; }
waits() { echo $(($(stat waits_mutex) + $(stat waits_rwsem_read) + $(stat waits_rwsem_write))); }
policy_is() { [ "$(sed -n 's/^policy: //p' $dir/policy)" = "$1" ]; }

# TYPE: locktorture TYPE for $seconds; true if it reported SUCCESS.
torture() {
	ktap_mark "torture-$1"
	modprobe locktorture torture_type="$1" nwriters_stress=3 nreaders_stress=3 stat_interval=0 || return 1
	sleep "$seconds"
	rmmod locktorture
	ktap_log_has "torture-$1" 'End of test: SUCCESS'
}

# THREADS: the Psearchy-like load for $seconds; true if it ran and did work.
psearchy() {
	out=$($load "$1" "$seconds" "$work") || { echo "# psearchy_load: $out" >&2; return 1; }
	echo "# $out"
	[ "$(echo "$out" | awk '{ print $2 }')" -gt 0 ]
}

# Counts add up: every wait spun or slept without spinning; every spin got
# the lock or went to sleep. Every mutex and rwsem waiter in the kernel
# goes through the policy, and one counts its wait before it spins or
# sleeps: a reading can catch one in flight (a fresh-clone run of
# 4190d1b failed once so, in the debug guest). So the check takes all
# counters from one read of the stats file and looks up to COUNTS_TRIES
# times, 0.2 s apart; counts that never add up still fail.
# A waiter is in flight for moments, not for the 2 s that ten looks take.
COUNTS_TRIES=10
snap_stat() { echo "$snap" | sed -n "s/^$1: //p"; }
consistent() {
	for _try in $(seq $COUNTS_TRIES); do
		snap=$(cat $dir/stats)
		_waits=$(($(snap_stat waits_mutex) + $(snap_stat waits_rwsem_read) + $(snap_stat waits_rwsem_write)))
		_spins=$(snap_stat spins)
		[ "$_waits" = $((_spins + $(snap_stat sleeps) - $(snap_stat spin_to_sleep))) ] &&
			[ "$_spins" = $(($(snap_stat spin_acquired) + $(snap_stat spin_to_sleep))) ] &&
			return 0
		sleep 0.2
	done
	echo "# counts never added up: $(echo "$snap" | tr '\n' ' ')"
	return 1
}

ktap_mark eschdspin
ktap_kmemleak_begin
ktap_begin 21

ktap_check load sh -c "insmod $ko && [ -d $dir ]"
ktap_check default-policy policy_is eschdspin
ktap_check no-host-hints grep -q '^host_hints: no' $dir/policy

# POLICY [fallback F]: stress under it; results: stress passes, counts.
for p in stock schdspin eschdspin "eschdspin fallback-stock"; do
	name=$(echo "$p" | tr ' ' '-')
	case $p in
	*fallback-stock) echo "fallback stock" > $dir/policy; echo eschdspin > $dir/policy ;;
	*) echo "fallback schdspin" > $dir/policy; echo "$p" > $dir/policy ;;
	esac
	w0=$(waits); s0=$(stat spins); n0=$(stat no_ecs)
	ok=1
	for t in mutex_lock rwsem_lock; do
		torture $t || { ok=0; echo "# locktorture $t failed under $name"; }
	done
	psearchy 8 || ok=0
	w=$(($(waits) - w0)); s=$(($(stat spins) - s0)); n=$(($(stat no_ecs) - n0))
	ktap_info "$name: $w waits, $s spins, $n without hints; $(tr '\n' ' ' < $dir/stats)"
	ktap_check "stress-$name" [ $ok = 1 -a "$w" -gt 0 ]
	case $p in
	stock) ktap_check "stock-never-spins" [ "$s" = 0 ] ;;
	schdspin) ktap_check "schdspin-spins" [ "$s" -gt 0 ] ;;
	eschdspin) ktap_check "eschdspin-falls-back-to-schdspin" [ "$s" -gt 0 -a "$n" -gt 0 ] ;;
	*) ktap_check "eschdspin-falls-back-to-stock" [ "$s" = 0 -a "$n" -gt 0 ] ;;
	esac
done
echo "fallback schdspin" > $dir/policy
ktap_check counts-add-up consistent
ktap_check spin-time-counted [ "$(stat spin_ns)" -gt 0 ]
ktap_check unload rmmod eschdspin
ktap_check debugfs-removed [ ! -e $dir ]

# Unload and reload in the middle of the stress: spinning waiters go back
# to sleeping on their lock; no wake-up may go missing.
modprobe locktorture torture_type=rwsem_lock nwriters_stress=3 nreaders_stress=3 stat_interval=0
ktap_mark reload-under-stress
$load 8 $((seconds * 3)) "$work" > "$work.out" 2>&1 &
loader=$!
cycles=0
end=$(($(date +%s) + seconds * 2))
while [ "$(date +%s)" -lt $end ] && [ $cycles -lt 20 ]; do
	insmod $ko policy=1 || break
	sleep 0.1
	rmmod eschdspin || break
	cycles=$((cycles + 1))
done
ktap_info "$cycles load/unload cycles under stress"
ktap_check unload-under-stress [ $cycles -gt 0 -a ! -d /sys/module/eschdspin ]
wait $loader
rc=$?
sed 's/^/# /' "$work.out"
ktap_check load-finished-after-unloads [ $rc = 0 ]
rmmod locktorture
ktap_check locktorture-after-unloads ktap_log_has reload-under-stress 'End of test: SUCCESS'
ktap_check no-files-left [ -z "$(ls "$work")" ]
rm -rf "$work" "$work.out"

ktap_no_splat no-splat eschdspin hung_task
ktap_kmemleak_check
ktap_end
