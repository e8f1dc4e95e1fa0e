#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of scripts/bench/paired.sh: per-phase metrics from the guest's
snapshots and the L1's samples, per-block log ratios of every arm to the
first, cluster-bootstrap confidence intervals over blocks, and the verdicts
of docs/benchmarks.md ("Pre-registered verdict rules").

    paired-report.py [--from-block N] DIR

Reads DIR/meta.json, DIR/boot-*/ktap.log and, where the run recorded
them, DIR/boot-*/host.log (the host's load and the L1's CPU time per
phase, from paired.sh); writes DIR/samples.json (every
phase), DIR/summary.json, DIR/report.txt (also printed) and DIR/ratios.png,
DIR/wait-cdf.png when matplotlib is there. DIR may be of an older run: its
arms count and v1 (the ecs_host policy module, since removed) are reported
like any other, its policy arguments are printed, and a KVM stat that a
run's kernel did not have counts as 0. --from-block N (default 1) leaves
out each boot's blocks before N as well as the warm-up: a sensitivity
report of a run whose warm-up did not run every arm (docs/benchmarks.md,
"The first phase of a case"); the report says so in its header.
"""

import json
import math
import random
import sys
from pathlib import Path

BOOTSTRAP_RESAMPLES = 10000
BOOTSTRAP_SEED = 20261205
# Pre-registered bounds (docs/benchmarks.md).
HELPS_ABOVE = 1.05
HARMS_BELOW = 0.95
HISTOGRAM_BUCKETS = 32
# A wait percentile gets a verdict only where every phase of the level had
# at least this many samples beyond it (1,000 acquisitions for p99, 10,000
# for p99.9): with fewer, a phase's p99.9 is its one or two longest waits,
# and an A/A pair under icount called p99.9 "harms" at 1.61 [1.20, 2.25]
# with 2,194 to 4,658 acquisitions a phase (run 20261207T123516Z-f7676bd,
# docs/benchmarks.md).
PERCENTILE_TAIL_MIN = 10
WAIT_QUANTILES = {"p99_wait_ns": 0.99, "p999_wait_ns": 0.999}
# rseq_slice_load (--rseq): a granted section counts as stalled when the
# longest gap after its grant reaches 2^9 = 512 us, its log2 bucket 9 or
# above (docs/benchmarks.md): far beyond rseq's 50 us bound and a noise
# thread's turn, about one host time slice of a 1-CPU L1 (750 us).
RSEQ_STALL_BUCKET = 9
# Under TCG the L1's clock is host time: a phase in which other host work
# and steal took more than this many host CPUs on average may be slowed by
# them, and is flagged (docs/benchmarks.md, "Host load"). Under icount it
# counts instructions, and host load moves no phase.
HOST_OTHER_CPUS_MAX = 0.1
# /proc/stat's ticks: USER_HZ, 100 on x86.
USER_HZ = 100
RSEQ_COUNTERS = ["sections", "granted", "yield_late", "unseen"]
RSEQ_HISTOGRAMS = ["granted_gap", "plain_gap"]
KVM_DELTAS = ["exits", "irq_exits", "halt_exits", "request_irq_exits",
              "ecs_extensions", "ecs_preemptions_avoided", "ecs_give_backs",
              "ecs_extensions_expired", "ecs_preemptions",
              "ecs_preempted_in_section", "ecs_extensions_revoked",
              "ecs_extensions_unloaded", "ecs_give_back_writes",
              "ecs_preempted_refused", "ecs_preempted_unseen",
              # Directed yields (host-patches/0012-0013): PV yields the
              # guest asked for and got, and yields of either kind that went
              # to a vCPU preempted inside a section while preferred.
              "directed_yield_attempted", "directed_yield_successful",
              "directed_yield_preferred",
              # Older runs only: the ecs_host policy's polls of an extended
              # vCPU (one exit each), gone with the module.
              "ecs_extension_polls"]


def kv(words):
    return dict(w.split("=", 1) for w in words if "=" in w)


class Level:
    def __init__(self, name):
        self.name = name
        self.phases = []
        self.snaps = {}      # seq -> {"up": s, "threads": {cpu: [ints]}, "stat": [ints]}
        self.lock = None
        # What console-check found in the test L2's console (up to 20
        # lines per L1 boot).
        self.splats = []
        # rcu_membench beside the lock benchmark (--rcu): the uptime its run
        # started at, and its (t_ms, gp_us) and (t_ms, bytes) samples.
        self.rcu_start = None
        self.rcu_gp = []
        self.rcu_series = []


def parse_boot(path):
    """The levels of one L1 boot's output."""
    levels = {}
    level = None
    l1 = {"start": {}, "end": {}}
    snap = None
    dump = False
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.rstrip("\r")
        # A test L2 that hit its time limit printed nothing live: its
        # console, where the snapshots are, follows as comment lines.
        if line.startswith("# --- the whole console of test-"):
            dump = True
            continue
        if dump and line.startswith("# ") and not line.startswith("# --- "):
            line = "test| " + line[2:]
        else:
            dump = False
        if line.startswith("=== level ") and not line.endswith(" end"):
            level = levels.setdefault(line.split()[2], Level(line.split()[2]))
            continue
        if level is None:
            continue
        w = line.split()
        if line.startswith("l1 start ") or line.startswith("l1 end "):
            tag, kind = w[1], w[2]
            if kind == "kvm":
                l1[tag]["kvm"] = {k: int(v) for k, v in kv(w[3:]).items()}
            elif kind == "thread":
                l1[tag].setdefault("threads", {})[f"{w[3]}/{w[4]}"] = [int(x) for x in w[5:8]]
            elif kind == "cpu":
                l1[tag]["stat"] = [int(x) for x in w[3:]]
        elif line.startswith("l2 console console-check: "):
            level.splats.append(line[len("l2 console console-check: "):])
        elif line.startswith("phase "):
            p = kv(w[1:])
            level.phases.append({
                "block": int(p["block"]), "pos": int(p["pos"]),
                "arm_index": int(p["arm_index"]), "arm": p["arm"],
                "start": int(p["start"]), "end": int(p["end"]),
                "l1": l1,
            })
            l1 = {"start": {}, "end": {}}
        elif line.startswith("test| "):
            try:
                g = w[1:]
                if not g:
                    continue
                if g[0] == "snap" and len(g) == 3:
                    snap = level.snaps.setdefault(int(g[1]), {"up": float(g[2]), "threads": {}})
                elif g[0] == "lb" and len(g) > 1 and g[1] == "lock":
                    level.lock = " ".join(g[1:])
                elif g[0] == "lb" and snap is not None and len(g) == 7 + HISTOGRAM_BUCKETS:
                    snap["threads"][int(g[1])] = [int(x) for x in g[2:]]
                elif g[0] == "stat" and snap is not None:
                    snap["stat"] = [int(x) for x in g[2:]]
                elif g[0] == "rs" and snap is not None and len(g) == 3 and g[1] in RSEQ_COUNTERS:
                    snap.setdefault("rseq", {})[g[1]] = int(g[2])
                elif g[0] == "rs" and snap is not None and len(g) > 2 and g[1] in RSEQ_HISTOGRAMS:
                    snap.setdefault("rseq", {})[g[1]] = [int(x) for x in g[2:]]
                elif g[0] == "pp" and len(g) == 3 and g[1] == "pairs":
                    level.lock = f"pipe ping-pong, {g[2]} pairs: throughput is round trips, wait a round trip"
                elif g[0] == "pp" and snap is not None and len(g) == 3 and g[1] == "roundtrips":
                    snap.setdefault("pipe", {})["roundtrips"] = int(g[2])
                elif g[0] == "pp" and snap is not None and len(g) == 2 + HISTOGRAM_BUCKETS and g[1] == "roundtrip_ns":
                    snap.setdefault("pipe", {})["hist"] = [int(x) for x in g[2:]]
                elif g[0] == "rcu-start" and len(g) == 2:
                    level.rcu_start = float(g[1])
                elif g[0] == "rcu" and len(g) == 5 and g[1] == "gp":
                    level.rcu_gp.append((int(g[2]), int(g[4])))
                elif g[0] == "rcu" and len(g) == 5 and g[1] == "series":
                    level.rcu_series.append((int(g[2]), int(g[4])))
            except ValueError:
                # A line of a dumped console (an L2 that failed) with kernel
                # messages printed into it: the snapshot it belongs to is
                # not whole, so no phase may start or end at it.
                if snap is not None:
                    snap["garbled"] = True
    # A garbled line of the lock benchmark has the wrong number of fields
    # and was skipped: its snapshot lacks a thread.
    for level in levels.values():
        n = max((len(v["threads"]) for v in level.snaps.values()), default=0)
        level.snaps = {k: v for k, v in level.snaps.items()
                       if not v.get("garbled") and len(v["threads"]) == n}
    return levels


