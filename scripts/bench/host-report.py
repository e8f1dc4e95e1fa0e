#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Parse what scripts/bench/vm/ecs_host_bench.sh printed in the L1 of
scripts/bench/host.sh and report its three results:
(a) the fraction of in-critical-section preemptions avoided, (b) fairness
(Figure 7, drawn as fairness.png), (c) rcu_membench with KVM's slice
extension (kvm.ecs_slice_us) off and on. Writes samples.json (every raw
sample) and report.txt. A DIR of an older run, made with the removed
ecs_host policy module, is reported too (its policy arguments instead of
the slice).

    bench-host-report.py DIR
"""

import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from guest_dump import sections  # noqa: E402

# Paper (ecs-atc18, sections 6.3 and Figure 7).
PAPER_AVOIDED = "85-100%"
PAPER_FAIR_S = 4.95
TARGET_AVOIDED = 0.99
TARGET_FAIR_DIFF = 0.01

COUNTERS = ("ecs_extensions", "ecs_preemptions_avoided", "ecs_give_backs",
            "ecs_extensions_expired", "ecs_preemptions", "ecs_preempted_in_section")


def rcu_report_module():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rcu-report.py")
    spec = importlib.util.spec_from_file_location("bench_rcu_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def l2_lines(lines, name):
    """The L2's own output inside a section, without the "NAME| " prefix."""
    prefix = name + "| "
    return [line[len(prefix):] for line in lines if line.startswith(prefix)]


def l2_status(lines):
    for line in lines:
        if line.startswith("l2 "):
            fields = dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
            return {"name": line.split()[1], **fields}
    return {}


def parse_stats(lines):
    """Sampler lines: header "stats dir phase NAME..." then "stats DIR PHASE V...".
    Returns (names, [(dir, phase, {name: value})])."""
    names, rows = [], []
    for line in lines:
        f = line.split()
        if not f or f[0] != "stats":
            continue
        if f[1:3] == ["dir", "phase"]:
            names = f[3:]
        elif len(f) == 3 + len(names):
            rows.append((f[1], f[2], dict(zip(names, (int(v) for v in f[3:])))))
    return names, rows


def load_delta(rows):
    """Counter growth over the load phase: last load sample minus first."""
    load = [r[2] for r in rows if r[1] == "load"]
    if len(load) < 2:
        return None
    first, last = load[0], load[-1]
    delta = {k: last[k] - first[k] for k in COUNTERS if k in last}
    delta["ecs_extension_max_ns"] = max(r[2].get("ecs_extension_max_ns", 0) for r in rows)
    delta["samples"] = len(load)
    return delta


def churn_work(lines):
    total, seen = 0, False
    for line in lines:
        f = line.split()
        if len(f) == 4 and f[0] == "worker" and f[2] in ("files", "rounds"):
            total += int(f[3])
            seen = True
    return total if seen else None


def parse_avoided(secs):
    runs = []
    for name, lines in secs.items():
        f = name.split()
        if len(f) != 3 or f[0] != "avoided":
            continue
        mode, rep = f[1], int(f[2])
        l2name = f"avoided-{mode}-{rep}"
        _, rows = parse_stats(lines)
        out = l2_lines(lines, l2name)
        runs.append({
            "mode": mode, "repeat": rep, "l2": l2_status(lines),
            "delta": load_delta(rows), "work": churn_work(out),
            "stats_samples": [{"dir": d, "phase": p, **v} for d, p, v in rows],
        })
    return sorted(runs, key=lambda r: (r["repeat"], r["mode"]))


def summarize_avoided(runs):
    tot = {}
    for mode in ("baseline", "ecs"):
        acc = {k: 0 for k in COUNTERS}
        acc["work"], acc["runs"], acc["max_ns"] = 0, 0, 0
        for r in runs:
            if r["mode"] != mode or not r["delta"] or r["l2"].get("rc") != "0":
                continue
            for k in COUNTERS:
                acc[k] += r["delta"].get(k, 0)
            acc["work"] += r["work"] or 0
            acc["runs"] += 1
            acc["max_ns"] = max(acc["max_ns"], r["delta"]["ecs_extension_max_ns"])
        tot[mode] = acc
    b, e = tot["baseline"], tot["ecs"]

    def share(t):
        return t["ecs_preempted_in_section"] / t["ecs_preemptions"] if t["ecs_preemptions"] else None

    sb, se = share(b), share(e)
    result = {"baseline": b, "ecs": e, "in_section_share_baseline": sb, "in_section_share_ecs": se}
    # Outcome: how much less often a preemption catches the guest in a section.
    result["avoided_fraction"] = (1 - se / sb) if sb and se is not None else None
    # The paper's count: preemptions caught in a section and prevented.
    caught = e["ecs_preemptions_avoided"] + e["ecs_preempted_in_section"]
    result["prevented_of_caught"] = e["ecs_preemptions_avoided"] / caught if caught else None
    return result


