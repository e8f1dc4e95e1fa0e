#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Does the host side make an overcommitted eCS guest faster? Arms of the
# host side compared in paired phases inside one L1 boot and one L2 boot
# per level, switched at runtime in a balanced (Williams) order, over
# several blocks and L1 boots; scripts/bench/paired-report.py turns the
# per-block ratios into cluster-bootstrap confidence intervals and a
# verdict per metric (docs/benchmarks.md, pre-registered rules).
#
#   scripts/bench/paired.sh [--levels "1:1 2:1 4:1"] [--arms "off v2"]
#                           [--blocks N] [--boots N] [--phase S]
#                           [--warmup S] [--lockbench PARAMS]
#                           [--slice-us US] [--rcu PARAMS] [--rseq PARAMS]
#                           [--pipe PAIRS] [--give-back unlock|user]
#                           [--pause-filter COUNT:THRESH]
#                           [--icount SHIFT] [--out DIR] [--report-only DIR]
#
#   --levels L     overcommit levels (1:1, 2:1, 4:1, 4:1-1vm on a 1-vCPU
#                  L1; 2:2, 4:2 on a 2-vCPU L1, an opt-in: see
#                  scripts/bench/vm/paired_l1.sh). A run's levels share
#                  its L1 boots, so they are all of one L1 shape. A 2-vCPU
#                  L1 runs on one TCG thread, the one way it is dependable
#                  (docs/nested-reliability.md); a boot of one that reset
#                  (QEMU ended, no exit status, no time-out) is not a
#                  result, and another boot replaces it, up to --boots more
#   --arms A       host-side arms (off, v2, v2any, v2lazy, v2keep,
#                  v2untold, offrr, v2rr: see
#                  scripts/bench/vm/paired_l1.sh); the first is the
#                  reference of the ratios; "off off" is the A/A test
#                  (default off v2)
#   --blocks N     blocks per level and boot, rounded up to whole Williams
#                  designs (default 6; a design has K rows for K arms, 2K
#                  for an odd K)
#   --boots N      L1 boots (default 1)
#   --phase S      measured seconds per phase (default 8)
#   --warmup S     seconds of the discarded warm-up's first phase (default
#                  10); the warm-up then runs the other arms too, a phase
#                  each, so that the first measured phase starts later
#                  (docs/benchmarks.md, "The first phase of a case")
#   --lockbench P  ecs_lockbench parameters, several sets separated by ";"
#                  each run at every level (default "lock=0 hold=500
#                  think=5000"; "" with --pipe: the pipe cases alone)
#   --slice-us US  the v2 arms' slice extension (kvm.ecs_slice_us,
#                  default 4000: the paper's 1 ms bound scaled for TCG)
#   --rcu PARAMS   also run rcu_membench in the test L2, with these
#                  parameters separated by commas (off by default)
#   --rseq PARAMS  also run a user-space section under rseq's time slice
#                  extension in the test L2 (rseq_slice_load):
#                  SECTION_US,NOISE_US,SLEEP_US, e.g. 20,2,0 (off by default;
#                  under nested TCG the test L2 has stopped printing with it,
#                  docs/benchmarks.md)
#   --pipe PAIRS   one more case per level: PAIRS pairs of threads
#                  ping-ponging a byte through pipes across the test L2's
#                  vCPUs (pipe_pingpong, the harm detector; off by default)
#   --give-back W  where the test L2 gives an extension back, for the whole
#                  run (the guest's kvm_ecs.give_back_at_user,
#                  guest-patches/0014): "user", a user task at its next
#                  return to user mode (the default, as in the guest), or
#                  "unlock", at the unlock that leaves its last section;
#                  kernel threads give back at the unlock either way.
#                  Compare the v2 arms' ratios of two runs
#   --pause-filter COUNT:THRESH
#                  the L1's KVM takes PAUSE exits from its L2s
#                  (kvm_amd.pause_filter_count and pause_filter_thresh, 1 to
#                  65535 each), so that spinning L2 vCPUs reach its directed
#                  yield; needs an L0 QEMU with the pause filter, as
#                  make bench-yield builds it (KERNEL_PIN's QEMU_PATCHES
#                  and scripts/qemu/0002-...-pause-filter-under-TCG.patch,
#                  docs/benchmarks.md); default: none, as TCG's SVM has
#                  no pause filter and KVM then takes no PAUSE exits
#   --icount SHIFT run the L1 in deterministic virtual time (scripts/vm
#                  --icount: each instruction advances its clocks by
#                  2^SHIFT ns, so host load no longer moves the phases;
#                  one TCG thread; needs the suite's QEMU, whose fix made
#                  nested SVM work under icount, docs/nested-reliability.md).
#                  Phases are then in virtual time; at SHIFT 5 it runs
#                  about 1.6 times as fast as host time, each step down
#                  halves that
#   --out DIR      results directory (default
#                  results/bench/<UTC time>-<commit>)
#   --report-only DIR only parse and report a finished DIR (also one of
#                  an older run, with the arms count and v1 of the removed
#                  ecs_host policy module)
#
# Needs ECS_KERNEL and ECS_HOST_INITRD (`make bench` sets them). DIR gets
# meta.json and boot-K/ per L1 boot (its console.log and ktap.log), then
# from the report: samples.json, summary.json, report.txt and PNG plots.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
repo=$ECS_REPO
levels="1:1 2:1 4:1"
arms="off v2"
blocks=6
boots=1
phase=8
warmup=10
lockbench="lock=0 hold=500 think=5000"
slice_us=4000
rcu=
rseq=
pipe=
give_back=user
pause_filter=
icount=
out=
report_only=
while [ $# -gt 0 ]; do
	case $1 in
	--levels) levels=$2; shift 2 ;;
	--arms) arms=$2; shift 2 ;;
	--blocks) blocks=$2; shift 2 ;;
	--boots) boots=$2; shift 2 ;;
	--phase) phase=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--lockbench) lockbench=$2; shift 2 ;;
	--slice-us) slice_us=$2; shift 2 ;;
	--rcu) rcu=$2; shift 2 ;;
	--rseq) rseq=$2; shift 2 ;;
	--pipe) pipe=$2; shift 2 ;;
	--give-back) give_back=$2; shift 2 ;;
	--pause-filter) pause_filter=$2; shift 2 ;;
	--icount) icount=$2; shift 2 ;;
	*) bench_option bench "$1" "${2-}"; shift 2 ;;
	esac