def parse_host(path):
    """paired.sh's host.log: {(level, block, pos): host figures of the
    phase}, or {} for a run that did not record it."""
    phases = {}
    if not path.exists():
        return phases
    for line in path.read_text().splitlines():
        w = line.split()
        if not w or w[0] != "host":
            continue
        p = kv(w[1:])
        try:
            key = (p["level"], int(p["block"]), int(p["pos"]))
            wall_ns = int(p["wall_us"]) * 1000
            busy_ns = int(p["busy_ticks"]) * 1e9 / USER_HZ
            # Older host.log lines counted steal as busy.
            steal_ns = int(p.get("steal_ticks", 0)) * 1e9 / USER_HZ
            vcpu, qemu = int(p["l1_vcpu_ns"]), int(p["l1_qemu_ns"])
        except (KeyError, ValueError):
            continue
        if wall_ns <= 0 or not vcpu:
            continue
        phases[key] = {
            "wall_s": wall_ns / 1e9,
            # Share of a host CPU the L1's vCPU thread ran, the host CPUs
            # that work outside the L1's QEMU kept busy, and those the
            # hypervisor under this machine took (steal).
            "l1_vcpu_cpus": vcpu / wall_ns,
            "other_cpus": max(0.0, (busy_ns - qemu) / wall_ns),
            "steal_cpus": steal_ns / wall_ns,
        }
    return phases


def total(snap):
    """Counters of a snapshot summed over threads: acquisitions, wait_ns,
    preempted_holds, preempted_waits, preempted_wait_ns, histogram."""
    acc = [0] * (5 + HISTOGRAM_BUCKETS)
    for counters in snap["threads"].values():
        acc = [a + c for a, c in zip(acc, counters)]
    return acc


def percentile(hist, q):
    n = sum(hist)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(hist):
        if c and seen + c >= rank:
            frac = (rank - seen) / c
            lo = 1 if i == 0 else 2 ** i
            return lo * (2 ** frac)
        seen += c
    return float(2 ** len(hist))