def parse_fairness(secs, part="fairness"):
    lines = secs.get(part)
    if lines is None:
        return None
    samples, info = [], {}
    for line in lines:
        f = line.split()
        if not f:
            continue
        if f[0] == "sample" and len(f) == 4 and all(x.isdigit() for x in f[1:]):
            samples.append([int(x) for x in f[1:]])
        elif f[0] in ("extensions_before", "extensions_after") and len(f) == 2:
            info[f[0]] = int(f[1])
        elif f[0] == "kvm_annotated" and len(f) == 3:
            info.setdefault("kvm_annotated", {})[f[1]] = int(f[2])
        elif f[0] == "thread":
            info.setdefault("threads", []).append(" ".join(f[1:]))
    res = {"samples": samples, **info,
           "l2": [l2_status([x]) for x in lines if x.startswith("l2 ")]}
    if len(samples) >= 2:
        t0, a0, p0 = samples[0]
        res["series"] = [((t - t0) / 100.0, (a - a0) / 1e9, (p - p0) / 1e9) for t, a, p in samples]
        _, a, p = res["series"][-1]
        res["window_s"] = res["series"][-1][0]
        res["annotated_s"], res["plain_s"] = a, p
        res["difference"] = abs(a - p) / ((a + p) / 2) if a + p else None
    return res


def parse_rcu(secs, d):
    mod = rcu_report_module()
    runs = {}
    for mode in ("baseline", "ecs"):
        lines = secs.get(f"rcu {mode}")
        if lines is None:
            continue
        name = f"rcu-{mode}"
        os.makedirs(os.path.join(d, name), exist_ok=True)
        with open(os.path.join(d, name, "ktap.log"), "w") as f:
            f.write("\n".join(l2_lines(lines, name)) + "\n")
        status = l2_status(lines)
        if status.get("rc") != "0":
            print(f"# WARNING rcu {mode}: the L2 failed ({status})")
            continue
        try:
            run = mod.load_run(d, name)
        except SystemExit as e:
            print(f"# WARNING rcu {mode}: {e}")
            continue
        _, rows = parse_stats(lines)
        run["kvm"] = load_delta(rows)
        runs[mode] = run
    return runs


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def report(data, meta):
    host_side = (f"slice extension {meta['slice_us']} us" if "slice_us" in meta
                 else f"policy args '{meta.get('policy_args', '')}'")
    out = [f"# eCS host side, commit {meta.get('commit', '?')}, {meta.get('qemu', '?')} (TCG), "
           f"1-vCPU L1 of our kernel, {host_side}"]
    av = data.get("avoided_summary")
    if av:
        b, e = av["baseline"], av["ecs"]
        out += ["", "(a) In-critical-section preemptions, 2-vCPU L2 on one L1 CPU, churn load "
                f"{meta.get('seconds', '?')} s x {b['runs']} + {e['runs']} runs",
                f"{'':34}{'baseline':>12}{'eCS':>12}",
                f"{'preemptions of a vCPU':34}{b['ecs_preemptions']:>12}{e['ecs_preemptions']:>12}",
                f"{'... in a critical section':34}{b['ecs_preempted_in_section']:>12}"
                f"{e['ecs_preempted_in_section']:>12}",
                f"{'share in a critical section':34}{pct(av['in_section_share_baseline']):>12}"
                f"{pct(av['in_section_share_ecs']):>12}",
                f"{'extensions granted':34}{'':>12}{e['ecs_extensions']:>12}",
                f"{'... ended out of the section':34}{'':>12}{e['ecs_preemptions_avoided']:>12}",
                f"{'... given back by the guest':34}{'':>12}{e['ecs_give_backs']:>12}",
                f"{'... reached the bound':34}{'':>12}{e['ecs_extensions_expired']:>12}",
                f"{'longest extension (ms)':34}{'':>12}{e['max_ns'] / 1e6:>12.2f}",
                f"{'files churned (work done)':34}{b['work']:>12}{e['work']:>12}",
                f"In-section preemptions avoided: {pct(av['avoided_fraction'])} (1 - eCS share / "
                f"baseline share; target >= {pct(TARGET_AVOIDED)}); prevented of caught (the paper's "
                f"count): {pct(av['prevented_of_caught'])}; paper: {PAPER_AVOIDED}"]
    fa = data.get("fairness")
    if fa and "difference" in fa:
        ext = fa.get("extensions_after", 0) - fa.get("extensions_before", 0)
        out += ["", f"(b) Fairness (Figure 7): annotated and plain 1-vCPU L2 on one L1 CPU, "
                f"{fa['window_s']:.1f} s window",
                f"annotated VM: {fa['annotated_s']:.3f} s CPU, plain VM: {fa['plain_s']:.3f} s CPU, "
                f"difference {pct(fa['difference'])} (target <= {pct(TARGET_FAIR_DIFF)}); "
                f"extensions granted to the annotated VM in the window: {ext}; "
                f"paper: {PAPER_FAIR_S} s each in 10 s"]
    elif fa is not None:
        out += ["", "(b) Fairness: no samples (see l1/ktap.log)"]
    ab = data.get("abuse")
    if ab and "difference" in ab:
        k = ab.get("kvm_annotated", {})
        ext = ab.get("extensions_after", 0) - ab.get("extensions_before", 0)
        more = (ab["annotated_s"] - ab["plain_s"]) / ab["plain_s"] if ab["plain_s"] else None
        out += ["", f"(abuse) A guest that holds non-preemptible sections back to back beside a plain "
                f"one, {ab['window_s']:.1f} s window",
                f"abusing VM: {ab['annotated_s']:.3f} s CPU, plain VM: {ab['plain_s']:.3f} s CPU, "
                f"abuser gets {pct(more)} more; extensions in the window: {ext}; over the whole run "
                f"{k.get('ecs_extensions_expired', '-')} of {k.get('ecs_extensions', '-')} extensions "
                f"reached their bound, longest {k.get('ecs_extension_max_ns', 0) / 1e6:.2f} ms"]
    elif ab is not None:
        out += ["", "(abuse) no samples (see l1/ktap.log)"]
    rc = data.get("rcu")
    if rc:
        out += ["", "(c) rcu_membench in a 2-vCPU L2, one L1 CPU shared with a busy loop",
                f"{'':30}{'baseline':>12}{'eCS':>12}"]

        def row(label, fn):
            vals = [fn(rc[m]) if m in rc else "-" for m in ("baseline", "ecs")]
            out.append(f"{label:30}{vals[0]:>12}{vals[1]:>12}")

        for key, label in (("mean", "mean GP (ms)"), ("p50", "50th %-tile GP (ms)"),
                           ("p90", "90th %-tile GP (ms)"), ("p99", "99th %-tile GP (ms)"),
                           ("max", "max GP (ms)")):
            row(label, lambda r, k=key: f"{r['summary'][f'gp_{k}_us'] / 1000:.2f}")
        row("peak footprint (KiB)", lambda r: f"{r['summary']['peak_outstanding_bytes'] / 1024:.0f}")
        row("GP samples", lambda r: str(r["summary"]["gp_samples"]))
        row("achieved rate (/s/CPU)", lambda r: str(r["summary"]["achieved_rate"]))
        row("extensions (KVM)", lambda r: str((r.get("kvm") or {}).get("ecs_extensions", "-")))
    return "\n".join(out) + "\n"


