#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The test L2's side of scripts/bench/vm/paired_l1.sh: the lock benchmark,
# or the pipe ping-pong. Not a test: it prints raw counters for
# scripts/bench/paired-report.py.
#
#   lockbench_load.sh [--rcu RCU_MEMBENCH_PARAMS] [--rseq SECTION_US,NOISE_US,SLEEP_US]
#                     [--pipe PAIRS] [--give-back unlock|user]
#                     WARMUP,PHASE,PHASES,GAP [ECS_LOCKBENCH_PARAM...]
#
# RCU_MEMBENCH_PARAMS are separated by commas ("rate=500,sample_every=50"),
# so that they travel as one word.
#
# Loads the eCS shim and ecs_lockbench with the given parameters (and,
# with --rcu, rcu_membench beside it for the whole run), prints
# "load-started", then takes a numbered snapshot once a second and prints
# "seq SEQ" after each. PHASES phases, the first WARMUP snapshots long and
# the others PHASE, follow each other GAP snapshots apart, the first from
# snapshot GAP to GAP + WARMUP (scripts/bench/vm/paired_l1.sh switches
# the host's arm at each "seq" that ends a phase). Only the
# snapshots that start or end a phase are printed, both after its end: a
# line "snap SEQ UPTIME" followed by the module's cumulative counters
# (lines "lb ...") and this guest's /proc/stat "cpu" line ("stat cpu
# ..."). Each byte written goes out through an emulated UART, an exit to
# the L1's QEMU: printing every snapshot at once (about 500 bytes) made
# them 2.0-2.7 s apart at 2:1, half of a vCPU, and the share grew with
# the counters' digits (run 20261207T123516Z-f7676bd). The L1 side tells
# phases apart by SEQ, so guest and host need no common clock.
# rcu_membench's samples carry milliseconds since its run started:
# "rcu-start UPTIME" before the snapshots, and after them its summary,
# grace periods and footprint as "rcu summary|gp|series ..." lines, which
# the report cuts into phases by the snapshots' uptimes. With --rseq, a
# user-space section under rseq's time slice extension runs beside it
# (rseq_slice_load, its bound raised to rseq's maximum, 50 us) and each
# snapshot carries its cumulative counters ("rs ..." lines). With --pipe,
# PAIRS pairs of threads ping-pong a byte through pipes across the vCPUs
# (pipe_pingpong, the harm detector) instead of the lock benchmark, and
# the snapshots carry its counters ("pp ..." lines) instead of the
# module's: alone, because beside the lock benchmark's CPU-bound threads
# a round trip waited for the guest scheduler (29 a second at 2:1, p99
# 0.6 s, run 20261207T000119Z-5c7d71a). Exit 1 if a module or a load does
# not start. --give-back sets the guest's kvm_ecs.give_back_at_user
# (guest-patches/0014) before the shim loads: "user" (Y, the guest's
# default), a user task's extension is given back at its return to user
# mode; "unlock" (N), at the unlock that leaves the last section. Kernel
# threads give back at the unlock either way.
rcu=
rseq=
pipe=
give_back=
while :; do
	case ${1:-} in
	--rcu) rcu=$(echo "$2" | tr ',' ' '); shift 2 ;;
	--rseq) rseq=$(echo "$2" | tr ',' ' '); shift 2 ;;
	--pipe) pipe=$2; shift 2 ;;
	--give-back) give_back=$2; shift 2 ;;
	*) break ;;
	esac
done
usage="usage: lockbench_load.sh [--rcu PARAMS] [--rseq PARAMS] [--pipe PAIRS] [--give-back unlock|user] WARMUP,PHASE,PHASES,GAP [ECS_LOCKBENCH_PARAM...]"
schedule=${1:?$usage}
shift
IFS=, read -r warmup phase phases gap _extra <<EOF
$schedule
EOF
for n in "$warmup" "$phase" "$phases" "$gap"; do
	case $n in '' | *[!0-9]* | 0) echo "lockbench_load: bad schedule '$schedule': $usage" >&2; exit 2 ;; esac
done
[ -z "$_extra" ] || { echo "lockbench_load: bad schedule '$schedule': $usage" >&2; exit 2; }
rcu_dir=/sys/kernel/debug/rcu_membench
rseq_stats=/tmp/rseq_slice.stats
rseq_bound=/sys/kernel/debug/rseq/slice_ext_nsec
pipe_stats=/tmp/pipe_pingpong.stats

