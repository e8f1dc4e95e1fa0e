#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Parse and tabulate a scripts/bench/cost.sh results directory.

    bench-cost-report.py DIR

Reads DIR/guest/ktap.log (what scripts/bench/vm/ecs_costbench_dump.sh printed in the
guest: "=== samples_off_N" and "=== samples_on_N" sections holding
ecs_costbench's samples file, see docs/ecs-costbench.md), DIR/insns.json
(scripts/ecs-insn-count.py) and DIR/meta.json, and writes DIR/samples.json
(every raw sample and the summary) and DIR/table.txt (also printed: the
paper's Table 4 beside ours). Exits 1 if a run is missing samples.
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from guest_dump import sections  # noqa: E402

# The benchmark's paths, in the paper's order, with the functions of the
# built vmlinux that one empty section of each calls (lock, then unlock).
PATHS = [
    ("empty", "empty loop", []),
    ("api", "API cost", ["__kvm_ecs_activate_preemptible", "__kvm_ecs_deactivate_preemptible"]),
    ("spinlock", "spinlock", ["_raw_spin_lock", "_raw_spin_unlock"]),
    ("rwlock_read", "rwlock (read)", ["_raw_read_lock", "_raw_read_unlock"]),
    ("rwlock_write", "rwlock (write)", ["_raw_write_lock", "_raw_write_unlock"]),
    ("mutex", "mutex", ["mutex_lock", "mutex_unlock"]),
    ("rwsem_read", "rwsem (read)", ["down_read", "up_read"]),
    ("rwsem_write", "rwsem (write)", ["down_write", "up_write"]),
    ("rcu", "RCU", ["__rcu_read_lock", "__rcu_read_unlock"]),
]

# Table 4 of papers/ecs-atc18.txt, ns: (1 core w/o, 1 core w/, 80 core w/o,
# 80 core w/). The paper gives the API cost only with eCS.
PAPER = {
    "api": (None, 16.4, None, 16.4),
    "spinlock": (31.2, 44.8, 4782.3, 4772.9),
    "rwlock_read": (32.0, 38.8, 2418.2, 2519.4),
    "rwlock_write": (27.4, 45.8, 4363.3, 4784.5),
    "mutex": (33.5, 34.4, 49116.4, 48125.7),
    "rwsem_read": (35.6, 36.6, 2588.8, 2737.0),
    "rwsem_write": (33.3, 38.1, 7055.7, 7150.1),
    "rcu": (9.8, 19.7, 9.8, 19.8),
}

SAMPLE_FIELDS = ("path", "threads", "thread", "cpu", "round", "ps_per_section")


def parse_run(name, lines):
    """One samples file: its header and its samples (ns per section)."""
    run = {"name": name, "samples": []}
    for line in lines:
        fields = line.split()
        if not fields or fields[0] == "#":
            continue
        if len(fields) == 2:
            run[fields[0]] = fields[1] if fields[0] == "key" else int(fields[1])
        elif len(fields) == len(SAMPLE_FIELDS):
            s = dict(zip(SAMPLE_FIELDS, fields))
            for k in SAMPLE_FIELDS[1:]:
                s[k] = int(s[k])
            s["ns"] = s.pop("ps_per_section") / 1000
            run["samples"].append(s)
        else:
            raise ValueError(f"{name}: unexpected line {line!r}")
    return run


def check_complete(run):
    """Raise unless the run has every path x thread count x thread x round."""
    want_threads = sorted({1, run["threads"]})
    for path, _, _ in PATHS:
        for n in want_threads:
            got = sum(1 for s in run["samples"] if s["path"] == path and s["threads"] == n)
            if got != n * run["rounds"]:
                raise ValueError(f"{run['name']}: {path} on {n} threads has {got} samples, "
                                 f"expected {n * run['rounds']}")


def insn_counts(insns):
    """function -> (key off, key on) instructions its fast path gains.

    A function may have more sites than its fast path passes (mutex_unlock
    has a second one after the slow path); ecs-insn-count.py marks the one
    an uncontended call runs as fast_path.
    """
    out = {}
    for entry in insns.get("paths", []):
        sites = [s for s in entry.get("sites", []) if s.get("fast_path", True)]
        out[entry["function"]] = (sum(s["off"]["count"] for s in sites),
                                  sum(s["on"]["count"] for s in sites))
    return out


def tool_name(insns):
    tool = insns.get("tool", "?")
    if isinstance(tool, dict):
        return f"{tool.get('disassembler', '?')} ({tool.get('version', '?')})"
    return str(tool)


def describe(values):
    values = sorted(values)
    q = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
    return {"n": len(values), "median": statistics.median(values),
            "p10": q[0], "p90": q[-1], "min": values[0], "max": values[-1]}


def summarise(runs):
    """path -> threads -> off/on statistics, ratio of medians, per-pair ratios."""
    summary = {}
    for path, _, _ in PATHS:
        for n in sorted({s["threads"] for r in runs for s in r["samples"]}):
            by_key = {"off": [], "on": []}
            pair_medians = {}
            for r in runs:
                ns = [s["ns"] for s in r["samples"] if s["path"] == path and s["threads"] == n]
                by_key[r["key"]].extend(ns)
                pair_medians.setdefault(r["pair"], {})[r["key"]] = statistics.median(ns)
            off, on = describe(by_key["off"]), describe(by_key["on"])
            pair_ratios = [p["on"] / p["off"] for p in pair_medians.values()
                           if p.get("off") and "on" in p]
            summary.setdefault(path, {})[str(n)] = {
                "off": off, "on": on, "ratio": on["median"] / off["median"],
                "pair_ratios": pair_ratios,
            }
    return summary


def fmt(x, width=8):
    if x is None:
        return "-".rjust(width)
    return (f"{x:.1f}" if x < 10000 else f"{x:,.0f}").rjust(width)


def table(meta, runs, summary, insns):
    counts = insn_counts(insns)
    threads = max(r["threads"] for r in runs)
    pairs = len({r["pair"] for r in runs})
    lines = [
        "eCS annotation cost: ns per empty critical section (median), kvm_ecs_key off / on",
        f"guest: {threads} vCPUs under TCG ({meta.get('qemu', '?')}), pinned to host CPUs "
        f"{meta.get('pin', '?')}; {pairs} off/on pairs x {runs[0]['rounds']} rounds x "
        f"{runs[0]['iterations']} sections per thread; commit {meta.get('commit', '?')}",
        f"instructions: {tool_name(insns)} on vmlinux sha256 "
        f"{str(insns.get('sha256', '?'))[:16]}..., added by the hooks (lock + unlock)",
        "",
        f"{'':15}|{'1 thread':^33}|{f'{threads} threads':^33}|{'insns added':^13}|"
        f"{'paper, 1 core':^17}|{'paper, 80 cores':^19}",
        f"{'section':15}|{'off':>8}{'on':>8} {'on/off':>6} {'pairs':>9}|"
        f"{'off':>8}{'on':>8} {'on/off':>6} {'pairs':>9}|{'off':>5} {'on':>6} |"
        f"{'w/o':>8}{'w/':>8} |{'w/o':>9}{'w/':>9} ",
    ]
    lines.append("-" * len(lines[-1]))
    for path, label, functions in PATHS:
        row = f"{label:15}|"
        for n in ("1", str(threads)):
            s = summary[path][n]
            pr = s["pair_ratios"]
            spread = f"{min(pr):.2f}-{max(pr):.2f}" if pr else "-"
            row += f"{fmt(s['off']['median'])}{fmt(s['on']['median'])} {s['ratio']:6.2f} {spread:>9}|"
        if functions and all(f in counts for f in functions):
            off = sum(counts[f][0] for f in functions)
            on = sum(counts[f][1] for f in functions)
            row += f"{off:5d} {on:6d} |"
        else:
            row += f"{'-':>5} {'-':>6} |"
        p = PAPER.get(path, (None,) * 4)
        row += f"{fmt(p[0])}{fmt(p[1])} |{fmt(p[2], 9)}{fmt(p[3], 9)} "
        lines.append(row)
    lines += [
        "",
        "on/off is the ratio of the medians; pairs is the range of the ratio over the",
        "off/on pairs, which ran alternately. Every figure includes the loop and the",
        "Rust-to-C call (the empty loop row); TCG inflates absolute times by one to two",
        "orders of magnitude, so compare ratios and instruction counts, not ns, with the",
        "paper (80 Xeon cores, bare KVM). Spinlock and rwlock sections get no hook at",
        "all (the host reads preempt_count), so their ratio shows this setup's noise.",
    ]
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(d, "insns.json")) as f:
        insns = json.load(f)
    dump = sections(os.path.join(d, "guest", "ktap.log"))
    runs = []
    for name, lines in dump.items():
        if name.startswith("samples_"):
            run = parse_run(name, lines)
            run["pair"] = int(name.rsplit("_", 1)[1])
            if run.get("key") not in ("off", "on") or name.split("_")[1] != run["key"]:
                sys.exit(f"bench-cost-report: {name} ran with the key {run.get('key')}")
            check_complete(run)
            runs.append(run)
    if not {r["key"] for r in runs} >= {"off", "on"}:
        sys.exit(f"bench-cost-report: {d}/guest/ktap.log has no off and on runs")
    summary = summarise(runs)
    text = table(meta, runs, summary, insns)
    with open(os.path.join(d, "table.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(d, "samples.json"), "w") as f:
        json.dump({"meta": meta, "paper_table4_ns": PAPER, "insns": insns,
                   "summary": summary, "runs": runs}, f, indent=1)
    print(text, end="")
    print(f"bench-cost: raw samples in {d}/samples.json", file=sys.stderr)


if __name__ == "__main__":
    main()
