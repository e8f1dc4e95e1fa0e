#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# L1 half of scripts/bench/host.sh: runs in a 1-vCPU L1 of our host kernel
# and measures the eCS host side with L2 guests of the same kernel. Not a
# test: it prints raw data for scripts/bench/host-report.py.
#
#   ecs_host_bench.sh [--parts "avoided fairness abuse rcu"] [--seconds S]
#                     [--repeat N] [--fair-seconds S] [--slice-us US]
#
#   The eCS host side is KVM's slice extension (kvm.ecs_slice_us), off
#   (0) for the baselines and US microseconds (default 4000) otherwise.
#
#   avoided   a 2-vCPU L2 (both vCPUs on the L1's one CPU) runs
#             file_churn_load.sh with the eCS shim, N times with the
#             extension off (the baseline) and N times with it on; KVM
#             counts the vCPUs' preemptions and those that caught the guest
#             in a critical section, sampled twice a second
#   fairness  two 1-vCPU L2s at once, one annotated (shim) and one plain,
#             both running the churn load, the extension on: the CPU time
#             of each vCPU thread every 100 ms for --fair-seconds
#   abuse     as fairness, but the annotated L2 holds non-preemptible
#             sections back to back (scripts/bench/vm/ecs_abuse_load.sh): it must
#             get no more CPU than the plain one
#   rcu       a 2-vCPU L2 runs rcu_membench with the shim, with a busy loop
#             in the L1 beside it, with the extension off and on
#
# Output: "=== NAME" sections. Every L2's own output follows its section,
# each line prefixed "L2NAME| ". Exit 1 if an L2 fails.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

parts="avoided fairness abuse rcu"
seconds=20
repeat=2
fair_seconds=10
slice_us=4000
while [ $# -gt 0 ]; do
	case $1 in
	--parts) parts=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	--fair-seconds) fair_seconds=$2; shift 2 ;;
	--slice-us) slice_us=$2; shift 2 ;;
	*) echo "ecs_host_bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

nested_prepare
[ -f $ECS_SLICE_KNOB ] || { echo "ecs_host_bench: no $ECS_SLICE_KNOB: this L1's KVM lacks the slice extension" >&2; exit 1; }
failed=0

# slice_set US: kvm.ecs_slice_us set to US (0: off), or exit.
slice_set() {
	ecs_slice_set "$1" || { echo "ecs_host_bench: cannot set kvm.ecs_slice_us to $1" >&2; exit 1; }
}
slice_on() { slice_set "$slice_us"; }
slice_off() { slice_set 0; }
slice_off

# l2_output NAME OUTDIR RC: the L2's serial output, prefixed, and its status.
l2_output() {
	echo "l2 $1 rc=$3 $(grep seconds= "$2/status" 2>/dev/null)"
	sed "s/^/$1| /" "$2.ktap"
	[ "$3" = 0 ] || failed=1
}

# A 2-vCPU L2 with the shim runs COMMAND while KVM's stats are sampled.
# run_sampled NAME -- COMMAND...
run_sampled() {
	name=$1
	shift 2
	out=/tmp/$name
	samples=/tmp/$name.stats
	: > "$samples"
	mkdir -p "$out"
	kvm_stats_sampler "$samples" "$out/ktap.log" $ECS_KVM_STATS &
	sampler=$!
	l2_vm "$name" "$out" --smp 2 --cpu host,migratable=off -- "$@"
	rc=$?
	kill $sampler
	wait $sampler 2>/dev/null
	echo "stats dir phase $ECS_KVM_STATS"
	sed 's/^/stats /' "$samples"
	l2_output "$name" "$out" $rc
}

