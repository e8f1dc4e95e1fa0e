#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Parse, tabulate and plot a scripts/bench/rcu.sh results directory.

    bench-rcu-report.py DIR

Reads DIR/{baseline,overcommit}/ktap.log (what scripts/bench/vm/rcu_membench_dump.sh
printed in the guest: "=== NAME" sections holding rcu_membench's debugfs
files, see docs/rcu_membench.md) and writes DIR/baseline.json and
DIR/overcommit.json (summary, raw series and raw grace-period samples),
DIR/table.txt (also printed: Table 2 of the paper beside ours) and
DIR/rcu_membench.png (footprint and grace-period latency over time, the
paper's Figure 3). Runs with Debian's /usr/bin/python3 and its matplotlib.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from guest_dump import sections  # noqa: E402

RUNS = ("baseline", "overcommit")

# Table 2 of papers/rcu-reader-preemption-atc17.txt (ms); the footprint
# figure is from the text: "a 50% increase in the peak memory footprint
# (and an 842 MB increase ...)". The paper gives no 99th percentile.
PAPER = {
    "baseline": {"mean": 53.27, "sd": 13.4, "max": 87.66, "min": 8.88,
                 "p90": 60.18, "p50": 59.94, "p99": None},
    "overcommit": {"mean": 69.39, "sd": 30.4, "max": 317.59, "min": 9.13,
                   "p90": 109.98, "p50": 60.32, "p99": None},
}
PAPER_PEAK_INCREASE = "+50% (+842 MB)"


def number(s):
    try:
        return int(s)
    except ValueError:
        return s


def parse_summary(lines):
    summary = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "cpus":
            summary[key] = [int(c) for c in value.split()]
        else:
            summary[key] = number(value.strip())
    return summary


def parse_rows(lines, width):
    rows = []
    for line in lines:
        fields = line.split()
        if len(fields) == width and all(f.isdigit() for f in fields):
            rows.append([int(f) for f in fields])
    return rows


def parse_meminfo(lines):
    info = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and value.split():
            info[key] = int(value.split()[0])
    return info


def parse_status(path):
    status = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                for item in line.split():
                    key, sep, value = item.partition("=")
                    if sep:
                        status[key] = number(value)
    return status


def load_run(d, name):
    log = os.path.join(d, name, "ktap.log")
    if not os.path.exists(log):
        sys.exit(f"bench-rcu-report: {log} is missing: did the {name} run fail?")
    s = sections(log)
    for needed in ("summary", "series", "gp_samples", "end"):
        if needed not in s:
            sys.exit(f"bench-rcu-report: {log} has no '=== {needed}' section")
    run = {
        "run": name,
        "vm": parse_status(os.path.join(d, name, "status")),
        "summary": parse_summary(s["summary"]),
        # [t_ms, outstanding_objects, outstanding_bytes]
        "series": parse_rows(s["series"], 3),
        # [t_ms (queued), cpu, gp_us], in queue-time order
        "gp_samples": sorted(parse_rows(s["gp_samples"], 3)),
        "meminfo_before": parse_meminfo(s.get("meminfo_before", [])),
        "meminfo_after": parse_meminfo(s.get("meminfo_after", [])),
        "dmesg": s.get("dmesg", []),
    }
    check(run)
    return run


def check(run):
    """The raw samples must agree with the module's own summary."""
    summ, gp = run["summary"], [r[2] for r in run["gp_samples"]]
    problems = []
    if len(gp) != summ.get("gp_samples"):
        problems.append(f"{len(gp)} gp_samples lines, summary says {summ.get('gp_samples')}")
    if gp and (min(gp) != summ.get("gp_min_us") or max(gp) != summ.get("gp_max_us")):
        problems.append("gp_samples min/max differ from the summary")
    if summ.get("state") != "done" or summ.get("outstanding_objects") != 0:
        problems.append(f"run not drained: state {summ.get('state')}, "
                        f"outstanding {summ.get('outstanding_objects')}")
    if summ.get("allocated") != summ.get("callbacks"):
        problems.append(f"allocated {summ.get('allocated')} != callbacks {summ.get('callbacks')}")
    for p in problems:
        print(f"# WARNING {run['run']}: {p}")


def ms(us):
    return us / 1000.0


def table(runs, meta):
    b, o = runs["baseline"]["summary"], runs["overcommit"]["summary"]

    def gp(s, key):
        return ms(s[f"gp_{key}_us"])

    def paper(run, key):
        v = PAPER[run][key]
        return "-" if v is None else f"{v:.2f}"

    rows = [("Mean GP duration (ms)",
             f"{gp(b, 'mean'):.2f} (±{gp(b, 'sd'):.2f})",
             f"{gp(o, 'mean'):.2f} (±{gp(o, 'sd'):.2f})",
             f"{PAPER['baseline']['mean']:.2f} (±{PAPER['baseline']['sd']})",
             f"{PAPER['overcommit']['mean']:.2f} (±{PAPER['overcommit']['sd']})")]
    for key, label in (("max", "Max GP duration (ms)"), ("min", "Min GP duration (ms)"),
                       ("p99", "99th %-tile (ms)"), ("p90", "90th %-tile (ms)"),
                       ("p50", "50th %-tile (ms)")):
        rows.append((label, f"{gp(b, key):.2f}", f"{gp(o, key):.2f}",
                     paper("baseline", key), paper("overcommit", key)))
    peak_b, peak_o = b["peak_outstanding_bytes"], o["peak_outstanding_bytes"]
    change = f"{(peak_o / peak_b - 1) * 100:+.0f}%" if peak_b else "-"
    rows += [
        ("Peak footprint (KiB)", f"{peak_b / 1024:.0f}", f"{peak_o / 1024:.0f}", "-", "-"),
        ("Peak footprint vs baseline", "", change, "", PAPER_PEAK_INCREASE),
        ("GP samples", str(b["gp_samples"]), str(o["gp_samples"]), "", ""),
        ("Objects allocated (= freed)", str(b["allocated"]), str(o["allocated"]), "", ""),
        ("Achieved rate (/s/CPU)", str(b["achieved_rate"]), str(o["achieved_rate"]), "2500", "2500"),
        ("Worker CPU time (ms)", str(b["worker_cpu_ms"]), str(o["worker_cpu_ms"]), "", ""),
        ("Lag resets / alloc failures",
         f"{b['lag_resets']} / {b['alloc_failures']}",
         f"{o['lag_resets']} / {o['alloc_failures']}", "", ""),
    ]
    head = ("", "baseline", "overcommit", "paper baseline", "paper overcommit")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    lines = [
        f"# rcu_membench, {meta.get('duration_s', '?')} s per run, "
        f"2 vCPUs pinned to host CPUs {meta.get('pin', '?')}, hog: {meta.get('hog', '?')}, "
        f"commit {meta.get('commit', '?')}",
        f"# {b['workers']} workers x {b['rate']} pairs/s, {b['obj_size']} B objects, "
        f"sections of {b['batch']}; every {b['sample_every']}th object timed",
        "  ".join(h.ljust(w) for h, w in zip(head, widths)),
    ]
    for r in rows:
        lines.append("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]))
    lines.append("# Paper: 32 kernel threads in a 32-vCPU KVM guest on 32 host CPUs, overcommitted by an "
                 "8-vCPU VM with a bursty load on the same CPUs (section 6.2). Here: a TCG guest, "
                 "busy loops on the host; compare our two columns with each other.")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def plot(runs, meta, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"baseline": "tab:blue", "overcommit": "tab:red"}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, run in runs.items():
        series = run["series"]
        top.plot([r[0] / 1000 for r in series], [r[2] / 1024 for r in series],
                 color=colors[name], lw=0.8, label=name)
        gp = run["gp_samples"]
        bottom.scatter([r[0] / 1000 for r in gp], [ms(r[2]) for r in gp], s=2,
                       color=colors[name], alpha=0.4, label=name, linewidths=0)
    top.set_ylabel("outstanding (KiB)")
    top.set_title(f"rcu_membench: footprint and grace periods "
                  f"(hog: {meta.get('hog', '?')}, commit {meta.get('commit', '?')})")
    top.legend(loc="upper right")
    bottom.set_ylabel("grace period (ms)")
    bottom.set_xlabel("time since start of run (s), by call_rcu() time")
    bottom.legend(loc="upper right", markerscale=4)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
    runs = {name: load_run(d, name) for name in RUNS}
    for name, run in runs.items():
        with open(os.path.join(d, f"{name}.json"), "w") as f:
            json.dump(run, f)
    text = table(runs, meta)
    with open(os.path.join(d, "table.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    png = os.path.join(d, "rcu_membench.png")
    plot(runs, meta, png)
    print(f"# raw samples: {d}/{{baseline,overcommit}}.json; plot: {png}")


if __name__ == "__main__":
    main()
