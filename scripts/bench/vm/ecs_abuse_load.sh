#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A guest that abuses eCS: with the shim loaded it keeps a non-preemptible
# section open almost all the time (the shim's test knob holds one for
# 50 ms, back to back), so that every preemption decision finds it in a
# section. Not a test: for scripts/bench/host.sh (part abuse), where it
# must get no more CPU than a plain guest beside it.
#
#   ecs_abuse_load.sh --shim SECONDS
#
# Prints "load-started", then "=== abuse", "holds N" and "=== end". Exit 1
# if the shim does not load or enable.
[ "${1:-}" = --shim ] || { echo "usage: ecs_abuse_load.sh --shim SECONDS" >&2; exit 2; }
seconds=${2:?usage: ecs_abuse_load.sh --shim SECONDS}
insmod /ecs/modules/ecs.ko || exit 1
state=$(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state)
[ "$state" = enabled ] || { echo "ecs_abuse_load: shim state '$state', not enabled" >&2; exit 1; }
echo load-started
holds=0
end=$(($(date +%s) + seconds))
while [ "$(date +%s)" -lt $end ]; do
	i=0
	while [ $i -lt 20 ]; do
		echo 'nonpreemptible 50' > /sys/kernel/debug/ecs/hold || exit 1
		i=$((i + 1))
	done
	holds=$((holds + 20))
done
echo "=== abuse"
echo "holds $holds"
echo "=== end"
