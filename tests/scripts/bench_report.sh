#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: scripts/bench/paired-report.py, the statistics behind
# `make bench`, on synthetic L1 output whose answers are known: an arm with
# 1.5x the reference's throughput in every block "helps" with a CI around
# 1.5; one at 0.5x "harms"; one within 1% of it is "no harm"; one whose
# blocks go both ways by 30% is "inconclusive" and says how many blocks it
# would need. The p99 comes from the phase's histogram, the preempted-holder
# time is compared as a ratio of sums, and the warm-up phase (block 0) and
# a block with a missing arm are left out. rcu_membench's samples are cut
# into phases by the snapshots' uptimes: a grace period between two phases
# counts in neither. rseq_slice_load's granted sections count as stalled
# from a 512 us gap on, not below. A wait percentile gets a verdict only
# with 10 samples beyond it in every phase. The run is of the older kind that
# paired.sh can no longer make but the report must still read: arms off
# and v1 (the removed ecs_host policy module), its policy_args in
# meta.json, and KVM samples with ecs_extension_polls, a stat of that
# time, and without ecs_preempted_refused, a later one (counted as 0).
# Its 2:1/spinlock case has the host's figures of a newer run (host.log):
# the L1's vCPU thread got 0.6 of a host CPU in off's phases and 0.9 in
# v1's, so per host CPU of the L1 the two arms did the same work; one
# block's v1 phase ran beside other host load and another's off phase
# beside steal, so the quiet-host ratio has 4 blocks; the other cases have
# no host figures and say so. Over two boots that disagree, the report
# shows each boot's ratio and says the pooled interval is too narrow.
# A pipe ping-pong case (2:1/pipe, "pp" lines instead of "lb") makes 800
# round trips a second under v1 against off's 1000, each 4x as long: the
# harm detector says "harms" for both. With six blocks the interval is
# the hull of the bootstrap's and Student's t, which is wider.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
report=$repo/scripts/bench/paired-report.py

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ktap_begin 21

# One boot: four cases, arms off (reference) and v1, 6 blocks of 8 s
# phases plus a warm-up; case X's v1 runs at FACTOR[X] times off's
# throughput. Each phase's snapshots are 8 s apart, per thread
# "cpu acquisitions wait_ns preempted_holds preempted_waits
# preempted_wait_ns histogram[32]".
/usr/bin/python3 - "$tmp" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
(out / "boot-1").mkdir()
json.dump({"commit": "test", "build_key": "k", "qemu": "q", "arms": ["off", "v1"], "levels": [],
           "lockbench": "lock=0", "policy_args": "", "phase_s": 8}, open(out / "meta.json", "w"))
cases = {"2:1/spinlock": [1.5] * 6, "4:1/spinlock": [0.5] * 6,
         "1:1/spinlock": [1.01, 0.99, 1.0, 1.005, 0.995, 1.0],
         "2:1/mutex": [1.3, 0.7, 1.3, 0.7, 1.3, 0.7], "2:1/pipe": [0.8] * 6}