done
report() { /usr/bin/python3 "$repo/scripts/bench/paired-report.py" "$1"; }
[ -z "$report_only" ] || { report "$report_only"; exit; }
for n in "$blocks" "$boots" "$phase" "$warmup" "$slice_us"; do
	case $n in '' | *[!0-9]* | 0) echo "bench: --blocks, --boots, --phase, --warmup and --slice-us want positive numbers" >&2; exit 2 ;; esac
done
slice_us_valid bench "$slice_us"
case $pipe in '' | [1-9] | [1-5][0-9] | 6[0-4]) ;; *) echo "bench: --pipe wants 1-64 pairs, got '$pipe'" >&2; exit 2 ;; esac
case $give_back in unlock | user) ;; *) echo "bench: --give-back wants unlock or user, got '$give_back'" >&2; exit 2 ;; esac
l1_smp=
for l in $levels; do
	case $l in
	1:1 | 2:1 | 4:1 | 4:1-1vm) smp=1 ;;
	2:2 | 4:2) smp=2 ;;
	*) echo "bench: unknown level '$l'" >&2; exit 2 ;;
	esac
	[ -z "$l1_smp" ] || [ "$l1_smp" = $smp ] ||
		{ echo "bench: levels '$levels' mix a 1-vCPU and a 2-vCPU L1; run them separately" >&2; exit 2; }
	l1_smp=$smp