def counters(snap):
    """total() of a lock benchmark's snapshot; of a pipe ping-pong case's,
    its round trips as acquisitions and their times as waits (it counts
    no wait time and no preempted holder), None if incomplete."""
    if "pipe" in snap:
        p = snap["pipe"]
        return [p["roundtrips"], 0, 0, 0, 0] + p["hist"] if "roundtrips" in p and "hist" in p else None
    return total(snap) if snap["threads"] else None


def phase_metrics(level, phase):
    a, b = level.snaps.get(phase["start"]), level.snaps.get(phase["end"])
    if not a or not b or set(a["threads"]) != set(b["threads"]):
        return None
    ta, tb = counters(a), counters(b)
    dt = b["up"] - a["up"]
    if ta is None or tb is None or dt <= 0:
        return None
    d = [y - x for x, y in zip(ta, tb)]
    hist = d[5:]
    m = {
        "seconds": dt,
        "acquisitions": d[0],
        "throughput": d[0] / dt,
        "mean_wait_ns": d[1] / d[0] if d[0] and "pipe" not in a else None,
        "p99_wait_ns": percentile(hist, 0.99),
        "p999_wait_ns": percentile(hist, 0.999),
        "preempted_holds": d[2],
        "preempted_waits": d[3],
        "lost_to_preempted": d[4] / dt,
        "histogram": hist,
    }
    s, e = phase["l1"]["start"], phase["l1"]["end"]
    if "kvm" in s and "kvm" in e:
        m["kvm"] = {k: e["kvm"].get(k, 0) - s["kvm"].get(k, 0) for k in KVM_DELTAS}
    if "threads" in s and "threads" in e:
        m["threads"] = {t: [y - x for x, y in zip(s["threads"][t], e["threads"][t])]
                        for t in e["threads"] if t in s["threads"]}
    if "stat" in s and "stat" in e and m.get("kvm", {}).get("exits"):
        # The L1's kernel time per exit of the test L2 (USER_HZ ticks of its
        # /proc/stat, system field): an exit costs about the same work in
        # every arm, so a phase where it took far longer ran on a slower
        # platform (a busy host, or QEMU's own changes of speed).
        m["l1_sys_us_per_exit"] = (e["stat"][2] - s["stat"][2]) * 1e6 / USER_HZ / m["kvm"]["exits"]
    if "stat" in a and "stat" in b:
        m["guest_stat"] = [y - x for x, y in zip(a["stat"], b["stat"])]
    ra, rb = a.get("rseq", {}), b.get("rseq", {})
    if all(k in ra and k in rb for k in RSEQ_COUNTERS + RSEQ_HISTOGRAMS):
        r = {k: rb[k] - ra[k] for k in RSEQ_COUNTERS}
        r.update({k: [y - x for x, y in zip(ra[k], rb[k])] for k in RSEQ_HISTOGRAMS})
        r["granted_stalled"] = sum(r["granted_gap"][RSEQ_STALL_BUCKET:])
        r["plain_stalled"] = sum(r["plain_gap"][RSEQ_STALL_BUCKET:])
        m["rseq"] = r
    if level.rcu_start is not None:
        # The phase in rcu_membench's clock: milliseconds since its start.
        lo, hi = (a["up"] - level.rcu_start) * 1000, (b["up"] - level.rcu_start) * 1000
        gps = sorted(us for t, us in level.rcu_gp if lo <= t < hi)
        peak = [by for t, by in level.rcu_series if lo <= t < hi]
        m["rcu_gp_samples"] = len(gps)
        # Nearest rank, as rcu_membench computes its own percentiles.
        m["rcu_gp_p99_us"] = gps[max(0, math.ceil(0.99 * len(gps)) - 1)] if gps else None
        m["rcu_peak_bytes"] = max(peak) if peak else None
    return m


def bootstrap(blocks, stat, rng):
    """Percentile 95% interval of stat(resampled blocks)."""
    n = len(blocks)
    values = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        v = stat([blocks[rng.randrange(n)] for _ in range(n)])
        if v is not None:
            values.append(v)
    if len(values) < BOOTSTRAP_RESAMPLES * 0.9:
        return None
    values.sort()
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]


def estimate(pairs, stat, rng):
    """stat over the blocks' pairs, and its bootstrap interval (two blocks
    at least). For the mean log ratio the interval is the hull of the
    bootstrap's and Student's t interval (docs/benchmarks.md, the rule
    added on 2026-12-07): with few blocks the percentile bootstrap is too
    narrow."""
    est = stat(pairs) if pairs else None
    ci = bootstrap(pairs, stat, rng) if len(pairs) >= 2 else None
    if stat is mean_log_ratio and ci is not None:
        t = t_interval(pairs)
        if t is not None:
            ci = min(ci[0], t[0]), max(ci[1], t[1])
    return est, ci


# Student's t, two-sided 95% (the 0.975 quantile), by degrees of freedom;
# beyond the table the next larger tabulated value is used, which is
# wider than the true one.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
        8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145,
        15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086,
        25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df):
    return T975[min(k for k in T975 if k >= df)] if df <= 120 else 1.960


def log_ratios(pairs):
    """log(arm / reference) of every block where both are positive."""
    return [math.log(a / r) for r, a in pairs if r and a and r > 0 and a > 0]


def log_ratio_spread(pairs):
    """The blocks' log ratios, their mean and standard deviation (None
    with fewer than two usable blocks)."""
    logs = log_ratios(pairs)
    if len(logs) < 2:
        return None
    mu = sum(logs) / len(logs)
    return logs, mu, math.sqrt(sum((x - mu) ** 2 for x in logs) / (len(logs) - 1))