lines = []
host_lines = []
for name, factors in cases.items():
    lines.append(f"=== level {name}")
    # Block 0 is the warm-up; block 7 lacks its v1 phase.
    plan = [(0, 0, 1.0)] + [(b, arm, factors[b - 1] if arm else 1.0)
                            for b in range(1, 7) for arm in (0, 1)] + [(7, 0, 1.0)]
    seq, acq, lost, hist = 0, 0, 0, [0] * 32
    # rseq_slice_load in 2:1/spinlock: 1000 grants per phase; off has 100
    # of them with a gap in bucket 10 (1-2 ms) and 50 in bucket 8
    # (256-511 us, not stalled), v1 10 in bucket 9 (512-1023 us).
    rs = {"sections": 0, "granted": 0, "yield_late": 0, "unseen": 0, "granted_gap": [0] * 24, "plain_gap": [0] * 24}
    # The L1's KVM samples of the test L2: off grants no extension, v1 100
    # a phase, with 20 give-back writes and 30 polls of its timer.
    kvm = {"exits": 0, "ecs_extensions": 0, "ecs_give_back_writes": 0, "ecs_extension_polls": 0}

    def kvm_line(tag):
        lines.append(f"l1 {tag} kvm " + " ".join(f"{k}={v}" for k, v in kvm.items()))
    # rcu_membench in 2:1/spinlock only, started at uptime 0.5: grace
    # periods of 10 ms (off) and 2.5 ms (v1), peaks of 4 and 1 MiB, and a
    # 1000 s grace period and 1 GiB peak in every gap between phases.
    rcu = name == "2:1/spinlock"
    rcu_lines = ["test| rcu-start 0.5"] if rcu else []
    pipe = name == "2:1/pipe"
    if pipe:
        lines.append("test| pp pairs 1")

    def rcu_sample(uptime, gp_us, peak):
        t_ms = int((uptime - 0.5) * 1000)
        rcu_lines.append(f"test| rcu gp {t_ms} 0 {gp_us}")
        rcu_lines.append(f"test| rcu series {t_ms} {peak // 1024} {peak}")

    def snap():
        lines.append(f"test| snap {seq} {float(seq):.2f}")
        if pipe:
            lines.append(f"test| pp roundtrips {acq}")
            lines.append("test| pp roundtrip_ns " + " ".join(map(str, hist)))
            return
        lines.append("test| lb lock spinlock hold 500 think 5000")
        lines.append(f"test| lb 0 {acq} {acq * 1000} 0 0 {lost} " + " ".join(map(str, hist)))
        if rcu:
            lines.extend(f"test| rs {k} {v}" if isinstance(v, int) else f"test| rs {k} " + " ".join(map(str, v))
                         for k, v in rs.items())
    for block, arm, f in plan:
        start = seq
        snap()
        kvm_line("start")
        kvm["exits"] += 800
        if arm:
            kvm["ecs_extensions"] += 100
            kvm["ecs_give_back_writes"] += 20
            kvm["ecs_extension_polls"] += 30
        kvm_line("end")
        n = int(8000 * f)
        acq += n
        # off loses 80 ms/s to preempted holders, v1 a quarter of that.
        lost += 8 * (80_000_000 if arm == 0 else 20_000_000)
        # 98% of the waits in bucket 10 (1-2 us), 2% in bucket 20 (1-2 ms)
        # for off and bucket 12 (4-8 us) for v1: each p99 is half-way
        # (geometrically) into its tail bucket.
        if pipe:
            # Every round trip in bucket 16 (64-128 us) for off, 18 for v1.
            hist[18 if arm else 16] += n
        else:
            hist[10] += int(n * 0.98)
            hist[20 if arm == 0 else 12] += n - int(n * 0.98)
        rs["sections"] += 3000
        rs["granted"] += 1000
        rs["plain_gap"][2] += 2000
        if arm == 0:
            rs["granted_gap"][10] += 100
            rs["granted_gap"][8] += 50
            rs["granted_gap"][3] += 850
        else:
            rs["granted_gap"][9] += 10
            rs["granted_gap"][3] += 990
        for k in range(8):
            if rcu:
                rcu_sample(start + 0.25 + k, 2500 if arm else 10000, (1 if arm else 4) << 20)
        seq += 8
        snap()
        if rcu:
            rcu_sample(seq + 0.5, 1_000_000_000, 1 << 30)
        lines.append(f"phase level={name} block={block} pos={arm} arm_index={arm} arm={'v1' if arm else 'off'} "
                     f"start={start} end={seq}")
        if name == "2:1/spinlock":
            busy = 400 if (block, arm) == (3, 1) else 0
            steal = 200 if (block, arm) == (4, 0) else 0
            host_lines.append(f"host level={name} block={block} pos={arm} end_us=0 wall_us=8000000 "
                              f"busy_ticks={busy + 100} steal_ticks={steal} total_ticks=1600 "
                              f"l1_vcpu_ns={(9 if arm else 6) * 800_000_000} l1_qemu_ns=1000000000")
        seq += 1
    lines.append(f"=== level {name} end")
    lines += rcu_lines
(out / "boot-1" / "ktap.log").write_text("\n".join(lines) + "\n")
(out / "boot-1" / "host.log").write_text("\n".join(host_lines) + "\n")
EOF

