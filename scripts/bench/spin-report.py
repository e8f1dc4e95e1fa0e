#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of scripts/bench/spin.sh: parse the L1 runs' output in DIR, save
the raw samples (samples.json), print the table (report.txt) and draw
spin.png.

    bench-spin-report.py DIR
"""
import json
import re
import sys
from pathlib import Path

POLICIES = ["stock", "schdspin", "eschdspin"]
SCENARIOS = {
    "under": "under: one 1-vCPU L2 (1 vCPU per L1 CPU)",
    "over1": "over1: one 2-vCPU L2 (2 vCPUs per L1 CPU)",
    "over2": "over2: two 2-vCPU L2s at once (4 vCPUs per L1 CPU)",
    "under2": "under2: one 2-vCPU L2 in a 2-vCPU L1 (not dependable)",
}
# Kashyap et al., USENIX ATC '18, section 6.4 (Figure 6) and 6.2.
PAPER = {
    ("under", "schdspin"): "1.5x (40 cores), 1.2x (80 cores)",
    ("under", "eschdspin"): "-",
    ("under2", "schdspin"): "1.5x (40 cores), 1.2x (80 cores)",
    ("over1", "schdspin"): "4.4x worse (over-committed)",
    ("over1", "eschdspin"): "1.8x better (8x over SCHDSPIN)",
    ("over2", "schdspin"): "4.4x worse (over-committed)",
    ("over2", "eschdspin"): "1.8x better (8x over SCHDSPIN)",
}
COUNTS = ["spins", "spin_acquired", "spin_to_sleep", "sleeps", "spin_ns",
          "slept_runqueue", "slept_overloaded", "slept_owner_off",
          "slept_resched", "slept_limit", "no_ecs"]
PHASE = re.compile(r"^(spin\d+)\| phase (.*) before: (.*) after: (.*)$")


def pairs(text):
    return {k: v for k, v in (w.split("=", 1) for w in text.split() if "=" in w)}


def parse_run(run_dir, scenario, run):
    """The samples of one L1 run, and its problems."""
    samples, problems = [], []
    log = run_dir / "ktap.log"
    if not log.exists():
        return samples, [f"{run_dir.name}: no ktap.log (the L1 did not start)"]
    hints = {}
    phase_of = {}
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"^(spin\d+)\| shim (\S+) host_hints=(\S+)", line)
        if m:
            hints[m.group(1)] = (m.group(2), m.group(3))
            continue
        m = re.match(r"^l2 (spin\d+) rc=(\d+)", line)
        if m and m.group(2) != "0":
            problems.append(f"{run_dir.name}: L2 {m.group(1)} exited {m.group(2)}")
            continue
        m = PHASE.match(line)
        if not m:
            continue
        guest, head, before, after = m.groups()
        head, before, after = pairs(head), pairs(before), pairs(after)
        if not head.get("ops", "").isdigit():
            problems.append(f"{run_dir.name}: {guest} {head.get('policy')}: no ops")
            continue
        busy, idle = int(head["busy_ticks"]), int(head["idle_ticks"])
        shim, host_hints = hints.get(guest, ("?", "?"))
        phase_of[guest] = phase_of.get(guest, 0) + 1
        samples.append({
            "scenario": scenario, "run": run, "phase": phase_of[guest], "guest": guest,
            "policy": head["policy"], "ops": int(head["ops"]),
            "seconds": int(head["seconds"]), "busy_ticks": busy,
            "idle_ticks": idle,
            "idle_pct": 100.0 * idle / (busy + idle) if busy + idle else 0.0,
            "late": head.get("late") == "1", "shim": shim,
            "host_hints": host_hints,
            "counts": {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in COUNTS},
        })
    return samples, problems


def summarize(samples):
    """Per (scenario, policy): the throughput of all guests of a run
    together in each of the policy's phases, and its mean; idle time
    averaged and counts summed over the same phases."""
    rows = {}
    for (scenario, policy) in [(s, p) for s in SCENARIOS for p in POLICIES]:
        mine = [s for s in samples if s["scenario"] == scenario and s["policy"] == policy]
        if not mine:
            continue
        phases = sorted({(s["run"], s["phase"]) for s in mine})
        per_phase = [sum(s["ops"] / s["seconds"] for s in mine if (s["run"], s["phase"]) == ph)
                     for ph in phases]
        counts = {k: sum(s["counts"][k] for s in mine) for k in COUNTS}
        rows[(scenario, policy)] = {
            "ops_per_s": sum(per_phase) / len(per_phase), "per_phase": per_phase,
            "idle_pct": sum(s["idle_pct"] for s in mine) / len(mine),
            "counts": counts, "late": any(s["late"] for s in mine),
            "hints": sorted({s["host_hints"] for s in mine}),
        }
    return rows


def table(rows, meta):
    out = [f"eSCHDSPIN benchmark (Psearchy-like load), commit {meta.get('commit')}, "
           f"{meta.get('seconds')} s per policy, {meta.get('repeat')} run(s) per scenario, "
           f"QEMU TCG, 2 threads per L2, "
           + (f"slice extension {meta['slice_us']} us" if "slice_us" in meta
              # Older runs: the removed ecs_host policy module's arguments.
              else f"ecs_host {meta.get('ecs_host_args') or 'defaults'}")]
    for scenario, title in SCENARIOS.items():
        if not any(k[0] == scenario for k in rows):
            continue
        out += ["", title,
                f"{'policy':10} {'ops/s':>8} {'vs stock':>8} {'idle %':>7} {'spins':>8} "
                f"{'got lock':>8} {'slept:rq':>8} {'overload':>8} {'owner off':>9} "
                f"{'ms spun':>8}  paper (vs eCS)"]
        stock = rows.get((scenario, "stock"))
        for policy in POLICIES:
            r = rows.get((scenario, policy))
            if not r:
                continue
            c = r["counts"]
            ratio = r["ops_per_s"] / stock["ops_per_s"] if stock and stock["ops_per_s"] else 0
            got = f"{100.0 * c['spin_acquired'] / c['spins']:.0f}%" if c["spins"] else "-"
            flags = (" (late start)" if r["late"] else "") + \
                ("" if r["hints"] == ["yes"] else f" (host hints: {','.join(r['hints'])})")
            out.append(f"{policy:10} {r['ops_per_s']:8.1f} {ratio:7.2f}x {r['idle_pct']:7.1f} "
                       f"{c['spins']:8d} {got:>8} {c['slept_runqueue']:8d} "
                       f"{c['slept_overloaded']:8d} {c['slept_owner_off']:9d} "
                       f"{c['spin_ns'] / 1e6:8.0f}  {PAPER.get((scenario, policy), '-')}{flags}")
        for policy in POLICIES:
            r = rows.get((scenario, policy))
            if r:
                out.append(f"  {policy} per phase (ops/s, run order): " +
                           ", ".join(f"{v:.1f}" for v in r["per_phase"]))
    out += ["", "ops/s: rounds of mmap/munmap + file create/write/unlink, all L2s of a run; "
            "idle %: the L2s' idle and iowait share of their vCPU time; spins: waiters that spun "
            "(got lock: of those, the share that got the lock without sleeping); slept:rq / "
            "overload / owner off: waiters that did not spin or stopped because another task "
            "was runnable in the guest, the host said the physical CPU was overloaded, or the "
            "owner's vCPU was not running. Paper: Psearchy, eCS + SCHDSPIN / eSCHDSPIN against "
            "eCS alone (Figure 6); idle time 65.4% -> 45.2% with eSCHDSPIN (section 6.2)."]
    return "\n".join(out)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    scenarios = [s for s in SCENARIOS if any(k[0] == s for k in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.25
    for i, policy in enumerate(POLICIES):
        xs = [j + (i - 1) * width for j in range(len(scenarios))]
        thr, spread, idle = [], [[], []], []
        for s in scenarios:
            r, stock = rows.get((s, policy)), rows.get((s, "stock"))
            base = stock["ops_per_s"] if r and stock and stock["ops_per_s"] else 0
            mean = r["ops_per_s"] / base if base else 0
            thr.append(mean)
            # The phases' range: how much the load's rate moves within a run.
            spread[0].append(mean - min(r["per_phase"]) / base if base else 0)
            spread[1].append(max(r["per_phase"]) / base - mean if base else 0)
            idle.append(r["idle_pct"] if r else 0)
        axes[0].bar(xs, thr, width, yerr=spread, capsize=3, label=policy)
        axes[1].bar(xs, idle, width, label=policy)
    for ax, title in zip(axes, ["throughput relative to stock (bars: phase range)",
                               "guest idle time (%)"]):
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels([SCENARIOS[s].split(":")[0] for s in scenarios])
        ax.set_title(title)
        ax.legend()
    axes[0].axhline(1.0, color="grey", linewidth=0.8)
    fig.suptitle("Psearchy-like load in nested L2 guests (QEMU TCG), all with eCS")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    meta_file = out / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    samples, problems = [], []
    for run_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        m = re.match(r"^(under|over1|over2|under2)-(\d+)$", run_dir.name)
        if m:
            s, p = parse_run(run_dir, m.group(1), int(m.group(2)))
            samples += s
            problems += p
    (out / "samples.json").write_text(json.dumps({"meta": meta, "samples": samples,
                                                  "problems": problems}, indent=1))
    if not samples:
        print("bench-spin-report: no phase finished; " + "; ".join(problems), file=sys.stderr)
        return 1
    rows = summarize(samples)
    text = table(rows, meta)
    if problems:
        text += "\n\nProblems: " + "; ".join(problems)
    (out / "report.txt").write_text(text + "\n")
    print(text)
    plot(rows, out / "spin.png")
    print(f"\nraw samples: {out / 'samples.json'}; figure: {out / 'spin.png'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