def t_interval(pairs):
    """Student's t 95% interval of the geometric mean of the blocks'
    ratios, from their log ratios."""
    spread = log_ratio_spread(pairs)
    if spread is None or len(spread[0]) < len(pairs):
        return None
    logs, mu, sd = spread
    half = t975(len(logs) - 1) * sd / math.sqrt(len(logs))
    return math.exp(mu - half), math.exp(mu + half)


def mean_log_ratio(pairs):
    logs = log_ratios(pairs)
    return math.exp(sum(logs) / len(logs)) if len(logs) == len(pairs) and logs else None


def sum_ratio(pairs):
    r = sum(p[0] for p in pairs)
    return sum(p[1] for p in pairs) / r if r > 0 else None


def verdict(ci, lower_is_better=False):
    if ci is None:
        return "no data"
    lo, hi = ci
    if lower_is_better:
        lo, hi = 1 / hi, 1 / lo
    if lo > HELPS_ABOVE:
        return "helps"
    if hi < HARMS_BELOW:
        return "harms"
    if lo >= HARMS_BELOW and hi <= HELPS_ABOVE:
        return "no harm"
    return "inconclusive"


def blocks_needed(pairs):
    """Blocks that the spread of the log ratios would need for a 95% CI
    half-width of 5%."""
    spread = log_ratio_spread(pairs)
    if spread is None:
        return None
    return math.ceil((1.96 * spread[2] / math.log(HELPS_ABOVE)) ** 2)


def per_boot(keys, pairs, rng):
    """The throughput ratio of each boot's own blocks, and whether the
    boots' intervals overlap. Blocks of one boot share its L1's state, so
    pooled blocks from boots that disagree make an interval that is too
    narrow for the platform; None with fewer than two boots of two
    blocks."""
    boots = {}
    for (boot, _), pair in zip(keys, pairs):
        boots.setdefault(boot, []).append(pair)
    if len(boots) < 2 or min(map(len, boots.values())) < 2:
        return None, None
    res = {}
    for boot, bp in sorted(boots.items()):
        est, ci = estimate(bp, mean_log_ratio, rng)
        res[boot] = {"ratio": est, "ci95": ci}
    cis = [r["ci95"] for r in res.values()]
    if any(ci is None for ci in cis):
        return res, None
    return res, max(lo for lo, _ in cis) <= min(hi for _, hi in cis)


def fmt_ci(est, ci, scale=1.0, digits=3):
    if est is None:
        return "n/a"
    s = f"{est * scale:.{digits}f}"
    if ci:
        s += f" [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"
    return s


def kvm_sums(i, complete):
    """Arm i's KVM counter deltas summed over the complete blocks, and its
    measured seconds."""
    k = {key: sum(b[i].get("kvm", {}).get(key, 0) for b in complete) for key in KVM_DELTAS}
    return k, sum(b[i]["seconds"] for b in complete)


def extension_table(labels, complete):
    """How each arm's extensions ended, and the exits they cost: a give-back
    write is one exit (host-patches/0007), and so was a poll of the timer of
    the ecs_host policy of older runs (0 without it). Returns the table's
    lines and its sums per arm."""
    rows, sums = [], {}
    for i, label in enumerate(labels):
        k, sec = kvm_sums(i, complete)
        n = k["ecs_extensions"]
        if not n:
            continue
        sums[label] = {"seconds": sec, **k}

        def pct(key):
            return 100 * k[key] / n
        rows.append(f"  {label:8} {n / sec:13.1f} {pct('ecs_preemptions_avoided'):12.1f} "
                    f"{pct('ecs_extensions_expired'):8.1f} {pct('ecs_extensions_revoked'):9.1f} "
                    f"{pct('ecs_extensions_unloaded'):9.1f} "
                    f"{(k['ecs_give_back_writes'] + k['ecs_extension_polls']) / n:11.2f}")
    if not rows:
        return [], sums
    return [f"  {'arm':8} {'extensions/s':>13} {'% left sect.':>12} {'% bound':>8} {'% revoked':>9} "
            f"{'% left CPU':>9} {'exits/ext.':>11}"] + rows, sums


def preemption_table(labels, complete):
    """Where each arm's in-section preemptions without an extension came
    from (host-patches/0015): refused by the check that saw the request
    (after a non-interrupt exit, the vCPU's extension used up, other work
    pending), or unseen by any check (requested while KVM handled an exit,
    where the return from a host interrupt or KVM's run loop preempts);
    the rest came during, at the revocation of, or at the bound of an
    extension."""
    rows = []
    for i, label in enumerate(labels):
        k, sec = kvm_sums(i, complete)
        n = k["ecs_preempted_in_section"]
        if not n:
            continue
        refused, unseen = k["ecs_preempted_refused"], k["ecs_preempted_unseen"]
        rows.append(f"  {label:8} {n / sec:12.1f} {100 * refused / n:10.1f} {100 * unseen / n:10.1f} "
                    f"{100 * (n - refused - unseen) / n:16.1f}")
    if not rows:
        return []
    return [f"  {'arm':8} {'in-sect./s':>12} {'% refused':>10} {'% unseen':>10} "
            f"{'% w/ extension':>16}"] + rows


