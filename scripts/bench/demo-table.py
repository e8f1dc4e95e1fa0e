#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The table that ends `make demo` (scripts/demo.sh): per arm of the host
side, from the summary.json of scripts/bench/paired-report.py, what the
double-scheduling problem costs the guest and what the fix changes.

    demo-table.py DIR
"""

import json
import sys
from pathlib import Path

# (label, per_block key, how to combine over blocks, scale, digits, summary key of its ratio)
ROWS = [
    ("vCPU preemptions inside a critical section /s", "ecs_preempted_in_section", "rate", 1, 1, None),
    ("preemptions deferred by an extension /s", "ecs_preemptions_avoided", "rate", 1, 1, None),
    ("time lock waiters lost to a preempted holder, ms/s", "lost_to_preempted", "mean", 1e-6, 1,
     "lost_to_preempted"),
    ("lock acquisitions /s", "throughput", "mean", 1, 0, "throughput"),
    ("p99.9 lock wait, us", "p999_wait_ns", "mean", 1e-3, 1, "p999_wait_ns"),
    ("RCU grace period p99, ms", "rcu_gp_p99_us", "mean", 1e-3, 1, "rcu_gp_p99_us"),
    ("peak memory waiting for a grace period, KiB", "rcu_peak_bytes", "mean", 1 / 1024, 0, "rcu_peak_bytes"),
]


def combine(blocks, label, key, how):
    vals = [(b[label].get(key), b[label]["seconds"]) for b in blocks]
    if not vals or any(v is None for v, _ in vals):
        return None
    if how == "rate":
        return sum(v for v, _ in vals) / sum(s for _, s in vals)
    return sum(v for v, _ in vals) / len(vals)


def main():
    out = Path(sys.argv[1])
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError) as e:
        print(f"demo: no report in {out}: {e}", file=sys.stderr)
        return 1
    labels = summary["labels"]
    if not summary["levels"]:
        print(f"demo: no complete block in {out}; see {out}/boot-1.err", file=sys.stderr)
        return 1
    for name, level in summary["levels"].items():
        blocks = level["per_block"]
        ref = labels[0]
        print(f"\nlevel {name}: {len(blocks)} blocks, {', '.join(labels)} alternating "
              f"(commit {summary['meta']['commit']})")
        width = max(len(r[0]) for r in ROWS)
        print(f"  {'':{width}} " + " ".join(f"{lab:>10}" for lab in labels) + f"   {'ratio to ' + ref:>28}")
        for text, key, how, scale, digits, ratio_key in ROWS:
            cells = []
            for lab in labels:
                v = combine(blocks, lab, key, how)
                cells.append(f"{v * scale:10.{digits}f}" if v is not None else f"{'-':>10}")
            ratio = ""
            for lab in labels[1:]:
                r = level["arms"].get(lab, {}).get(ratio_key) if ratio_key else None
                if r and r.get("ratio") is not None:
                    ci = r.get("ci95")
                    ratio += f"  {lab} {r['ratio']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            print(f"  {text:{width}} " + " ".join(cells) + f"   {ratio}")
        for lab in labels[1:]:
            av = level["arms"].get(lab, {}).get("avoided", {})
            # count, an arm of older runs (the removed ecs_host policy
            # module, only counting), grants nothing by design.
            if av.get("fraction") is not None and not lab.startswith("count"):
                print(f"  {lab}: {av['fraction'] * 100:.1f}% of the preemptions that hit a critical section "
                      "were deferred until it ended")
    print(f"""
These are nested-TCG figures: a 1-vCPU L1 host under QEMU TCG, its L2s under
the L1's KVM, where an exit costs far more than on hardware. Ratios are
per-block geometric means with 95% bootstrap intervals over only
{len(blocks)} blocks; `make bench` runs enough blocks for a verdict
(docs/benchmarks.md).
Raw data: {out}/boot-1/ktap.log (per phase in {out}/samples.json);
full report: {out}/report.txt; plots: {out}/ratios.png, {out}/wait-cdf.png""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
