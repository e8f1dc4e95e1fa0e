#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# L1 half of scripts/bench/paired.sh: in one L1 boot, per overcommit level
# and workload one L2 boot running the lock benchmark or the pipe
# ping-pong (lockbench_load.sh), while the
# host side is switched between arms at runtime, phase by phase, in the
# order given. Not a test: it prints raw data for
# scripts/bench/paired-report.py.
#
#   paired_l1.sh --levels "1:1 2:1 4:1" --arms "off v2 v2keep"
#                --order "0 1 2;1 2 0;..." --phase S --warmup S --gap N
#                [--lockbench "lock=0 hold=500 think=5000;lock=1 ..."]
#                [--slice-us US] [--rcu PARAMS] [--rseq PARAMS] [--pipe PAIRS]
#                [--give-back unlock|user]
#
#   levels     1:1  a 1-vCPU L2 alone on the L1's CPU (negative control)
#              2:1  a 2-vCPU L2
#              4:1  the 2-vCPU L2 and a 2-vCPU competitor L2 running busy
#                   loops (the paper's two VMs per CPU)
#              4:1-1vm a 4-vCPU L2 alone: a spinning vCPU has three others
#                   to yield to, so a directed yield has a choice to make
#              2:2  (a 2-vCPU L1) the 2-vCPU L2 alone, vCPU i on L1 CPU i
#                   (negative control of 4:2)
#              4:2  (a 2-vCPU L1) the 2-vCPU L2 and the competitor, vCPU i
#                   of each pinned to L1 CPU i, as the paper pins them: two
#                   VMs per CPU (that L1 runs on one TCG thread, so its CPUs
#                   take turns: a waiter still never runs beside its holder)
#   arms       off    no extension (kvm.ecs_slice_us=0, KVM's default)
#              v2     KVM granting slice extensions of US microseconds by
#                     itself after host-interrupt exits (kvm.ecs_slice_us,
#                     host-patches/0005)
#              v2any  v2 after any exit (kvm.ecs_slice_any_exit=Y)
#              v2lazy v2 deferring only lazy reschedule requests, never a
#                     full one (kvm.ecs_slice_lazy_only=Y, host-patches/0008)
#              v2keep v2 deferring a further request too while the guest is
#                     in its section, until the bound, instead of ending the
#                     extension (kvm.ecs_slice_revoke=N, host-patches/0009)
#              v2untold v2 without telling the guest, so that it never
#                     gives an extension back (kvm.ecs_slice_tell_guest=N,
#                     host-patches/0017): what the give-backs cost
#              offrr, v2rr off and v2 with directed yield choosing
#                     round-robin, not preferring a vCPU preempted in its
#                     section (kvm.ecs_dy_prefer=N, host-patches/0016)
#              An arm may appear twice (an A/A test).
#   order      one row per block, the arms' indices in the order they run
#   phase      measured seconds per phase
#   warmup     seconds of the first of the warm-up's phases, discarded:
#              one per arm, in the order of the first row, the others
#              PHASE seconds long, so that the first measured phase
#              starts later (docs/benchmarks.md, "The first phase of a
#              case")
#   gap        snapshots between two phases, not measured: the arm is
#              switched at the first, and must be in place a snapshot
#              before the next phase starts (scripts/bench/paired.sh)
#   lockbench  ecs_lockbench parameters; several sets, separated by ";",
#              run one after another, each at every level (none: only
#              the pipe cases)
#   rcu        rcu_membench parameters, separated by commas: run it in the
#              test L2 beside the lock benchmark (lockbench_load.sh)
#   rseq       SECTION_US,NOISE_US,SLEEP_US: run rseq_slice_load in the
#              test L2 beside the lock benchmark (lockbench_load.sh)
#   pipe       after the lock benchmark's cases, one more case per level:
#              PAIRS pairs of pipe_pingpong threads alone in the test L2
#              (lockbench_load.sh --pipe)
#   give-back  where the test L2 gives an extension back: user (its
#              default) or unlock (lockbench_load.sh --give-back)
#
# Output: "=== level L/LOCK" sections with "phase ..." lines and "l1 start|end"
# samples of this L1 around each phase, then the L2s' output prefixed
# "test| " and "comp| ". Exit 1 if an L2 fails or stops printing.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