def yield_table(labels, complete):
    """Each arm's directed yields per second: KVM_HC_SCHED_YIELDs the guest
    made and those that yielded, and yields (those or kvm_vcpu_on_spin()'s,
    from PAUSE exits) that went to a vCPU preempted in its section while
    the preference was on (0 for the round-robin arms by construction).
    Nothing when no arm yielded."""
    rows, any_yield = [], False
    for i, label in enumerate(labels):
        k, sec = kvm_sums(i, complete)
        if not sec:
            continue
        any_yield |= bool(k["directed_yield_attempted"] or k["directed_yield_preferred"])
        rows.append(f"  {label:8} {k['directed_yield_attempted'] / sec:13.1f} "
                    f"{k['directed_yield_successful'] / sec:13.1f} {k['directed_yield_preferred'] / sec:14.1f}")
    if not any_yield:
        return []
    return [f"  {'arm':8} {'PV yields/s':>13} {'PV yielded/s':>13} {'to in-sect./s':>14}"] + rows


def pause_filter(path):
    """The L1's kvm_amd pause filter as paired_l1.sh printed it: whether
    the L2s' spinning could exit to directed yield at all."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("pause_filter "):
            return line.split(" ", 1)[1].strip()
    return None


def quiet(m):
    h = m["host"]
    return h["other_cpus"] + h.get("steal_cpus", 0) <= HOST_OTHER_CPUS_MAX


def host_lines(labels, complete, virtual_time):
    """How fast each arm's L1 ran: its kernel time per exit, the host CPU
    its vCPU thread got and how busy the rest of the host was (where the
    run recorded host.log); which blocks had a phase on a busy host, unless
    the L1 ran in virtual time. Returns the lines, whether every phase has
    host figures, and the indexes of the quiet blocks (all of them in
    virtual time)."""
    if not complete:
        return [], False, []
    has_host = all("host" in m for b in complete for m in b.values())

    def span(vals, fmt):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "n/a"
        return f"{sum(vals) / len(vals):{fmt}} ({min(vals):{fmt}}-{max(vals):{fmt}})"
    lines = [f"  {'arm':8} {'L1 sys us/exit':>22}"
             + (f" {'L1 vCPU thread, host CPUs':>26} {'other host load, CPUs':>22} {'host steal, CPUs':>22}"
                f" {'busy-host phases':>17}"
                if has_host else "")]
    for i, label in enumerate(labels):
        ms = [b[i] for b in complete]
        line = f"  {label:8} {span([m.get('l1_sys_us_per_exit') for m in ms], '.0f'):>22}"
        if has_host:
            busy = sum(1 for m in ms if not quiet(m))
            line += (f" {span([m['host']['l1_vcpu_cpus'] for m in ms], '.2f'):>26}"
                     f" {span([m['host']['other_cpus'] for m in ms], '.2f'):>22}"
                     f" {span([m['host'].get('steal_cpus', 0) for m in ms], '.2f'):>22} {busy:10d} of {len(ms)}")
        lines.append(line)
    if not has_host:
        lines.append("  host load: not recorded (a run before host.log)")
        return lines, False, []
    if virtual_time:
        lines.append("  host load moves no phase: the L1's clock counts instructions (icount)")
        return lines, True, list(range(len(complete)))
    quiet_blocks = [k for k, b in enumerate(complete) if all(quiet(m) for m in b.values())]
    if len(quiet_blocks) < len(complete):
        lines.append(f"  host busy (other load and steal above {HOST_OTHER_CPUS_MAX} CPUs) in "
                     f"{len(complete) - len(quiet_blocks)} of {len(complete)} blocks: the L1's clock is host "
                     "time, so a busy host slows the phase, not the arm; see the quiet-host line")
    return lines, True, quiet_blocks


def rseq_lines(labels, complete, rng):
    """The user-space section under rseq's slice extension (--rseq): how
    often a granted section still lost its vCPU, per arm, and the ratio of
    that fraction to the first arm's, with cluster-bootstrap intervals."""
    if not complete or not all("rseq" in m for b in complete for m in b.values()):
        return [], {}

    def frac(key, total_key, i):
        def f(blocks):
            t = sum(b[i]["rseq"][total_key] for b in blocks)
            return sum(b[i]["rseq"][key] for b in blocks) / t if t else None
        return f

    lines = [f"  {'arm':8} {'grants/s':>9} {'unseen/s':>9} {'% granted stalled':>26} {'% plain stalled':>16} "
             f"{'% yield late':>12}   (stalled: a gap >= {2 ** RSEQ_STALL_BUCKET} us)"]
    res = {}
    for i, label in enumerate(labels):
        sec = sum(b[i]["seconds"] for b in complete)
        g = frac("granted_stalled", "granted", i)
        est, ci = g(complete), bootstrap(complete, g, rng) if len(complete) >= 2 else None
        plain = frac("plain_stalled", "sections", i)(complete)
        late = frac("yield_late", "granted", i)(complete)
        res[label] = {"granted_per_s": sum(b[i]["rseq"]["granted"] for b in complete) / sec,
                      "unseen_per_s": sum(b[i]["rseq"]["unseen"] for b in complete) / sec,
                      "granted_stalled": {"fraction": est, "ci95": ci},
                      "plain_stalled_of_sections": plain, "yield_late": late}
        lines.append(f"  {label:8} {res[label]['granted_per_s']:9.1f} {res[label]['unseen_per_s']:9.1f} "
                     f"{fmt_ci(est, ci, 100, 2):>26} "
                     f"{fmt_ci(plain, None, 100, 2):>16} {fmt_ci(late, None, 100, 1):>12}")
    for i, label in enumerate(labels[1:], start=1):
        def ratio(blocks, i=i):
            ref, arm = frac("granted_stalled", "granted", 0)(blocks), frac("granted_stalled", "granted", i)(blocks)
            return arm / ref if ref and arm is not None else None
        est, ci = ratio(complete), bootstrap(complete, ratio, rng) if len(complete) >= 2 else None
        res[label]["stalled_ratio"] = {"ratio": est, "ci95": ci}
        lines.append(f"  {label} / {labels[0]}: granted user sections that lost the vCPU "
                     f"{fmt_ci(est, ci)} -> {verdict(ci, True)}")
    return lines, res