if ! /usr/bin/python3 "$report" "$tmp" > "$tmp/report.out" 2>&1; then
	sed 's/^/# /' "$tmp/report.out"
	ktap_fail report-runs "paired-report.py failed"
	for t in helps harms no-harm inconclusive warmup-and-incomplete-left-out p99-from-histogram lost-ratio-of-sums rcu-cut-by-phase rseq-stalled-from-512us pipe-harm-detected samples-json older-run-stats host-load \
		percentile-needs-samples virtual-time-unflagged-resets-named \
		boots-disagree-flagged workload-named-by-any-boot garbled-snapshot-dropped few-blocks-t-interval \
		from-block-sensitivity; do
		ktap_skip "$t" "no report"
	done
	ktap_end
fi
ktap_pass report-runs
sed 's/^/# /' "$tmp/report.out"

# get CASE KEY...: a value of summary.json's v1 arm of CASE.
get() {
	/usr/bin/python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))["levels"][sys.argv[2]]
if sys.argv[3] != "blocks":
    v = v["arms"]["v1"]
for k in sys.argv[3:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$tmp/summary.json" "$@"
}
# near A B TOLERANCE: |A - B| <= TOLERANCE.
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; exit !(d <= t && -d <= t) }'; }

ktap_check helps sh -c "[ '$(get 2:1/spinlock throughput verdict)' = helps ] &&
	$(declare -f near); near '$(get 2:1/spinlock throughput ci95 0)' 1.5 0.01 && near '$(get 2:1/spinlock throughput ci95 1)' 1.5 0.01"
ktap_check harms [ "$(get 4:1/spinlock throughput verdict)" = harms ]
ktap_check no-harm [ "$(get 1:1/spinlock throughput verdict)" = "no harm" ]
ktap_check inconclusive sh -c "[ '$(get 2:1/mutex throughput verdict)' = inconclusive ] &&
	[ '$(get 2:1/mutex throughput blocks_for_5pct)' -gt 6 ]"
ktap_check warmup-and-incomplete-left-out [ "$(get 2:1/spinlock blocks)" = 6 ]
# off's p99 is 2^20.5 ns, v1's 2^12.5 ns: a ratio of 2^-8.
ktap_check p99-from-histogram near "$(get 2:1/spinlock p99_wait_ns ratio)" 0.00390625 0.0001
# 8,000 acquisitions in off's phases (12,000 in v1's) are enough for a
# p99 verdict (1,000 needed) and too few for a p99.9 one (10,000).
ktap_check percentile-needs-samples sh -c "[ '$(get 2:1/spinlock p99_wait_ns verdict)' = helps ] &&
	[ '$(get 2:1/spinlock p999_wait_ns verdict)' = 'too few samples' ] &&
	[ '$(get 2:1/spinlock p999_wait_ns fewest_per_phase)' = 8000 ] &&
	grep -q 'p99.9: a phase had 8000 samples, 10000 are needed' '$tmp/report.txt'"
ktap_check lost-ratio-of-sums near "$(get 2:1/spinlock lost_to_preempted ratio)" 0.25 0.001
ktap_check rcu-cut-by-phase sh -c "$(declare -f near); near '$(get 2:1/spinlock rcu_gp_p99_us ratio)' 0.25 0.001 &&
	near '$(get 2:1/spinlock rcu_peak_bytes ratio)' 0.25 0.001 && [ '$(get 2:1/spinlock rcu_gp_p99_us verdict)' = helps ]"
ktap_check rseq-stalled-from-512us /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["levels"]["2:1/spinlock"]["rseq"]
assert abs(r["off"]["granted_stalled"]["fraction"] - 0.10) < 1e-9, r["off"]
assert abs(r["v1"]["granted_stalled"]["fraction"] - 0.01) < 1e-9, r["v1"]
assert abs(r["v1"]["stalled_ratio"]["ratio"] - 0.1) < 1e-9, r["v1"]
assert abs(r["off"]["granted_per_s"] - 125) < 1e-9, r["off"]' "$tmp/summary.json"
ktap_check pipe-harm-detected sh -c "$(declare -f near); near '$(get 2:1/pipe throughput ratio)' 0.8 0.001 &&
	[ '$(get 2:1/pipe throughput verdict)' = harms ] &&
	near '$(get 2:1/pipe p99_wait_ns ratio)' 4.0 0.001 &&
	[ '$(get 2:1/pipe p99_wait_ns verdict)' = harms ] &&
	grep -q 'level 2:1/pipe: 6 complete blocks (pipe ping-pong, 1 pairs' '$tmp/report.txt'"