levels="2:1"
arms="off v2"
order="0 1;1 0"
phase=8
warmup=10
gap=
lockbench=
slice_us=4000
rcu=
rseq=
pipe=
give_back=user
while [ $# -gt 0 ]; do
	case $1 in
	--levels) levels=$2; shift 2 ;;
	--arms) arms=$2; shift 2 ;;
	--order) order=$2; shift 2 ;;
	--phase) phase=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--gap) gap=$2; shift 2 ;;
	--lockbench) lockbench=$2; shift 2 ;;
	--slice-us) slice_us=$2; shift 2 ;;
	--rcu) rcu=$2; shift 2 ;;
	--rseq) rseq=$2; shift 2 ;;
	--pipe) pipe=$2; shift 2 ;;
	--give-back) give_back=$2; shift 2 ;;
	*) echo "paired_l1: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
for n in "$phase" "$warmup"; do
	case $n in '' | *[!0-9]* | 0) echo "paired_l1: --phase and --warmup want positive numbers, got '$phase' and '$warmup'" >&2; exit 2 ;; esac
done
case $give_back in unlock | user) ;; *) echo "paired_l1: --give-back wants unlock or user, got '$give_back'" >&2; exit 2 ;; esac
case $gap in '' | *[!0-9]* | 0 | 1) echo "paired_l1: --gap wants at least 2 snapshots, got '$gap'" >&2; exit 2 ;; esac
# Phases per case: the warm-up (the first row once more) and every arm of
# every row. The test L2 runs them on its own clock (lockbench_load.sh):
# phase k starts gap snapshots after phase k - 1 ends, so this script
# need only switch the arm when a phase ends.
phases=$(($(echo "${order%%;*}" | wc -w) + $(echo "$order" | tr ';' ' ' | wc -w)))
any_exit_param=/sys/module/kvm/parameters/ecs_slice_any_exit
lazy_only_param=/sys/module/kvm/parameters/ecs_slice_lazy_only
revoke_param=/sys/module/kvm/parameters/ecs_slice_revoke
dy_prefer_param=/sys/module/kvm/parameters/ecs_dy_prefer
tell_guest_param=/sys/module/kvm/parameters/ecs_slice_tell_guest
# Seconds without a new snapshot after which the test L2 counts as dead.
SNAPSHOT_SILENCE=60
# Counters of the per-VM KVM debugfs that a phase's samples carry.
KVM_COUNTERS="exits irq_exits halt_exits request_irq_exits directed_yield_attempted
directed_yield_successful directed_yield_preferred $ECS_KVM_STATS"

nested_prepare
failed=0
CR=$(printf '\r')
mkfifo /tmp/paired-pause && exec 5<> /tmp/paired-pause || exit 1
# Whether the L2s' PAUSEs can exit to KVM's directed yield: only with a
# pause filter (paired.sh --pause-filter, and an L0 QEMU that has one).
pf=/sys/module/kvm_amd/parameters
pf_count=$(cat $pf/pause_filter_count 2>/dev/null)
pf_thresh=$(cat $pf/pause_filter_thresh 2>/dev/null)
echo "pause_filter count=${pf_count:-none} thresh=${pf_thresh:-none}"
if [ -n "$(ecs_cmdline kvm_amd)" ] && { [ "${pf_count:-0}" = 0 ] || [ "${pf_thresh:-0}" = 0 ]; }; then
	echo "paired_l1: a pause filter was asked for, but kvm_amd has none (count ${pf_count:-none}, threshold ${pf_thresh:-none}): this L1's CPU lacks pausefilter or pfthreshold (an L0 QEMU without scripts/qemu/0002-...)" >&2
	exit 1
fi