def plot(fa, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [s[0] for s in fa["series"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, [s[1] for s in fa["series"]], label=f"annotated VM (eCS): {fa['annotated_s']:.2f} s")
    ax.plot(t, [s[2] for s in fa["series"]], "--", label=f"plain VM: {fa['plain_s']:.2f} s")
    ax.plot([0, 10], [0, PAPER_FAIR_S], ":", color="gray", label=f"paper: {PAPER_FAIR_S} s each in 10 s")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("cumulative vCPU runtime (s)")
    ax.set_title("Two 1-vCPU L2s sharing one L1 CPU (TCG)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    log = os.path.join(d, "l1", "ktap.log")
    if not os.path.exists(log):
        sys.exit(f"bench-host-report: {log} is missing: did the L1 run start?")
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
    secs = sections(log)
    data = {"meta": meta, "l1_meta": secs.get("meta", [])}
    avoided = parse_avoided(secs)
    if avoided:
        data["avoided"] = avoided
        data["avoided_summary"] = summarize_avoided(avoided)
    for part in ("fairness", "abuse"):
        if part in secs:
            data[part] = parse_fairness(secs, part)
    rcu = parse_rcu(secs, d)
    if rcu:
        data["rcu"] = rcu
    if "end" not in secs:
        print("# WARNING: the L1 did not finish ('=== end' missing): partial results")
    text = report(data, meta)
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(d, "samples.json"), "w") as f:
        json.dump(data, f, indent=1)
    fa = data.get("fairness")
    if fa and fa.get("series"):
        plot(fa, os.path.join(d, "fairness.png"))
    sys.stdout.write(text)
    print(f"# raw samples: {os.path.join(d, 'samples.json')}"
          + (f", plot: {os.path.join(d, 'fairness.png')}" if fa and fa.get("series") else ""))


if __name__ == "__main__":
    main()