ktap_check samples-json /usr/bin/python3 -c '
import json, sys
phases = json.load(open(sys.argv[1]))["phases"]
assert len(phases) == 5 * 14, len(phases)
assert all(p["metrics"] and p["metrics"]["seconds"] == 8 for p in phases)' "$tmp/samples.json"
# 6 complete blocks: v1's 600 extensions cost 120 writes and 180 polls,
# 0.50 exits each; off granted none (no row); the stat that the run's
# kernel lacked is 0.
ktap_check older-run-stats sh -c "/usr/bin/python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))[\"levels\"][\"2:1/spinlock\"][\"extension_counters\"]
assert list(c) == [\"v1\"], c
v1 = c[\"v1\"]
assert v1[\"ecs_extensions\"] == 600 and v1[\"ecs_extension_polls\"] == 180, v1
assert v1[\"ecs_preempted_refused\"] == 0, v1' '$tmp/summary.json' &&
	grep -Eq '^  v1 +[0-9.]+( +[0-9.]+){4} +0\.50\$' '$tmp/report.txt' &&
	grep -q 'policy ;' '$tmp/report.txt'"
ktap_check host-load sh -c "$(declare -f near); near '$(get 2:1/spinlock throughput_per_l1_cpu ratio)' 1.0 0.001 &&
	near '$(get 2:1/spinlock throughput_quiet_host ratio)' 1.5 0.001 &&
	[ '$(get 2:1/spinlock throughput_quiet_host blocks)' = 4 ] &&
	grep -q 'host busy (other load and steal above 0.1 CPUs) in 2 of 6 blocks' '$tmp/report.txt' &&
	[ \$(grep -c 'host load: not recorded' '$tmp/report.txt') = 4 ]"

# The same run in virtual time (icount) with a replaced 2-vCPU L1 boot:
# host load moves no phase, so no block is flagged and there is no
# quiet-host ratio nor one per host CPU; the report names the boot that
# reset.
mkdir "$tmp/icount"
cp -r "$tmp/boot-1" "$tmp/icount/"
/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
m.update(icount="5", l1_vcpus=2, l1_tcg_threads="single")
json.dump(m, open(sys.argv[2], "w"))' "$tmp/meta.json" "$tmp/icount/meta.json"
echo "boot 2" > "$tmp/icount/l1-resets"
/usr/bin/python3 "$report" "$tmp/icount" > "$tmp/icount.out" 2>&1
ktap_check virtual-time-unflagged-resets-named sh -c "grep -q 'icount shift 5 (virtual time)' '$tmp/icount.out' &&
	grep -q 'L1 boots that reset and were replaced: 1 (boot 2)' '$tmp/icount.out' &&
	grep -q 'host load moves no phase' '$tmp/icount.out' &&
	! grep -q 'host busy' '$tmp/icount.out' &&
	! grep -q 'quiet-host blocks only' '$tmp/icount.out' &&
	! grep -q 'per host CPU' '$tmp/icount.out' && grep -q 'per host CPU' '$tmp/report.txt'"

# Two boots: the second is the first with 2:1/spinlock and 4:1/spinlock
# swapped, so 2:1/spinlock's v1 runs 1.5x faster in one boot and 0.5x in
# the other (the boots disagree), 1:1/spinlock is the same in both. Its
# 2:1/pipe has no "pp pairs" line, as when the L2 died before its load
# began: the workload is named by boot 1.
mkdir "$tmp/two" "$tmp/two/boot-1" "$tmp/two/boot-2"
cp "$tmp/meta.json" "$tmp/two/"
cp "$tmp/boot-1/ktap.log" "$tmp/two/boot-1/"
sed -e 's|2:1/spinlock|SWAP|g; s|4:1/spinlock|2:1/spinlock|g; s|SWAP|4:1/spinlock|g' \
	-e '/^test| pp pairs/d' "$tmp/boot-1/ktap.log" > "$tmp/two/boot-2/ktap.log"
/usr/bin/python3 "$report" "$tmp/two" > "$tmp/two.out" 2>&1
grep 'per boot' "$tmp/two.out" | sed 's/^/# /'
ktap_check boots-disagree-flagged sh -c "/usr/bin/python3 -c '
import json, sys
lv = json.load(open(sys.argv[1]))[\"levels\"]
t = lv[\"2:1/spinlock\"][\"arms\"][\"v1\"][\"throughput\"]
assert t[\"boots_agree\"] is False and sorted(t[\"per_boot\"]) == [\"boot-1\", \"boot-2\"], t
assert lv[\"1:1/spinlock\"][\"arms\"][\"v1\"][\"throughput\"][\"boots_agree\"] is True' '$tmp/two/summary.json' &&
	grep -q 'the boots disagree' '$tmp/two.out'"
ktap_check workload-named-by-any-boot grep -q 'level 2:1/pipe: 12 complete blocks (pipe ping-pong, 1 pairs' "$tmp/two.out"

# A failed test L2's console, dumped into the log, with a kernel message
# printed into the snapshot that ends 2:1/mutex's block 2 (its v1 phase,
# snapshots 36 to 44), and what console-check found in it: the report
# leaves that block out, still runs, and names the splat.
mkdir "$tmp/garbled" "$tmp/garbled/boot-1"
cp "$tmp/meta.json" "$tmp/garbled/"
awk '/^=== level 2:1\/mutex$/ { m = 1 } /^=== level 2:1\/mutex end$/ { m = 0; print;
	print "l2 console console-check: /tmp/c.log:9:[   41.59] watchdog: BUG: soft lockup - CPU#3 stuck for 26s!"; next }
	{ print } m && /^test\| snap 44 / { print "test| stat cpu 1 2[   41.59] watchdog: BUG: soft lockup" }' \
	"$tmp/boot-1/ktap.log" > "$tmp/garbled/boot-1/ktap.log"
/usr/bin/python3 "$report" "$tmp/garbled" > "$tmp/garbled.out" 2>&1
ktap_check garbled-snapshot-dropped sh -c "grep -q 'level 2:1/mutex: 5 complete blocks' '$tmp/garbled.out' &&
	grep -q 'console has 1 splat lines .*soft lockup' '$tmp/garbled.out' &&
	grep -q 'level 2:1/spinlock: 6 complete blocks' '$tmp/garbled.out'"

# Six blocks whose ratios are those of an A/A pair that read "harms"
# against itself by the percentile bootstrap alone (run
# 20261207T180315Z-354811e): its interval [0.877, 0.946] lies below
# 0.95, Student's t over the same log ratios gives [0.867, 0.967], and
# the verdict comes from the hull of the two: inconclusive.
ktap_check few-blocks-t-interval /usr/bin/python3 -c '
import importlib.util, random, sys
spec = importlib.util.spec_from_file_location("report", sys.argv[1])
r = importlib.util.module_from_spec(spec)
spec.loader.exec_module(r)
pairs = [(40.7, 38.5), (40.6, 38.6), (43.5, 36.2), (42.4, 38.4), (40.9, 39.1), (43.2, 39.3)]
boot = r.bootstrap(pairs, r.mean_log_ratio, random.Random(r.BOOTSTRAP_SEED))
t = r.t_interval(pairs)
est, ci = r.estimate(pairs, r.mean_log_ratio, random.Random(r.BOOTSTRAP_SEED))
assert boot[1] < 0.95 and r.verdict(boot) == "harms", boot
assert abs(t[0] - 0.867) < 0.001 and abs(t[1] - 0.967) < 0.001, t
assert ci == (min(boot[0], t[0]), max(boot[1], t[1])), (ci, boot, t)
assert r.verdict(ci) == "inconclusive", ci' "$report"

# --from-block 2 leaves block 1 out as well as the warm-up, and says so;
# --from-block 0 would count the warm-up and is refused.
mkdir -p "$tmp/from2"
cp -r "$tmp/meta.json" "$tmp/boot-1" "$tmp/from2/"
ktap_check from-block-sensitivity sh -c "/usr/bin/python3 '$report' --from-block 2 '$tmp/from2' > '$tmp/from2.out' 2>&1 &&
	grep -q \"blocks before block 2 left out\" '$tmp/from2.out' &&
	[ \"\$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[\"levels\"][\"2:1/spinlock\"][\"blocks\"])' '$tmp/from2/summary.json')\" = 5 ] &&
	! /usr/bin/python3 '$report' --from-block 0 '$tmp/from2' > /dev/null 2>&1"
ktap_end