# arm_set NAME: the host side as arm NAME wants it. Like l1_sample it
# forks nothing: between a phase's end and the next one's start the test
# L2 takes --gap snapshots, about a second each, and in this L1 a
# fork waits behind the L2s' vCPUs; a switch that comes too late costs
# its block a phase.
arm_set() {
	# Every KVM knob back to its default (param:value), off first.
	for _pv in $ECS_SLICE_KNOB:0 $any_exit_param:N $lazy_only_param:N $revoke_param:Y \
		$dy_prefer_param:Y $tell_guest_param:Y; do
		_p=${_pv%:*} _v=${_pv##*:}
		[ -f "$_p" ] || continue
		read -r _cur < "$_p"
		if [ "$_cur" != "$_v" ]; then
			echo "$_v" > "$_p" || { echo "paired_l1: cannot reset $_p" >&2; exit 1; }
		fi
	done
	case $1 in
	off) ;;
	v2) echo "$slice_us" > $ECS_SLICE_KNOB ;;
	v2any) echo Y > $any_exit_param && echo "$slice_us" > $ECS_SLICE_KNOB ;;
	v2lazy) echo Y > $lazy_only_param && echo "$slice_us" > $ECS_SLICE_KNOB ;;
	v2keep) echo N > $revoke_param && echo "$slice_us" > $ECS_SLICE_KNOB ;;
	v2untold) echo N > $tell_guest_param && echo "$slice_us" > $ECS_SLICE_KNOB ;;
	offrr) echo N > $dy_prefer_param ;;
	v2rr) echo N > $dy_prefer_param && echo "$slice_us" > $ECS_SLICE_KNOB ;;
	*) echo "paired_l1: unknown arm '$1'" >&2; exit 2 ;;
	esac || { echo "paired_l1: arm $1: cannot set up the host side" >&2; exit 1; }
}

# arm_of I ARM...: the arm at index I of the list, in $arm.
arm_of() {
	shift $(($1 + 1))
	arm=$1
}

# poll_seq: read what the test L2 has printed since the last call from
# fd 4 (its ktap.log, opened by run_case) and set $seen to its newest
# snapshot (-1 before any). A line the L2 is still printing is kept in
# $carry until its end arrives. Never in a subshell: the file offset
# moves there too, and $seen would not.
poll_seq() {
	while :; do
		if IFS= read -r _l <&4; then
			_l=$carry${_l%"$CR"}
			carry=
			case $_l in "seq "*[!0-9]* | "seq ") ;; "seq "*) seen=${_l#seq } ;; esac
		else
			carry=$carry$_l
			return 0
		fi
	done
}

# wait_seq N: until the test L2 has taken snapshot N. Waits the expected
# time first, then looks four times a second, with the shell's own read
# on fd 4 and a read with a time limit on fd 5 (a FIFO nobody writes):
# no fork, so that it neither waits behind the L2s' vCPUs for a process
# nor takes CPU from them.
wait_seq() {
	poll_seq
	# shellcheck disable=SC3045 # busybox's sh, this L1's, has read -t
	[ "$seen" -ge $(($1 - 1)) ] || read -r -t $(($1 - 1 - seen)) _ <&5
	quiet=0
	poll_seq
	while [ "$seen" -lt "$1" ]; do
		# shellcheck disable=SC3045 # as above
		read -r -t 0.25 _ <&5
		poll_seq
		quiet=$((quiet + 1))
		if [ $quiet -gt $((SNAPSHOT_SILENCE * 4)) ]; then
			echo "paired_l1: no snapshot $1 from the test L2 (last $seen) in ${SNAPSHOT_SILENCE}s" >&2
			return 1
		fi
		kill -0 "$test_pid" 2>/dev/null || { echo "paired_l1: the test L2 ended at snapshot $seen" >&2; return 1; }
	done
}

