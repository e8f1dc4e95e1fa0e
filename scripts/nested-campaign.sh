#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Reliability campaign for the nested configuration: boot the L1 host image
# RUNS times, each time running one L1 test, by default
# tests/stress/two_l2.sh (two 2-vCPU L2 guests at once, each busy for a
# while), and record pass/fail and wall time.
#
#   scripts/nested-campaign.sh [--runs N] [--l1-smp N] [--l1-cpu MODEL]
#                              [--busy SECONDS] [--nudge SECONDS]
#                              [--test PATH] [--l2-append ARGS]
#                              [--tcg-threads multi|single] [--icount SHIFT]
#                              [--qemus "Q1 Q2 ..."] [--l2-pin LIST]
#                              [--l2-timeout SECONDS]
#
# --test runs another test of the host image (a path under tests/, e.g.
# nested/l2_boot.sh); --l2-append adds kernel arguments to every L2 it
# boots, e.g. trace events to find out why an L2 hung. --tcg-threads
# single runs the L1's vCPUs on one QEMU thread (scripts/vm), the default
# for an L1 of two or more vCPUs: with a thread per vCPU (multi) a 2-vCPU
# L1 still fails (docs/nested-reliability.md). --icount runs the L1 in deterministic
# virtual time (scripts/vm --icount; one thread). --qemus names QEMU
# binaries that the runs use in turn (run 1 the first, run 2 the second,
# ...; default $ECS_QEMU or qemu-system-x86_64), so that builds are
# compared run by run on the same host state; the summary gives each
# one's pass count. --l2-pin pins vCPU i of each L2 to the L1's CPU
# i mod len(LIST) (comma-separated), so that no L2 vCPU moves between L1
# CPUs. --l2-timeout is each L2's limit inside the L1 (default 4 x busy
# + 150 s); the L1's is 150 s more, the time it needs to boot and start
# them. A debug L1 boots in about a minute and takes another one and a
# half before its L2s start: give it --l2-timeout 900.
#
# Needs ECS_KERNEL and ECS_HOST_INITRD (make sets them: `make campaign`;
# for a debug L1, `make campaign ECS_KERNEL=<debug bzImage>
# ECS_HOST_INITRD=<debug host-default-l2.cpio>`, docs/nested-reliability.md).
# Writes results/nested-campaign/<time>-<commit>/{runs.json,run-N/...};
# a failed run keeps its console log, and its tail is printed.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
repo=$ECS_REPO
runs=20
l1_smp=1
l1_cpu=max,la57=off
busy=10
nudge=1
test=stress/two_l2.sh
l2_append=
tcg_threads=
icount=
qemus=${ECS_QEMU:-qemu-system-x86_64}
l2_pin=
l2_timeout=
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--l1-smp) l1_smp=$2; shift 2 ;;
	--l1-cpu) l1_cpu=$2; shift 2 ;;
	--busy) busy=$2; shift 2 ;;
	--nudge) nudge=$2; shift 2 ;;
	--test) test=$2; shift 2 ;;
	--l2-append) l2_append=$2; shift 2 ;;
	--tcg-threads) tcg_threads=$2; shift 2 ;;
	--icount) icount=$2; tcg_threads=single; shift 2 ;;
	--qemus) qemus=$2; shift 2 ;;
	--l2-pin) l2_pin=$2; shift 2 ;;
	--l2-timeout) l2_timeout=$2; shift 2 ;;
	*) echo "unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -f "${ECS_KERNEL:-}" ] && [ -f "${ECS_HOST_INITRD:-}" ] || { echo "run through make campaign" >&2; exit 2; }
