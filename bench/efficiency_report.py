"""Tables and plot of ``bench.efficiency``'s kept runs: accuracy at query marks, queries to reach the reference's
final mean, the budget at which each variant matches it, and a paired bootstrap over seeds at 10% of its queries."""

from __future__ import annotations

import glob
import json
import os.path as osp
import statistics
from typing import Any

import numpy as np
from tabulate import tabulate

from bench.efficiency import MARGIN, REFERENCE_QUERIES, SHARE, SHARE_MARKS, TASKS, VARIANTS, marks

TABLE_MARKS = (2000, 4000, 8000, 16000, int(SHARE * REFERENCE_QUERIES), 38400, 64000, 128000, REFERENCE_QUERIES)
BOOTSTRAP = 10_000


def load(root: str) -> dict[str, dict[str, dict[int, dict]]]:
    """task -> variant -> seed -> run."""
    runs: dict[str, dict[str, dict[int, dict]]] = {}
    for path in sorted(glob.glob(osp.join(root, "*", "*", "seed*.json"))):
        with open(path) as f:
            run = json.load(f)
        runs.setdefault(run["task"], {}).setdefault(run["variant"], {})[run["seed"]] = run
    return runs


def accuracy_at(run: dict, queries: int) -> float | None:
    """Test accuracy of the last evaluation at or before ``queries``. Beyond the run's end: its final accuracy when it
    stopped early by its own rule (a plateau: that is what the budget buys), else None (not measured)."""
    final = run["final"]
    if final["queries"] <= queries:
        return final["accuracy"] if final["queries"] == queries or final.get("stopped_by") else None
    points = [p for p in run["points"] if p["queries"] <= queries]
    return points[-1]["accuracy"] if points else None


def queries_to_reach(run: dict, level: float) -> int | None:
    for p in [*run["points"], run["final"]]:
        if p["accuracy"] >= level:
            return p["queries"]
    return None


def matching_budget(runs: list[dict], level: float, budget: int) -> int | None:
    """The smallest query mark at which the mean accuracy over ``runs`` is at least ``level``."""
    for m in sorted({*marks(REFERENCE_QUERIES), budget}):
        accs = [accuracy_at(r, m) for r in runs]
        values = [a for a in accs if a is not None]
        if len(values) == len(accs) and statistics.mean(values) >= level:
            return m
    return None


def paired_bootstrap(diffs: list[float], seed: int = 0) -> tuple[float, float]:
    """Mean paired difference and the one-sided 95% lower bound of its bootstrap distribution over seeds."""
    rng = np.random.default_rng(seed)
    d = np.asarray(diffs, dtype=np.float64)
    means = d[rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.05))


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.1f}{sd}"