done
narms=0
for a in $arms; do
	case $a in off | v2 | v2any | v2lazy | v2keep | v2untold | offrr | v2rr) ;; *) echo "bench: unknown arm '$a'" >&2; exit 2 ;; esac
	narms=$((narms + 1))
done
[ $narms -ge 2 ] || { echo "bench: --arms wants at least two arms" >&2; exit 2; }
l1_threads=$(l1_tcg_threads "$l1_smp")
case $icount in
'') ;;
[0-9] | 10) l1_threads=single ;;
*) echo "bench: --icount wants a shift of 0-10, got '$icount'" >&2; exit 2 ;;
esac
# An L1 on one thread halts when idle: its CPUs take turns, and under
# icount a halt lets the clock jump to the next timer (sleep=off), where
# polling would spend its turn or host time.
l1_append=
[ "$l1_threads" = single ] || l1_append="idle=poll"
if [ -n "$pause_filter" ]; then
	pf_count=${pause_filter%%:*} pf_thresh=${pause_filter#*:}
	case $pause_filter in *:*) ;; *) pf_count= ;; esac
	for n in "$pf_count" "$pf_thresh"; do
		case $n in '' | *[!0-9]* | 0*) n=0 ;; esac
		[ "$n" -ge 1 ] && [ "$n" -le 65535 ] ||
			{ echo "bench: --pause-filter wants COUNT:THRESH, each 1-65535, got '$pause_filter'" >&2; exit 2; }
	done
	l1_append="${l1_append:+$l1_append }ecs.kvm_amd=pause_filter_count=$pf_count+pause_filter_thresh=$pf_thresh"
fi
echo "$lockbench$pipe" | grep -q '[^[:space:];]' ||
	{ echo "bench: nothing to run: --lockbench is empty and no --pipe" >&2; exit 2; }
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_HOST_INITRD:-}" ] ||
	{ echo "bench: no ECS_KERNEL/ECS_HOST_INITRD: run through make bench" >&2; exit 2; }