# threads_of TAG QEMU PREFIX: schedstat (run ns, wait ns, slices) of each
# vCPU thread of QEMU, "CPU n/KVM" in QEMU's thread names, after PREFIX.
threads_of() {
	for t in /proc/"$2"/task/*; do
		read -r comm < "$t/comm" 2>/dev/null || continue
		case $comm in
		"CPU "*"/KVM")
			read -r run delay slices < "$t/schedstat" || continue
			n=${comm#CPU }
			echo "${3}thread $1 ${n%/KVM} $run $delay $slices"
			;;
		esac
	done
}

# l1_sample TAG: what this L1 sees of the VMs now, lines "l1 TAG ...".
l1_sample() {
	line=kvm
	for d in /sys/kernel/debug/kvm/"$test_qemu"-*; do
		[ -d "$d" ] || continue
		for s in $KVM_COUNTERS; do
			read -r v < "$d/$s" && line="$line $s=$v"
		done
	done
	echo "l1 $1 $line"
	threads_of test "$test_qemu" "l1 $1 "
	[ -n "$comp_qemu" ] && threads_of comp "$comp_qemu" "l1 $1 "
	while read -r _k _rest; do
		[ "$_k" = cpu ] && echo "l1 $1 cpu $_rest" && break
	done < /proc/stat
}

# run_case LEVEL LOCK PARAMS: one test L2 (and a competitor at 4:1) at
# LEVEL running ecs_lockbench with PARAMS (LOCK pipe: the ping-pong),
# through the warm-up and every block.
run_case() {
	level=$1
	lock=$2
	params=$3
	pin=
	case $level in
	1:1) smp=1 competitor= ;;
	2:1) smp=2 competitor= ;;
	4:1) smp=2 competitor=1 ;;
	4:1-1vm) smp=4 competitor= ;;
	2:2) smp=2 competitor='' pin=0,1 ;;
	4:2) smp=2 competitor=1 pin=0,1 ;;
	*) echo "paired_l1: unknown level '$level'" >&2; exit 2 ;;
	esac
	if [ -n "$pin" ] && [ "$(grep -c ^processor /proc/cpuinfo)" -lt 2 ]; then
		echo "paired_l1: level $level needs a 2-vCPU L1, this one has one CPU" >&2
		exit 2
	fi
	tag=$(echo "$level" | tr ':' 'x')-$lock
	test_dir=/tmp/test-$tag
	comp_dir=/tmp/comp-$tag
	mkdir -p "$test_dir" "$comp_dir"
	echo "=== level $level/$lock"
	echo "level $level/$lock params $params smp $smp competitor ${competitor:-0} phases $phases"
	arm_set off
	comp_pid='' comp_qemu='' test_qemu=''
	if [ -n "$competitor" ]; then
		l2_vm "comp-$tag" "$comp_dir" --smp 2 ${pin:+--pin $pin} --cpu host,migratable=off -- sh -c \
			"echo load-started; (while :; do :; done) & (while :; do :; done) & exec sleep 86400" &
		comp_pid=$!
	fi
	workload=
	[ "$lock" != pipe ] || workload="--pipe $pipe"
	workload="$workload --give-back $give_back"
	# shellcheck disable=SC2086 # the workload's and module's parameters are split on purpose
	l2_vm "test-$tag" "$test_dir" --smp $smp ${pin:+--pin $pin} --cpu host,migratable=off -- \
		/ecs/bench/lockbench_load.sh ${rcu:+--rcu "$rcu"} ${rseq:+--rseq "$rseq"} $workload \
		"$warmup,$phase,$phases,$gap" $params &
	test_pid=$!
	ok=1
	n=0
	until grep -q '^load-started' "$test_dir/ktap.log" 2>/dev/null &&
		{ [ -z "$competitor" ] || grep -q '^load-started' "$comp_dir/ktap.log" 2>/dev/null; }; do
		n=$((n + 1))
		[ $n -gt 1200 ] && { echo "paired_l1: level $level: the L2s never started their load" >&2; ok=; break; }
		# An L2 that died booting (scripts/vm gave up on it) will not start.
		for _pid in "$test_pid" $comp_pid; do
			kill -0 "$_pid" 2>/dev/null && continue
			echo "paired_l1: level $level: an L2 ended before its load started" >&2
			ok=
		done
		[ -n "$ok" ] || break
		# The QEMUs' pids while the L2s boot: the search forks twice per
		# process, and once the snapshots run it outlasted the warm-up
		# at 4:1 (run 20261207T163129Z-4df03fd).
		[ -n "$test_qemu" ] || test_qemu=$(l2_qemu_pid "test-$tag")
		[ -z "$competitor" ] || [ -n "$comp_qemu" ] || comp_qemu=$(l2_qemu_pid "comp-$tag")
		sleep 0.5
	done
	if [ -n "$ok" ]; then exec 4< "$test_dir/ktap.log"; fi
	seen=-1 carry=
	[ -n "$test_qemu" ] || test_qemu=$(l2_qemu_pid "test-$tag")
	[ -z "$competitor" ] || [ -n "$comp_qemu" ] || comp_qemu=$(l2_qemu_pid "comp-$tag")
	echo "qemu test $test_qemu comp ${comp_qemu:-none}"
	# The warm-up, block 0, discarded by the report: the first row once
	# more. A case's first measured phase, right after a one-arm
	# warm-up, ran 1.4-1.9 times as fast as the same arm's later phases
	# in 16 of 65 cases in virtual time, its vCPU threads preempted in
	# this L1 a tenth as often; twice it lasted into the second phase
	# (docs/benchmarks.md, "The first phase of a case"). Then one row of
	# the order per block, in this function's arguments.
	_ifs=$IFS
	IFS=';'
	# shellcheck disable=SC2086 # the order is split into rows on purpose
	set -- "${order%%;*}" $order
	IFS=$_ifs
	block=0
	end=0
	for row; do
		[ -n "$ok" ] || break
		pos=0
		for i in $row; do
			# shellcheck disable=SC2086 # the arms are split on purpose
			arm_of "$i" $arms
			arm_set "$arm"
			start=$((end + gap))
			len=$phase
			[ $block = 0 ] && [ $pos = 0 ] && len=$warmup
			# The arm must have been in place for a second before the
			# phase starts: set before the snapshot before its start.
			# The warm-up is discarded, so its start does not matter.
			late=
			poll_seq
			[ $block = 0 ] || [ "$seen" -le $((start - 2)) ] || late=$seen
			end=$((start + len))
			wait_seq "$start" || { ok=; break; }
			l1_sample start
			wait_seq "$end" || { ok=; break; }
			l1_sample end
			if [ -n "$late" ]; then
				echo "paired_l1: level $level/$lock block $block: arm $arm set at snapshot $late, after phase $start-$end had begun: phase dropped" >&2
			else
				echo "phase level=$level/$lock block=$block pos=$pos arm_index=$i arm=$arm start=$start end=$end"
			fi
			pos=$((pos + 1))
		done
		block=$((block + 1))
	done
	arm_set off
	[ -n "$ok" ] || failed=1
	echo "=== level $level/$lock end"
	wait "$test_pid"
	rc=$?
	echo "l2 test rc=$rc $(grep seconds= "$test_dir/status" 2>/dev/null)"
	# Splats in the test L2's console (soft lockups of starved vCPUs,
	# RCU stalls, ...): the report counts them per case.
	console-check "$test_dir/console.log" 2>&1 | sed 's/^/l2 console /'
	sed 's/^/test| /' "$test_dir.ktap"
	[ $rc = 0 ] || failed=1
	if [ -n "$comp_pid" ]; then
		kill "$comp_qemu" 2>/dev/null
		wait "$comp_pid"
		echo "l2 comp rc=$? (ended by this script once the test L2 was done)"
	fi
}

# lock_name PARAMS: the lock that ecs_lockbench PARAMS select.
lock_name() {
	case $(echo "$1" | sed -n 's/.*lock=\([0-9]*\).*/\1/p') in
	'' | 0) echo spinlock ;;
	1) echo mutex ;;
	2) echo rwsem ;;
	*) echo "paired_l1: bad lock in '$1'" >&2; return 1 ;;
	esac
}

nworkloads=$(echo "$lockbench" | tr ';' '\n' | grep -c .)
w=1
while [ $w -le "$nworkloads" ]; do
	params=$(echo "$lockbench" | cut -d';' -f$w)
	lock=$(lock_name "$params") || exit 2
	for level in $levels; do
		run_case "$level" "$lock" "$params"
	done
	w=$((w + 1))
done
if [ -n "$pipe" ]; then
	for level in $levels; do
		run_case "$level" pipe ""
	done
fi
echo "=== end"
exit $failed