def report(root: str, tasks: list[str], variants: list[str]) -> dict:
    runs = load(root)
    summary: dict = {}
    for task in tasks:
        by_variant = runs.get(task, {})
        reference = by_variant.get("reference", {})
        if not reference:
            print(f"{task}: no reference runs yet")
            continue
        ref_final = statistics.mean(r["final"]["accuracy"] for r in reference.values())
        budget = int(SHARE * REFERENCE_QUERIES)
        print(
            f"\n## {TASKS[task].title}: reference final {mean_sd([r['final']['accuracy'] for r in reference.values()])}"
            f" after {REFERENCE_QUERIES:,} queries ({len(reference)} seeds); goal: within {MARGIN} point at "
            f"{budget:,}"
        )
        rows, curves, tuning = [], [], []
        for name in variants:
            seeds = by_variant.get(name, {})
            if not seeds:
                continue
            v = VARIANTS[name]
            at_budget = {s: accuracy_at(r, budget) for s, r in seeds.items()}
            finals = [r["final"]["accuracy"] for r in seeds.values()]
            reach = [queries_to_reach(r, ref_final) for r in seeds.values()]
            reached = sorted(q for q in reach if q is not None)
            match = matching_budget(list(seeds.values()), ref_final - MARGIN, budget)
            paired = [
                at_budget[s] - reference[s]["final"]["accuracy"]
                for s in seeds
                if s in reference and at_budget[s] is not None
            ]
            diff, lower = paired_bootstrap(paired) if len(paired) >= 2 else (float("nan"), float("nan"))
            verdict = "-" if len(paired) < 2 else ("yes" if lower > -MARGIN else "no")
            stopped = sum(1 for r in seeds.values() if r["final"].get("stopped_by"))
            row = [
                v.detail,
                len(seeds),
                mean_sd([a for a in at_budget.values() if a is not None]),
                f"{diff:+.1f} [{lower:+.1f}]" if paired and len(paired) >= 2 else "-",
                verdict,
                f"{statistics.median(reached):,.0f} ({len(reached)}/{len(reach)})"
                if reached
                else f"never (0/{len(reach)})",
                f"{match:,} ({100 * match / REFERENCE_QUERIES:.0f}%)" if match else "not within the run",
                f"{mean_sd(finals)} at {statistics.mean(r['final']['queries'] for r in seeds.values()):,.0f}"
                + (f", {stopped} stopped early" if stopped else ""),
            ]
            (tuning if v.tuning else rows).append(row)
            curve_row = [v.detail] + [
                mean_sd([a for r in seeds.values() if (a := accuracy_at(r, m)) is not None]) for m in TABLE_MARKS
            ]
            if not v.tuning:
                curves.append(curve_row)
            summary.setdefault(task, {})[name] = {
                "seeds": len(seeds),
                "accuracy_at_budget": at_budget,
                "paired_difference": diff,
                "lower_95": lower,
                "non_inferior": verdict == "yes",
                "matches_reference_at": match,
                "queries_to_reach": reach,
            }
        headers = [
            "variant",
            "seeds",
            f"acc. at {budget:,}",
            "paired diff. vs ref. final [95% lower]",
            f"non-inferior (margin {MARGIN})",
            "queries to reach ref. final (median, seeds)",
            "mean within margin from",
            "final (queries)",
        ]
        print(tabulate(rows, headers=headers, disable_numparse=True, tablefmt="github"))
        print("\nTest accuracy (mean ± sd over seeds) at training+validation queries:")
        print(
            tabulate(
                curves, headers=["variant", *[f"{m:,}" for m in TABLE_MARKS]], disable_numparse=True, tablefmt="github"
            )
        )
        if tuning:
            print("\nTuning runs (seed 1 only; not part of the comparison):")
            print(tabulate(tuning, headers=headers, disable_numparse=True, tablefmt="github"))
    plot(runs, tasks, [v for v in variants if not VARIANTS[v].tuning], osp.join(osp.dirname(root), "efficiency.png"))
    return summary


def plot(runs: dict, tasks: list[str], variants: list[str], path: str) -> None:
    """Mean test accuracy over seeds against queries, one panel per task, one shared legend underneath; white-box
    bounds dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [t for t in tasks if runs.get(t)]
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(6.5 * len(present), 6.2), squeeze=False)
    grid = sorted({*marks(REFERENCE_QUERIES), *SHARE_MARKS, REFERENCE_QUERIES})
    colours = plt.get_cmap("tab20").colors
    handles: dict[str, Any] = {}
    for ax, task in zip(axes[0], present):
        reference = runs[task].get("reference", {})
        for i, name in enumerate(variants):
            seeds = runs[task].get(name, {})
            if not seeds:
                continue
            xs, ys = [], []
            for m in grid:
                accs = [accuracy_at(r, m) for r in seeds.values()]
                values = [a for a in accs if a is not None]
                if len(values) == len(accs):
                    xs.append(m)
                    ys.append(statistics.mean(values))
            style = "--" if name.startswith("true-gradient") else "-"
            (line,) = ax.plot(
                xs, ys, style, marker="o", ms=3, color=colours[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20]
            )
            handles[f"{VARIANTS[name].detail} ({len(seeds)} seeds)"] = line
        if reference:
            level = statistics.mean(r["final"]["accuracy"] for r in reference.values())
            handles["reference final"] = ax.axhline(level, color="gray", linestyle="--", lw=1)
            handles["10% of its queries"] = ax.axvline(SHARE * REFERENCE_QUERIES, color="gray", linestyle=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("image queries (training + validation)")
        ax.set_ylabel("test accuracy (%), mean over seeds")
        ax.set_title(TASKS[task].title)
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.27, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"Wrote {path}")
