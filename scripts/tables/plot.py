"""Accuracy against training image queries, one series per method."""

from __future__ import annotations

from statistics import mean

from .aggregate import Stats, paper_columns
from .read import Run, sorted_rows


def plot_queries(runs: list[Run], path: str) -> None:
    """Accuracy against training image queries, one point per cell (mean ± sample std over seeds) and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = paper_columns()
    groups: dict[tuple, list[Run]] = {}
    for r in (r for r in runs if not r.evaluation):
        groups.setdefault((r.row, r.setting, r.shots, r.variant), []).append(r)
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in sorted_rows(key[0] for key in groups):
        points = [
            (mean(r.train_images for r in g), Stats.of([r.accuracy for r in g]), key[1])
            for key, g in groups.items()
            if key[0] == row
        ]
        ax.errorbar(
            [p[0] for p in points],
            [p[1].mean for p in points],
            yerr=[p[1].std or 0 for p in points],
            fmt="o",
            capsize=3,
            label=row.label,
        )
        for x, stats, setting in points:
            ax.annotate(columns.label(setting), (x, stats.mean), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("training image queries per run (zero-shot at 0)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against query cost (mean ± sample std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