# share_cpu PART ANNOTATED_LOAD: an annotated 1-vCPU L2 running
# ANNOTATED_LOAD (a command of tests/lib, with the shim) and a plain one
# running the churn load share the L1's CPU, the extension on; prints the
# CPU time of each vCPU thread every 100 ms for --fair-seconds under
# "=== PART", and the annotated VM's KVM stats.
share_cpu() {
	part=$1
	load=$2
	slice_on
	for kind in annotated plain; do
		mkdir -p /tmp/$part-$kind
		cmd="/ecs/bench/file_churn_load.sh"
		[ $kind = annotated ] && cmd="/ecs/bench/$load --shim"
		# shellcheck disable=SC2086 # the command and its options are split on purpose
		l2_vm "$part-$kind" /tmp/$part-$kind --smp 1 --cpu host,migratable=off -- \
			$cmd $((fair_seconds + 30)) &
		eval "pid_$kind=\$!"
	done
	# Both loads must run before the window opens.
	n=0
	until grep -q '^load-started' /tmp/$part-annotated/ktap.log 2>/dev/null &&
		grep -q '^load-started' /tmp/$part-plain/ktap.log 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt 600 ] && { echo "ecs_host_bench: the $part L2s never started their load" >&2; break; }
		sleep 0.2
	done
	echo "=== $part"
	# The vCPU thread of each: QEMU names it "CPU 0/KVM".
	for kind in annotated plain; do
		tid=
		qemu=$(l2_qemu_pid "$part-$kind")
		for t in /proc/"$qemu"/task/*; do
			[ "$(cat "$t/comm")" = "CPU 0/KVM" ] && tid=${t##*/}
		done
		echo "thread $kind qemu=$qemu tid=$tid"
		eval "tid_$kind=$tid qemu_$kind=$qemu"
	done
	# shellcheck disable=SC2154 # set by the eval above
	ann=/proc/$qemu_annotated/task/$tid_annotated/schedstat
	# shellcheck disable=SC2154
	pla=/proc/$qemu_plain/task/$tid_plain/schedstat
	kvm_ann=$(ls -d /sys/kernel/debug/kvm/"$qemu_annotated"-* | head -n 1)
	echo "extensions_before $(cat "$kvm_ann/ecs_extensions")"
	echo "columns uptime_cs annotated_ns plain_ns"
	# Shell builtins only: a fork per sample would take CPU from the VMs.
	read -r up _ < /proc/uptime
	end=$((${up%.*} + fair_seconds + 1))
	while :; do
		read -r up _ < /proc/uptime
		read -r a _ < "$ann"
		read -r p _ < "$pla"
		echo "sample ${up%.*}${up#*.} $a $p"
		[ "${up%.*}" -ge $end ] && break
		sleep 0.1
	done
	echo "extensions_after $(cat "$kvm_ann/ecs_extensions")"
	for s in $ECS_KVM_STATS; do echo "kvm_annotated $s $(cat "$kvm_ann/$s")"; done
	for kind in annotated plain; do
		eval "wait \$pid_$kind"
		l2_output "$part-$kind" /tmp/$part-$kind $?
	done
	slice_off
}

echo "=== meta"
echo "l1_cpus $(nproc) l1_kernel $(uname -r) commit $(cat /ecs/COMMIT)"
echo "seconds $seconds repeat $repeat fair_seconds $fair_seconds slice_us $slice_us"
echo "l1_cmdline $(cat /proc/cmdline)"

for part in $parts; do
	case $part in
	avoided)
		i=1
		while [ $i -le "$repeat" ]; do
			for mode in baseline ecs; do
				[ $mode = ecs ] && slice_on
				echo "=== avoided $mode $i"
				run_sampled "avoided-$mode-$i" -- /ecs/bench/file_churn_load.sh --shim "$seconds"
				[ $mode = ecs ] && slice_off
			done
			i=$((i + 1))
		done
		;;
	fairness) share_cpu fairness file_churn_load.sh ;;
	abuse) share_cpu abuse ecs_abuse_load.sh ;;
	rcu)
		for mode in baseline ecs; do
			[ $mode = ecs ] && slice_on
			# The L1's CPU is overcommitted by a busy loop beside the two vCPUs.
			(while :; do :; done) &
			hog=$!
			echo "=== rcu $mode"
			run_sampled "rcu-$mode" -- sh -c \
				'insmod /ecs/modules/ecs.ko && echo load-started && exec /ecs/bench/rcu_membench_dump.sh duration=10 rate=1000'
			kill $hog
			[ $mode = ecs ] && slice_off
		done
		;;
	*) echo "ecs_host_bench: unknown part '$part'" >&2; exit 2 ;;
	esac
done
echo "=== end"
exit $failed