# williams K: the rows of a Williams design for K arms (each arm once per
# row, each arm before each other equally often), as "0 1 2" lines; two
# squares for odd K.
williams() {
	/usr/bin/python3 - "$1" <<'EOF'
import sys
k = int(sys.argv[1])
first, lo, hi = [0], 1, k - 1
while len(first) < k:
    first.append(lo)
    lo += 1
    if len(first) < k:
        first.append(hi)
        hi -= 1
rows = [[(a + i) % k for a in first] for i in range(k)]
if k % 2:
    rows += [row[::-1] for row in rows]
for row in rows:
    print(" ".join(map(str, row)))
EOF
}
mapfile -t square < <(williams $narms)
nsq=${#square[@]}
blocks=$(((blocks + nsq - 1) / nsq * nsq))

out=$(bench_dir bench "$out") || exit
bench_meta "$out/meta.json" build_key="$(kernel_key default)" levels@="$levels" arms@="$arms" \
	blocks_per_boot:="$blocks" boots:="$boots" phase_s:="$phase" warmup_s:="$warmup" \
	lockbench="$lockbench" slice_us:="$slice_us" rcu="$rcu" rseq="$rseq" pipe="$pipe" give_back="$give_back" l1_vcpus:="$l1_smp" l1_tcg_threads="$l1_threads" icount="${icount:-off}" \
	pause_filter="$pause_filter" \
	accel=tcg || exit 1

# host_snap: this host's side of an L1 sample, in the variables of the
# caller: wall time, the ticks of /proc/stat's cpu line (busy, steal and
# total), and the run time of the L1's QEMU: its vCPU thread and all its
# threads. Under TCG the L1's clock is host time, so when another host
# process takes the L1's CPU, or the hypervisor under this machine does
# (steal), everything the L1 measures in that phase (the L2's work, the
# cost of an exit) looks slower; these say whether that happened.
host_snap() {
	local t comm run rest u n s idle iow irq sirq st
	snap_wall=${EPOCHREALTIME/./}
	read -r _ u n s idle iow irq sirq st _ < /proc/stat
	snap_busy=$((u + n + s + irq + sirq))
	snap_steal=$st
	snap_total=$((snap_busy + st + idle + iow))
	snap_vcpu=0 snap_qemu=0
	[ -n "$qemu_pid" ] || qemu_pid=$(pgrep -P "$vm_pid" -x qemu-system-x86 | head -n 1)
	[ -n "$qemu_pid" ] || return 0
	for t in /proc/"$qemu_pid"/task/*; do
		read -r run rest < "$t/schedstat" 2>/dev/null || continue
		read -r comm < "$t/comm" 2>/dev/null || continue
		snap_qemu=$((snap_qemu + run))
		# One thread per vCPU, or one for all (--tcg-threads single).
		case $comm in "CPU "*"/TCG" | "ALL CPUs/TCG") snap_vcpu=$((snap_vcpu + run)) ;; esac
	done
}

# follow_boot LOG HOSTLOG: while the L1 (QEMU of $vm_pid) runs, a progress
# line on stderr per case and phase of its LOG, and per phase a "host ..."
# line in HOSTLOG: the phase's key, then its end (host time, us) and
# length (wall_us), the host's busy, steal and total
# ticks (USER_HZ) and the run time in ns of the L1's vCPU thread and of
# all its QEMU threads, from the L1's "l1 start" to its "l1 end" sample.
follow_boot() {
	local line w block arm s_wall s_busy s_steal s_total s_vcpu s_qemu
	local snap_wall snap_busy snap_steal snap_total snap_vcpu snap_qemu qemu_pid=
	tail -F -n +1 --pid="$vm_pid" "$1" 2>/dev/null | while IFS= read -r line; do
		line=${line%$'\r'}
		read -ra w <<< "$line"
		case $line in
		"=== level "*" end") ;;
		"=== level "*) echo "bench:   ${w[2]}: booting the L2s" >&2 ;;
		"qemu test "*) echo "bench:   L2s running" >&2 ;;
		"l1 start kvm "*)
			host_snap
			s_wall=$snap_wall s_busy=$snap_busy s_steal=$snap_steal s_total=$snap_total
			s_vcpu=$snap_vcpu s_qemu=$snap_qemu
			;;
		"l1 end kvm "*) host_snap ;;
		"phase "*)
			echo "host ${w[1]} ${w[2]} ${w[3]} end_us=$snap_wall wall_us=$((snap_wall - s_wall))" \
				"busy_ticks=$((snap_busy - s_busy)) steal_ticks=$((snap_steal - s_steal))" \
				"total_ticks=$((snap_total - s_total))" \
				"l1_vcpu_ns=$((snap_vcpu - s_vcpu)) l1_qemu_ns=$((snap_qemu - s_qemu))" >> "$2"
			block=${w[2]#block=} arm=${w[5]#arm=}
			if [ "$block" = 0 ]; then
				echo "bench:   warm-up ($arm) done" >&2
			else
				echo "bench:   block $block/$blocks, arm $arm done" >&2
			fi
			;;
		esac
	done
}

# Under TCG the L1's clock is host time: other work on this host slows
# the phases it overlaps (follow_boot records it, the report flags them).
# Under icount it only makes the run take longer.
read -r load1 _ < /proc/loadavg
case $load1 in
0.[0-4]*) ;;
*) if [ -n "$icount" ]; then
	echo "bench: the host is not idle (load average $load1): in virtual time the run takes longer, the phases measure the same" >&2
else
	echo "bench: the host is not idle (load average $load1): the report flags the phases it slows" >&2
fi ;;
esac

# Snapshots between two phases, not measured: paired_l1.sh switches the
# arm at the first and wants it in place a snapshot (a second) before the
# next phase starts. With two, at 4:1 the switch after the warm-up came
# a snapshot too late in 2 of 4 cases (runs 20261207T163129Z-4df03fd,
# 20261207T165427Z-c2656a2).
switch_gap=3
rc=0
boot=0
good=0
resets=0
while [ $good -lt "$boots" ]; do
	boot=$((boot + 1))
	# Each boot starts at another row of the design, so that over the
	# boots every row leads equally often.
	order=
	for b in $(seq 0 $((blocks - 1))); do
		order="$order${order:+;}${square[$(((b + boot - 1) % nsq))]}"
	done
	# The test L2's snapshots per case: the warm-up and every phase, each
	# after switch_gap unmeasured ones. A snapshot took 1-3 s in an
	# overcommitted nested guest and about 7 s at 4:1 while it forked
	# (run 20261206T135814Z-559da58), and 2.0-2.7 s at 2:1 while it printed
	# every counter (run 20261207T123516Z-f7676bd); at 8 s each, a case is
	# an L2 boot (about 60 s) and its snapshots.
	snapshots=$((switch_gap + warmup + (blocks * narms + narms - 1) * (phase + switch_gap)))
	l2_timeout=$((snapshots * 8 + 400))
	nworkloads=$(echo "$lockbench" | tr ';' '\n' | grep -c .)
	[ -z "$pipe" ] || nworkloads=$((nworkloads + 1))
	ncases=$(($(echo "$levels" | wc -w) * nworkloads))
	timeout=$((ncases * (snapshots * 8 + 180) + 300))
	# The limits above are in the L1's time; below shift 5 its virtual
	# clock runs slower than the host's.
	[ -z "$icount" ] || [ "$icount" -ge 5 ] || timeout=$((timeout << (5 - icount)))
	echo "bench: boot $boot ($((good + 1)) of $boots), levels '$levels', arms '$arms', $blocks blocks of ${phase}s phases (up to ${timeout}s) ..." >&2
	"$repo/scripts/vm" --kernel "$ECS_KERNEL" --initrd "$ECS_HOST_INITRD" --smp "$l1_smp" --mem 2G \
		--tcg-threads "$l1_threads" ${icount:+--icount "$icount"} --append "${l1_append:+$l1_append }ecs.l2_timeout=$l2_timeout" --name bench --out "$out/boot-$boot" \
		--timeout "$timeout" -- /ecs/bench/paired_l1.sh --levels "$levels" --arms "$arms" \
		--order "$order" --phase "$phase" --warmup "$warmup" --gap "$switch_gap" \
		--lockbench "$lockbench" \
		--slice-us "$slice_us" ${rcu:+--rcu "$rcu"} ${rseq:+--rseq "$rseq"} ${pipe:+--pipe "$pipe"} --give-back "$give_back" > /dev/null 2> "$out/boot-$boot.err" &
	vm_pid=$!
	follow_boot "$out/boot-$boot/ktap.log" "$out/boot-$boot/host.log"
	wait "$vm_pid"
	r=$?
	if [ $r != 0 ] && [ "$l1_smp" -gt 1 ] && vm_reset "$out/boot-$boot" && [ $resets -lt "$boots" ]; then
		resets=$((resets + 1))
		echo "bench: boot $boot: the 2-vCPU L1 reset $(sed -n 's/^seconds=//p' "$out/boot-$boot/status") s in" \
			"(docs/nested-reliability.md); its phases still count, another boot replaces it" >&2
		echo "boot $boot" >> "$out/l1-resets"
		tail -n 5 "$out/boot-$boot/console.log" | sed 's/^/bench:   /' >&2
		continue
	fi
	good=$((good + 1))
	if [ $r != 0 ]; then
		echo "bench: boot $boot failed (exit $r), see $out/boot-$boot.err; its phases still count" >&2
		tail -n 20 "$out/boot-$boot.err" >&2
		rc=1
	fi
done
report "$out" || exit
exit $rc
