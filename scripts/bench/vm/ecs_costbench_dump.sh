#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run ecs_costbench with kvm_ecs_key off, then on, and print its samples, for
# scripts/bench/cost.sh (which parses them on the host). Not a test: no KTAP.
#
#   ecs_costbench_dump.sh [--repeat N] [INSMOD_ARG...]
#
# Runs alternate, key off then on, N times (default 3), so that a drift of the
# machine over time shows in both. The key is off at boot. Loading the eCS shim turns it on: with a host that
# offers eCS the shim registers the areas; without one, count_without_host=1
# turns the counting on all the same (the hooks run the same code either way).
# Output: "=== NAME" marker lines, each followed by that file's contents
# (samples_off_1, ecs_state_1, samples_on_1, ..., dmesg), and "=== end". Exit 1 if a
# module does not load or a run saw the key in the wrong state.
bench=/ecs/modules/ecs_costbench.ko
shim=/ecs/modules/ecs.ko
samples=/sys/kernel/debug/ecs_costbench/samples

# run NAME KEY INSMOD_ARG...: one benchmark run, which must see the key as KEY.
run() {
	name=$1 want=$2
	shift 2
	insmod $bench "$@" || { echo "ecs_costbench_dump: insmod ecs_costbench $* failed" >&2; return 1; }
	echo "=== $name"
	cat $samples
	seen=$(sed -n 's/^key //p' $samples)
	rmmod ecs_costbench || return 1
	[ "$seen" = "$want" ] || { echo "ecs_costbench_dump: $name ran with the key $seen" >&2; return 1; }
}

repeat=3
if [ "${1:-}" = --repeat ]; then
	repeat=$2
	shift 2
fi
case $repeat in
'' | *[!0-9]* | 0) echo "ecs_costbench_dump: --repeat wants a positive number, not '$repeat'" >&2; exit 2 ;;
esac
i=1
while [ $i -le "$repeat" ]; do
	run samples_off_$i off "$@" || exit 1
	insmod $shim count_without_host=1 || { echo "ecs_costbench_dump: insmod $shim failed" >&2; exit 1; }
	echo "=== ecs_state_$i"
	cat /sys/kernel/debug/ecs/state
	run samples_on_$i on "$@" || exit 1
	rmmod ecs || exit 1
	i=$((i + 1))
done
echo "=== dmesg"
dmesg | grep ecs
dmesg | console-check -
echo "=== end"