# wait_stats FILE PID NAME: until the load PID has written FILE.
wait_stats() {
	n=0
	until [ -s "$1" ]; do
		n=$((n + 1))
		if ! kill -0 "$2" 2> /dev/null || [ $n -ge 100 ]; then
			echo "lockbench_load: $3 did not start" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# prefixed PREFIX FILE: FILE's lines after PREFIX and a space. A shell
# loop, not sed: a snapshot forks nothing, because forks are slow in an
# overcommitted nested guest: snapshots meant to be 1 s apart, with three
# forks each, were 2.6 s apart at 2:1 and 6.0 s at 4:1 (run
# 20261206T154630Z-1023daa), time taken from the measured load's CPU.
prefixed() {
	while IFS= read -r _l; do echo "${1:+$1 }$_l"; done < "$2"
}

# snapshot SEQ UPTIME: the counters now, as the report reads them.
snapshot() {
	echo "snap $1 $2"
	if [ -n "$pipe" ]; then
		prefixed pp $pipe_stats
	else
		prefixed lb /sys/kernel/debug/ecs_lockbench/stats
	fi
	while read -r _k _rest; do
		[ "$_k" = cpu ] && echo "stat cpu $_rest" && break
	done < /proc/stat
	[ -z "$rseq" ] || prefixed rs $rseq_stats
}

if [ -n "$give_back" ]; then
	case $give_back in
	unlock) at_user=N ;;
	user) at_user=Y ;;
	*) echo "lockbench_load: --give-back wants unlock or user, got '$give_back'" >&2; exit 2 ;;
	esac
	give_back_param=/sys/module/kvm_ecs/parameters/give_back_at_user
	[ -w $give_back_param ] || { echo "lockbench_load: $give_back_param missing: a guest kernel without guest-patches/0014" >&2; exit 1; }
	echo $at_user > $give_back_param || exit 1
	echo "give-back-at-user $(cat $give_back_param)"
fi
insmod /ecs/modules/ecs.ko || exit 1
state=$(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state)
[ "$state" = enabled ] || { echo "lockbench_load: shim state '$state', not enabled" >&2; exit 1; }
[ -n "$pipe" ] || insmod /ecs/modules/ecs_lockbench.ko "$@" || exit 1
if [ -n "$rcu" ]; then
	read -r up _ < /proc/uptime
	# The longest run it allows: a snapshot can take two seconds in a
	# nested guest, so the run ends by "stop" after the last one.
	# shellcheck disable=SC2086 # the module's parameters are split on purpose
	insmod /ecs/modules/rcu_membench.ko duration=3600 $rcu || exit 1
	echo "rcu-start $up"
fi
if [ -n "$rseq" ]; then
	[ -w $rseq_bound ] || { echo "lockbench_load: $rseq_bound missing: no rseq slice extension" >&2; exit 1; }
	echo 50000 > $rseq_bound || exit 1
	echo "rseq-bound-ns $(cat $rseq_bound)"
	# As the pinned tree's run_timeslice_test.sh: glibc must not register
	# rseq itself.
	# shellcheck disable=SC2086 # the load's arguments are split on purpose
	GLIBC_TUNABLES=glibc.pthread.rseq=0 /ecs/selftests/rseq/rseq_slice_load $rseq_stats $rseq &
	rseq_pid=$!
	wait_stats $rseq_stats "$rseq_pid" rseq_slice_load
fi
if [ -n "$pipe" ]; then
	/ecs/bin/pipe_pingpong $pipe_stats "$pipe" &
	pipe_pid=$!
	wait_stats $pipe_stats "$pipe_pid" pipe_pingpong
	echo "pp pairs $pipe"
fi
# The one-second pause between snapshots, without a sleep process: a read
# with a time limit from a FIFO nobody writes.
mkfifo /tmp/snapshot-pause && exec 3<> /tmp/snapshot-pause || exit 1
echo load-started
seq=0
phase_n=0
start=$gap
end=$((start + warmup))
while :; do
	read -r up _ < /proc/uptime
	# Into this guest's memory; printed once the phase is over.
	if [ $seq = $start ]; then
		snapshot $seq "$up" > /tmp/phase-start
	elif [ $seq = $end ]; then
		snapshot $seq "$up" > /tmp/phase-end
	fi
	echo "seq $seq"
	if [ $seq = $end ]; then
		prefixed '' /tmp/phase-start
		prefixed '' /tmp/phase-end
		phase_n=$((phase_n + 1))
		[ $phase_n -lt "$phases" ] || break
		start=$((end + gap))
		end=$((start + phase))
	fi
	seq=$((seq + 1))
	# shellcheck disable=SC3045 # busybox's sh, the guest's, has read -t
	read -r -t 1 _ <&3
done
if [ -n "$pipe" ]; then kill "$pipe_pid"; else rmmod ecs_lockbench; fi
[ -z "$rseq" ] || kill "$rseq_pid"
if [ -n "$rcu" ]; then
	echo stop > $rcu_dir/control
	sed 's/^/rcu summary /' $rcu_dir/summary
	sed 's/^/rcu gp /' $rcu_dir/gp_samples
	sed 's/^/rcu series /' $rcu_dir/series
	rmmod rcu_membench
fi
echo "=== end"