[ -n "$tcg_threads" ] || tcg_threads=$(l1_tcg_threads "$l1_smp")
[ -f "$repo/tests/$test" ] || { echo "--test: no tests/$test" >&2; exit 2; }
case $l2_append in *+*) echo "--l2-append: no '+' please, it separates the arguments on the L1's command line" >&2; exit 2 ;; esac
l2_timeout=${l2_timeout:-$((busy * 4 + 150))}
case $l2_timeout in '' | *[!0-9]* | 0) echo "--l2-timeout wants seconds, got '$l2_timeout'" >&2; exit 2 ;; esac
l1_append="ecs.busy_seconds=$busy ecs.l2_timeout=$l2_timeout"
[ -z "$l2_append" ] || l1_append="$l1_append ecs.l2_append=$(echo "$l2_append" | tr ' ' '+')"
case $l2_pin in '' | [0-9] | [0-9],[0-9] | [0-9],[0-9],[0-9] | [0-9],[0-9],[0-9],[0-9]) ;;
*) echo "--l2-pin wants up to four L1 CPUs, comma-separated, got '$l2_pin'" >&2; exit 2 ;;
esac
for c in ${l2_pin//,/ }; do
	[ "$c" -lt "$l1_smp" ] || { echo "--l2-pin: the L1 has no CPU $c (--l1-smp $l1_smp)" >&2; exit 2; }
done
[ -z "$l2_pin" ] || l1_append="$l1_append ecs.l2_pin=$l2_pin"
out=$(results_dir nested-campaign "-l1smp$l1_smp-tcg$tcg_threads${icount:+-icount$icount}")
read -ra qemu_list <<< "$qemus"
[ ${#qemu_list[@]} -ge 1 ] || { echo "--qemus: no QEMU named" >&2; exit 2; }
qemu_version=
for q in "${qemu_list[@]}"; do
	command -v "$q" > /dev/null || { echo "--qemus: '$q' not found" >&2; exit 2; }
	qemu_version="$qemu_version${qemu_version:+; }$("$q" --version | head -1) ($q)"
done
echo "# L1 kernel $ECS_KERNEL, initramfs $ECS_HOST_INITRD"
echo "# $runs runs of tests/$test: L1 -smp $l1_smp -cpu $l1_cpu, TCG threads $tcg_threads, icount ${icount:-off}, busy ${busy}s, L2 limit ${l2_timeout}s, nudge ${nudge}s, L2 vCPUs pinned to ${l2_pin:-no CPU}; $qemu_version"
[ -z "$l2_append" ] || echo "# every L2 boots with: $l2_append"
pass=0
json="["
for i in $(seq 1 "$runs"); do
	start=$(date +%s.%N)
	qemu=${qemu_list[$(((i - 1) % ${#qemu_list[@]}))]}
	ECS_QEMU=$qemu "$repo/scripts/vm" --initrd "$ECS_HOST_INITRD" --smp "$l1_smp" --cpu "$l1_cpu" --mem 2G \
		--tcg-threads "$tcg_threads" ${icount:+--icount "$icount"} \
		--heartbeat 20 --nudge "$nudge" --timeout $((l2_timeout + 150)) --append "$l1_append" \
		--name "campaign-$i" \
		--out "$out/run-$i" -- "/ecs/tests/$test" > "$out/run-$i.ktap" 2> "$out/run-$i.err"
	rc=$?
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	if [ $rc = 0 ]; then
		pass=$((pass + 1))
		verdict=pass
	else
		verdict=fail
		vm_stopped_dead "$out/run-$i" && verdict=dead
		echo "# run $i FAILED (exit $rc): last console lines:"
		tail -n 15 "$out/run-$i/console.log" | sed 's/^/#   /'
		grep -h '^# ' "$out/run-$i.ktap" | tail -n 10 | sed 's/^/#   /'
	fi
	printf '%2d %s %6.1fs%s\n' "$i" "$verdict" "$secs" "$([ ${#qemu_list[@]} = 1 ] || echo "  $qemu")"
	[ "$i" -gt 1 ] && json+=","
	json+=$(printf '{"run":%d,"result":"%s","exit":%d,"seconds":%.1f,"qemu":"%s"}' \
		"$i" "$verdict" "$rc" "$secs" "$qemu")
done
json+="]"
printf '{"commit":"%s","kernel":"%s","host_initrd":"%s","test":"%s","l2_append":"%s","l2_pin":"%s","l1_smp":%d,"l1_cpu":"%s","tcg_threads":"%s","icount":"%s","busy_seconds":%d,"l2_timeout_seconds":%d,"nudge_seconds":%d,"qemu":"%s","runs":%s}\n' \
	"$(source_revision)" "$ECS_KERNEL" "$ECS_HOST_INITRD" "$test" "$l2_append" "$l2_pin" "$l1_smp" "$l1_cpu" "$tcg_threads" "${icount:-off}" "$busy" "$l2_timeout" "$nudge" "$qemu_version" "$json" > "$out/runs.json"
/usr/bin/python3 - "$out/runs.json" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
ok = [r["seconds"] for r in d["runs"] if r["result"] == "pass"]
n = len(d["runs"])
print(f"# {len(ok)}/{n} passed", end="")
if ok:
    print(f"; wall of passing runs: min {min(ok):.1f}s, median {statistics.median(ok):.1f}s, max {max(ok):.1f}s")
else:
    print()
qemus = sorted({r["qemu"] for r in d["runs"] if "qemu" in r})
if len(qemus) > 1:
    for q in qemus:
        rs = [r for r in d["runs"] if r.get("qemu") == q]
        print(f"#   {sum(r['result'] == 'pass' for r in rs)}/{len(rs)} passed with {q}")
PY
echo "# raw: ${out#"$repo"/}/runs.json"
[ $pass = "$runs" ]
