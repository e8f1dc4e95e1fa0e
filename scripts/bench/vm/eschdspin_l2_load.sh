#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# L2 half of the eSCHDSPIN benchmark (scripts/bench/spin.sh): with the eCS
# shim registered (for the host's hints) and modules/guest/eschdspin loaded, wait
# until the wall-clock second START (so that two L2s booted together run
# the same phases at the same time), then run the Psearchy-like load for
# 10 s to warm up and for SECONDS under each POLICY in turn, on a fresh
# tmpfs. Per phase one line:
#   phase policy=P ops=N seconds=S busy_ticks=B idle_ticks=I late=L
#         before: <eschdspin stats> after: <eschdspin stats>
# (ticks: this guest's busy and idle-or-iowait jiffies, all vCPUs);
# late=1 if the phase started after START (a slow boot). Exits 1 if a
# phase failed.
#
#   eschdspin_l2_load.sh START SECONDS THREADS POLICY...
start=$1
seconds=$2
threads=$3
shift 3
warmup=10
dbg=/sys/kernel/debug/eschdspin
insmod /ecs/modules/ecs.ko || { echo "eschdspin_l2_load: insmod ecs failed" >&2; exit 1; }
insmod /ecs/modules/eschdspin.ko policy=0 || { echo "eschdspin_l2_load: insmod eschdspin failed" >&2; exit 1; }
echo "shim $(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state) host_hints=$(sed -n 's/^host_hints: //p' $dbg/policy)"
work=/tmp/psearchy
mkdir -p $work && mount -t tmpfs -o size=64M none $work || exit 1

# read_ticks: busy and idle jiffies of all CPUs so far, in $busy and $idle.
read_ticks() {
	read -r _ user nice system idle_j iowait irq softirq steal _ < /proc/stat
	busy=$((user + nice + system + irq + softirq + steal))
	idle=$((idle_j + iowait))
}
# stats: the module's counts as name=value pairs.
stats() { sed 's/: /=/' $dbg/stats | tr '\n' ' '; }

late=0
if [ "$(date +%s)" -lt "$start" ]; then
	while [ "$(date +%s)" -lt "$start" ]; do sleep 0.1; done
else
	late=1
fi
echo "load-started late=$late"
# The first seconds of the load run slower (caches, allocator, the L1's
# mappings of the L2's memory): a warm-up phase, not measured.
echo stock > $dbg/policy
echo "warmup $(/ecs/bin/psearchy_load "$threads" "$warmup" $work)"
failed=0
for policy in "$@"; do
	echo "$policy" > $dbg/policy || { echo "eschdspin_l2_load: bad policy $policy" >&2; exit 2; }
	before=$(stats)
	read_ticks
	busy0=$busy idle0=$idle
	out=$(/ecs/bin/psearchy_load "$threads" "$seconds" $work) || failed=1
	read_ticks
	echo "phase policy=$policy ops=$(echo "$out" | awk '{ print $2 }') seconds=$seconds" \
		"busy_ticks=$((busy - busy0)) idle_ticks=$((idle - idle0)) late=$late" \
		"before: $before after: $(stats)"
done
echo "=== summary"
umount $work
rmmod eschdspin
rmmod ecs
exit $failed
