#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# L1 half of the eSCHDSPIN benchmark (scripts/bench/spin.sh), run in an L1
# of our host kernel with KVM's slice extension on (kvm.ecs_slice_us=US,
# default 1000; all policies are compared with eCS on, as in the paper's
# Figure 6): boots GUESTS L2s of VCPUS vCPUs at once, whose VMM opts in
# to eCS with the pcpu_overloaded hint (l2_vm's --kvm-ecs 3), each running
# scripts/bench/vm/eschdspin_l2_load.sh with the same start second, so
# that their phases (one per policy) coincide. Prints each L2's lines
# prefixed with "<name>| ", and each L2's KVM eCS stats as last read
# (every 10 s, so as to take next to no CPU from the VMs) in "kvm_stats"
# lines; the extension is off again at the end.
#
#   eschdspin_bench.sh --guests N --l2-vcpus V --seconds S --threads T --policies "..."
#                      --boot-allowance S [--slice-us US]
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh
guests=1
l2_vcpus=2
seconds=20
threads=2
policies="stock schdspin eschdspin"
allowance=60
slice_us=1000
while [ $# -gt 0 ]; do
	case $1 in
	--guests) guests=$2; shift 2 ;;
	--l2-vcpus) l2_vcpus=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--policies) policies=$2; shift 2 ;;
	--boot-allowance) allowance=$2; shift 2 ;;
	--slice-us) slice_us=$2; shift 2 ;;
	*) echo "eschdspin_bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

nested_prepare
ecs_slice_set "$slice_us" ||
	{ echo "eschdspin_bench: cannot set kvm.ecs_slice_us to $slice_us" >&2; exit 1; }
echo "bench guests=$guests l2_vcpus=$l2_vcpus seconds=$seconds threads=$threads policies=$policies l1_cpus=$(nproc) slice_us=$slice_us"
stats=/tmp/spin-kvm-stats
: > $stats
# shellcheck disable=SC2086 # the names are split on purpose
KVM_STATS_PERIOD=10 kvm_stats_sampler $stats /nonexistent $ECS_KVM_STATS &
sampler=$!

# Boot the L2s; an L2 that has not started its load 15 s after the start
# second hung in its boot (the TCG nested-SVM fault, docs/nested-reliability.md): stop them all
# and boot them again, at most three times.
attempt=1
while :; do
	start=$(($(date +%s) + allowance))
	echo "boot attempt=$attempt start=$start"
	pids=
	g=1
	while [ $g -le "$guests" ]; do
		rm -rf /tmp/spin$g /tmp/spin$g.ktap /tmp/spin$g.err
		mkdir -p /tmp/spin$g
		# shellcheck disable=SC2086 # the policies are split on purpose
		l2_vm spin$g /tmp/spin$g --smp "$l2_vcpus" --cpu host,migratable=off -- \
			/ecs/bench/eschdspin_l2_load.sh "$start" "$seconds" "$threads" $policies &
		pids="$pids $!"
		g=$((g + 1))
	done
	hung=
	while [ "$(date +%s)" -lt $((start + 15)) ]; do
		hung=
		g=1
		while [ $g -le "$guests" ]; do
			grep -q '^load-started' /tmp/spin$g/ktap.log 2>/dev/null || hung="$hung spin$g"
			g=$((g + 1))
		done
		[ -z "$hung" ] && break
		sleep 1
	done
	[ -z "$hung" ] || [ $attempt -ge 3 ] && break
	echo "boot attempt=$attempt hung:$hung; booting again"
	g=1
	while [ $g -le "$guests" ]; do
		kill "$(l2_qemu_pid spin$g)" 2>/dev/null
		g=$((g + 1))
	done
	for pid in $pids; do wait "$pid"; done
	attempt=$((attempt + 1))
done
failed=0
g=1
for pid in $pids; do
	wait "$pid"
	rc=$?
	echo "l2 spin$g rc=$rc $(grep seconds= /tmp/spin$g/status 2>/dev/null)"
	sed "s/^/spin$g| /" /tmp/spin$g.ktap
	if [ $rc != 0 ]; then
		failed=1
		sed "s/^/spin$g-console| /" /tmp/spin$g/console.log
		sed "s/^/spin$g-status| /" /tmp/spin$g/status
	fi
	g=$((g + 1))
done
kill $sampler
wait $sampler 2>/dev/null
echo "kvm_stats dir phase $ECS_KVM_STATS"
awk '{ last[$1] = $0 } END { for (d in last) print "kvm_stats " last[d] }' $stats
ecs_slice_set 0 || failed=1
splat=$(dmesg | console-check -) || { echo "$splat" | sed 's/^/l1-splat| /'; failed=1; }
exit $failed