def main():
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return
    args = sys.argv[1:]
    from_block = 1
    if len(args) == 3 and args[0] == "--from-block" and args[1].isdigit() and int(args[1]) >= 1:
        from_block = int(args[1])
        args = args[2:]
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    out = Path(args[0])
    meta = json.loads((out / "meta.json").read_text())
    # paired.sh names each boot of a 2-vCPU L1 that reset and was replaced.
    resets_file = out / "l1-resets"
    resets = resets_file.read_text().splitlines() if resets_file.exists() else []
    arms = meta["arms"]
    labels = [a if arms[:i].count(a) == 0 else f"{a}#{arms[:i].count(a) + 1}"
              for i, a in enumerate(arms)]
    rng = random.Random(BOOTSTRAP_SEED)
    samples = []
    blocks = {}       # level -> [(boot, block) -> {arm_index: metrics}]
    locks = {}
    splats = {}
    filters = set()
    for boot_dir in sorted(out.glob("boot-*")):
        if not boot_dir.is_dir():
            continue
        log = boot_dir / "ktap.log"
        if not log.exists():
            log = boot_dir / "console.log"
        if not log.exists():
            continue
        boot = boot_dir.name
        filters.add(pause_filter(log))
        host = parse_host(boot_dir / "host.log")
        for name, level in parse_boot(log).items():
            # A level whose L2 died before its load began names no workload.
            locks[name] = level.lock or locks.get(name)
            splats.setdefault(name, []).extend(f"{boot}: {x}" for x in level.splats)
            for phase in level.phases:
                m = phase_metrics(level, phase)
                h = host.get((name, phase["block"], phase["pos"]))
                if m is not None and h is not None:
                    m["host"] = h
                    # The work per second of host CPU the L1 ran: what the
                    # throughput would be if the L1 had had a CPU of its own.
                    m["throughput_per_l1_cpu"] = m["throughput"] / h["l1_vcpu_cpus"]
                samples.append({"boot": boot, "level": name, **{k: v for k, v in phase.items() if k != "l1"},
                                "metrics": m})
                if m is None or phase["block"] < from_block:
                    continue
                blocks.setdefault(name, {}).setdefault((boot, phase["block"]), {})[phase["arm_index"]] = m
    (out / "samples.json").write_text(json.dumps({"meta": meta, "phases": samples}, indent=1))

    lines = [f"make bench: commit {meta['commit']}, build {meta['build_key']}, {meta['qemu']}",
             f"  arms {' '.join(labels)} (ratios against {labels[0]}); lockbench {meta['lockbench']}; "
             + (f"policy {meta.get('policy_args', '-')}; " if "count" in arms or "v1" in arms else "")
             + f"v2 slice {meta.get('slice_us', '-')} us"
             + {"user": "; user tasks give extensions back at their next return to user mode",
                "unlock": "; the guest gives extensions back at the unlock"}.get(meta.get("give_back"), "")
             + f"; {meta['phase_s']} s phases",
             f"  nested TCG figures: a {meta.get('l1_vcpus', 1)}-vCPU L1 under QEMU TCG"
             + (" (one TCG thread: its CPUs take turns)" if meta.get("l1_tcg_threads") == "single"
                and meta.get("l1_vcpus", 1) > 1 else "")
             + (f", icount shift {meta['icount']} (virtual time)" if meta.get("icount", "off") != "off" else "")
             + ", its L2s under the L1's KVM"
             + (f"; L1 boots that reset and were replaced: {len(resets)} ({', '.join(resets)})" if resets else ""),
             "  PAUSE exits: " + ("; ".join(f"kvm_amd pause filter {f}" for f in sorted(filters) if f)
                                  if any(f and "count=0" not in f and "none" not in f for f in filters)
                                  else "none (no pause filter: spinning L2 vCPUs reach directed yield only"
                                       " through PV yields)"),
             ""]
    if from_block > 1:
        lines.insert(-1, f"  sensitivity report: each boot's blocks before block {from_block} left out")
    summary = {"meta": meta, "labels": labels, "levels": {}, "from_block": from_block}
    for name in sorted(blocks, key=lambda n: (n.split("/")[-1], n)):
        lv = blocks.get(name, {})
        complete_keys = sorted(k for k, b in lv.items() if all(i in b for i in range(len(arms))))
        complete = [lv[k] for k in complete_keys]
        lines.append(f"level {name}: {len(complete)} complete blocks ({locks.get(name)})")
        if splats.get(name):
            lines.append(f"  the test L2's console has {len(splats[name])} splat lines (console-check, up to 20"
                         f" a boot; every arm ran in that boot), first: {splats[name][0]}")
        lines.append(f"  {'arm':8} {'throughput /s':>16} {'p99 wait us':>12} {'p99.9 us':>9} {'lost ms/s':>10} "
                     f"{'held+preempted /s':>18} {'exits /s':>9}")
        for i, label in enumerate(labels):
            ms = [b[i] for b in complete]
            if not ms:
                continue
            sec = sum(m["seconds"] for m in ms)

            def mean(key):
                vals = [m[key] for m in ms if m[key] is not None]
                return sum(vals) / len(vals) if vals else float("nan")
            exits = sum(m.get("kvm", {}).get("exits", 0) for m in ms) / sec
            lines.append(f"  {label:8} {mean('throughput'):16.0f} {mean('p99_wait_ns') / 1000:12.1f} "
                         f"{mean('p999_wait_ns') / 1000:9.1f} "
                         f"{mean('lost_to_preempted') / 1e6:10.2f} "
                         f"{sum(m['preempted_holds'] for m in ms) / sec:18.2f} {exits:9.0f}")
        ext_lines, ext_sums = extension_table(labels, complete)
        lines += ext_lines
        lines += preemption_table(labels, complete)
        lines += yield_table(labels, complete)
        virtual_time = meta.get("icount", "off") != "off"
        h_lines, has_host, quiet_blocks = host_lines(labels, complete, virtual_time)
        # Work per host CPU second of the L1 stands in for work per CPU
        # second the L1 had; in virtual time the L1's CPU is its
        # instruction count, and the host's CPU time says nothing.
        per_host_cpu = has_host and not virtual_time
        lines += h_lines
        rs_lines, rs_summary = rseq_lines(labels, complete, rng)
        lines += rs_lines
        has_rcu = bool(complete) and all(m.get("rcu_gp_p99_us") for b in complete for m in b.values())
        if has_rcu:
            lines.append(f"  {'arm':8} {'rcu gp p99 ms':>16} {'rcu peak KiB':>12} {'gp samples/s':>13}")
            for i, label in enumerate(labels):
                ms = [b[i] for b in complete]
                n = len(ms)
                lines.append(f"  {label:8} {sum(m['rcu_gp_p99_us'] for m in ms) / n / 1000:16.1f} "
                             f"{sum(m['rcu_peak_bytes'] or 0 for m in ms) / n / 1024:12.0f} "
                             f"{sum(m['rcu_gp_samples'] for m in ms) / sum(m['seconds'] for m in ms):13.1f}")
        # What every ratio and interval of this level is computed from.
        per_block = [{"boot": k[0], "block": k[1], **{
            labels[i]: {key: lv[k][i].get(key) for key in ("throughput", "p99_wait_ns", "p999_wait_ns",
                                                            "lost_to_preempted", "seconds",
                                                            "rcu_gp_p99_us", "rcu_peak_bytes",
                                                            "throughput_per_l1_cpu", "host")}
            | {"ecs_preemptions_avoided": lv[k][i].get("kvm", {}).get("ecs_preemptions_avoided"),
               "ecs_preempted_in_section": lv[k][i].get("kvm", {}).get("ecs_preempted_in_section")}
            for i in range(len(arms))}} for k in complete_keys]
        level_summary = {"blocks": len(complete), "per_block": per_block, "arms": {},
                         "l2_console_splats": splats.get(name, []),
                         "quiet_host_blocks": len(quiet_blocks) if has_host else None,
                         "extension_counters": ext_sums, "rseq": rs_summary}
        for i, label in enumerate(labels[1:], start=1):
            res = {}
            keys = [("throughput", False), ("p99_wait_ns", True), ("p999_wait_ns", True)]
            if has_rcu:
                keys += [("rcu_gp_p99_us", True), ("rcu_peak_bytes", True)]
            if per_host_cpu:
                keys += [("throughput_per_l1_cpu", False)]
            for key, lower in keys:
                pairs = [(b[0][key], b[i][key]) for b in complete]
                est, ci = estimate(pairs, mean_log_ratio, rng)
                res[key] = {"ratio": est, "ci95": ci, "verdict": verdict(ci, lower),
                            "blocks_for_5pct": blocks_needed(pairs)}
                if key in WAIT_QUANTILES:
                    need = round(PERCENTILE_TAIL_MIN / (1 - WAIT_QUANTILES[key]))
                    fewest = min(b[j]["acquisitions"] for b in complete for j in (0, i))
                    if fewest < need:
                        res[key].update(verdict="too few samples", fewest_per_phase=fewest,
                                        needs_per_phase=need)
                if key == "throughput":
                    res[key]["per_boot"], res[key]["boots_agree"] = per_boot(complete_keys, pairs, rng)
            if has_host and len(quiet_blocks) < len(complete):
                pairs = [(complete[k][0]["throughput"], complete[k][i]["throughput"]) for k in quiet_blocks]
                est, ci = estimate(pairs, mean_log_ratio, rng)
                res["throughput_quiet_host"] = {"ratio": est, "ci95": ci, "verdict": verdict(ci),
                                                "blocks": len(pairs)}
            pairs = [(b[0]["lost_to_preempted"], b[i]["lost_to_preempted"]) for b in complete]
            est, ci = estimate(pairs, sum_ratio, rng)
            res["lost_to_preempted"] = {"ratio": est, "ci95": ci}
            kv_pairs = [(b[i].get("kvm", {}).get("ecs_preemptions_avoided", 0),
                         b[i].get("kvm", {}).get("ecs_preempted_in_section", 0)) for b in complete]

            def avoided(pairs):
                a = sum(p[0] for p in pairs)
                return a / (a + sum(p[1] for p in pairs)) if a + sum(p[1] for p in pairs) else None
            est = avoided(kv_pairs) if kv_pairs else None
            ci = bootstrap(kv_pairs, avoided, rng) if len(kv_pairs) >= 2 and est is not None else None
            res["avoided"] = {"fraction": est, "ci95": ci}
            level_summary["arms"][label] = res
            t, p, p3 = res["throughput"], res["p99_wait_ns"], res["p999_wait_ns"]
            lost = res["lost_to_preempted"]
            lines.append(f"  {label} / {labels[0]}: throughput {fmt_ci(t['ratio'], t['ci95'])} -> {t['verdict']}"
                         + (f" (about {t['blocks_for_5pct']} blocks for +-5%)"
                            if t["verdict"] == "inconclusive" and t["blocks_for_5pct"] else ""))
            if t["per_boot"]:
                lines.append(f"  {'':{len(label)}}   throughput per boot: "
                             + ", ".join(f"{b} {fmt_ci(r['ratio'], r['ci95'])}" for b, r in t["per_boot"].items())
                             + ("" if t["boots_agree"] is not False else
                                " -> the boots disagree: the pooled interval is too narrow, the verdict is"
                                " inconclusive whatever it says"))
            if per_host_cpu:
                c = res["throughput_per_l1_cpu"]
                lines.append(f"  {'':{len(label)}}   throughput per host CPU of the L1 {fmt_ci(c['ratio'], c['ci95'])}"
                             f" -> {c['verdict']}")
            if "throughput_quiet_host" in res:
                q = res["throughput_quiet_host"]
                lines.append(f"  {'':{len(label)}}   throughput, quiet-host blocks only ({q['blocks']}) "
                             f"{fmt_ci(q['ratio'], q['ci95'])} -> {q['verdict']}")
            lines.append(f"  {'':{len(label)}}   p99 wait {fmt_ci(p['ratio'], p['ci95'])} -> {p['verdict']}; "
                         f"p99.9 wait {fmt_ci(p3['ratio'], p3['ci95'])} -> {p3['verdict']}")
            for name_q, q in (("p99", p), ("p99.9", p3)):
                if "needs_per_phase" in q:
                    lines.append(f"  {'':{len(label)}}   ({name_q}: a phase had {q['fewest_per_phase']} samples,"
                                 f" {q['needs_per_phase']} are needed for {PERCENTILE_TAIL_MIN} beyond it)")
            lines.append(f"  {'':{len(label)}}   lost to a preempted holder {fmt_ci(lost['ratio'], lost['ci95'])}; "
                         "in-section preemptions avoided "
                         + (f"{fmt_ci(res['avoided']['fraction'], res['avoided']['ci95'], 100, 1)}%"
                            if res["avoided"]["fraction"] is not None else "n/a (no extension granted)"))
            if has_rcu:
                g, pk = res["rcu_gp_p99_us"], res["rcu_peak_bytes"]
                lines.append(f"  {'':{len(label)}}   rcu grace period p99 {fmt_ci(g['ratio'], g['ci95'])} -> "
                             f"{g['verdict']}; peak callback memory {fmt_ci(pk['ratio'], pk['ci95'])} -> "
                             f"{pk['verdict']}")
        summary["levels"][name] = level_summary
        lines.append("")
    text = "\n".join(lines)
    (out / "report.txt").write_text(text + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(text)
    plot(out, summary, blocks, labels)


def plot(out, summary, blocks, labels):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("paired-report: no matplotlib, no plots", file=sys.stderr)
        return
    levels = list(summary["levels"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in [(axes[0], "throughput", "throughput ratio"),
                           (axes[1], "p99_wait_ns", "p99 wait ratio")]:
        x = 0
        ticks = []
        for name in levels:
            for label, res in summary["levels"][name]["arms"].items():
                r = res[key]
                if r["ratio"] is None:
                    continue
                lo, hi = r["ci95"] or (r["ratio"], r["ratio"])
                ax.errorbar([x], [r["ratio"]], yerr=[[r["ratio"] - lo], [hi - r["ratio"]]], fmt="o", capsize=4)
                ticks.append((x, f"{name}\n{label}"))
                x += 1
        ax.axhline(1.0, color="grey", lw=0.8)
        for bound in (HARMS_BELOW, HELPS_ABOVE):
            ax.axhline(bound, color="grey", lw=0.5, ls="--")
        ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks])
        ax.set_title(f"{title} vs {labels[0]} (95% CI)")
    fig.tight_layout()
    fig.savefig(out / "ratios.png", dpi=100)
    fig, axes = plt.subplots(1, max(1, len(levels)), figsize=(5 * max(1, len(levels)), 4), squeeze=False)
    for ax, name in zip(axes[0], levels):
        for i, label in enumerate(labels):
            hist = [0] * HISTOGRAM_BUCKETS
            for b in blocks.get(name, {}).values():
                if i in b:
                    hist = [h + c for h, c in zip(hist, b[i]["histogram"])]
            n = sum(hist)
            if not n:
                continue
            cum, acc = [], 0
            for c in hist:
                acc += c
                cum.append(acc / n)
            ax.step([2 ** (k + 1) / 1000 for k in range(HISTOGRAM_BUCKETS)], cum, where="post", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("wait (us, log2 buckets)")
        ax.set_ylabel("fraction of acquisitions")
        ax.set_title(f"lock wait CDF, level {name}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "wait-cdf.png", dpi=100)


if __name__ == "__main__":
    main()
