"""Seed runs grouped into table cells (never averaged across hyper-parameter folders), and the tables built from them.

A cell whose folder also holds runs without a result reads ``mean ± std (n/m)``: the mean of the n runs that have
one out of the m in the folder, never passed off as the whole set.

Column order and labels come from the dataset catalog, row order and labels from the method registry, and the
paper's numbers from configs/paper/results.yaml.
"""

from __future__ import annotations

import os.path as osp
import re
from dataclasses import dataclass, field
from statistics import mean, stdev

import yaml

from datasets.catalog import synthetic_settings, transfer_datasets

from .read import ZERO_SHOT, NoResult, Row, Run, sorted_rows

PAPER_RESULTS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), "configs", "paper", "results.yaml"
)
MISSING = "–"


@dataclass(frozen=True)
class Columns:
    """The paper's columns from the dataset catalog: transfer datasets and synthetic settings, with their labels."""

    transfer: dict[str, str]
    synthetic: dict[str, str]
    synthetic_datasets: tuple[str, ...]

    def label(self, setting: str) -> str:
        return self.transfer.get(setting, self.synthetic.get(setting, setting))


def paper_columns() -> Columns:
    """Transfer config stem -> label and synthetic setting -> label in the paper's order, and the synthetic datasets."""
    settings = synthetic_settings()
    return Columns(
        transfer={info.config: info.label for info in transfer_datasets()},
        synthetic={setting.name: setting.label for _, setting in settings},
        synthetic_datasets=tuple(dict.fromkeys(info.config for info, _ in settings)),
    )


@dataclass
class Stats:
    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(mean(values), stdev(values) if len(values) > 1 else None, len(values))

    def text(self, digits: int, of: int | None = None) -> str:
        """``mean ± std (n)``, or ``(n/of)`` when the mean covers n of ``of`` runs."""
        spread = "" if self.std is None else f" ± {self.std:.{digits}f}"
        count = f"{self.n}" if of is None or of == self.n else f"{self.n}/{of}"
        return f"{self.mean:.{digits}f}{spread} ({count})"


@dataclass
class Cell:
    """The runs of one row and column by hyper-parameter folder, and the folder the table shows: among the
    folders matching a pattern (all folders if none matches), the one with the most seeds, then the newest."""

    variants: dict[str, list[Run]]
    patterns: list[str] = field(default_factory=list)
    shown: str = field(init=False)
    reason: str = field(init=False)

    def __post_init__(self) -> None:
        picked = [v for v in self.variants if any(re.search(p, v) for p in self.patterns)]
        self.reason = "a --variant match" if picked else "the most seeds, then the newest"
        candidates = picked or list(self.variants)
        self.shown = max(candidates, key=lambda v: (len(self.variants[v]), max(r.mtime for r in self.variants[v])))

    @property
    def runs(self) -> list[Run]:
        return self.variants[self.shown]

    @property
    def stats(self) -> Stats:
        return Stats.of([r.accuracy for r in self.runs])


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    caption: str = "mean ± sample std over seeds (n = number of seeds)"

    def mark_partial(self) -> None:
        """Say in the caption that some cells average only the runs with a result."""
        self.caption += "; n/m = n of the folder's m runs have a result"


@dataclass
class Report:
    tables: list[Table] = field(default_factory=list)
    notes: list[tuple[str, list[str]]] = field(default_factory=list)


def cell(runs: list[Run], row: Row, setting: str, shots: int | None, patterns: list[str]) -> Cell | None:
    """The runs of ``row`` on ``setting`` with ``shots`` (zero-shot runs match any shots), by folder."""
    variants: dict[str, list[Run]] = {}
    for r in runs:
        if r.row == row and r.setting == setting and (r.shots is None or r.shots == shots):
            variants.setdefault(r.variant, []).append(r)
    return Cell(variants, patterns) if variants else None


class TableBuilder:
    """Turns runs into the transfer, synthetic and cost tables, with the paper's numbers when asked."""

    def __init__(
        self, runs: list[Run], paper: dict | None, patterns: list[str], columns: Columns, pending: dict[str, int]
    ) -> None:
        self.runs, self.paper, self.patterns, self.columns = runs, paper, patterns, columns
        self.pending = pending
        self.ambiguous: list[tuple[str, str, Cell]] = []
        self.partial: list[tuple[str, str, Cell]] = []

    def cell(self, runs: list[Run], row: Row, setting: str, shots: int | None) -> Cell | None:
        return cell(runs, row, setting, shots, self.patterns)

    def of(self, variant: str, runs: list[Run]) -> int:
        """The runs in ``variant``'s folder: those with a result and those without."""
        return len(runs) + self.pending.get(variant, 0)

    def cell_text(self, c: Cell | None, digits: int, where: str, row: Row) -> str:
        if c is None:
            return MISSING
        text = c.stats.text(digits, self.of(c.shown, c.runs))
        if self.pending.get(c.shown) and all((row.label, where) != (label, w) for label, w, _ in self.partial):
            self.partial.append((row.label, where, c))
        if len(c.variants) > 1:
            if all((row.label, where) != (label, w) for label, w, _ in self.ambiguous):
                self.ambiguous.append((row.label, where, c))
            return text + " *"
        return text

    def with_paper(self, ours: Stats | None, theirs: float | None, digits: int) -> list[str]:
        if self.paper is None:
            return []
        if theirs is None:
            return [MISSING, MISSING]
        delta = MISSING if ours is None else f"{ours.mean - theirs:+.{digits}f}"
        return [f"{theirs:.{digits}f}", delta]

    def headers(self, labels: list[str]) -> list[str]:
        out = ["Method"]
        for label in labels:
            out += [label] + ([f"{label} paper", "Δ"] if self.paper is not None else [])
        return out

    def transfer_order(self, setting: str) -> tuple:
        keys = list(self.columns.transfer)
        return (keys.index(setting), "") if setting in keys else (len(keys), setting)

    def transfer(self, shots: int | None) -> Table:
        partial_before = len(self.partial)
        runs = [r for r in self.runs if not r.synthetic and r.shots in (None, shots)]
        columns = sorted({r.setting for r in runs}, key=self.transfer_order)
        paper = (self.paper or {}).get("transfer", {})
        body = []
        for row in sorted_rows(r.row for r in runs):
            theirs = paper if shots == paper.get("shots") and row.is_paper_setup else {}
            cells = [self.cell(runs, row, s, shots) for s in columns]
            means = {s: c.stats.mean for s, c in zip(columns, cells) if c is not None}
            line = [row.label]
            paper_row = theirs.get("accuracy", {}).get(row.trainer, {})
            for s, c in zip(columns, cells):
                line += [self.cell_text(c, 1, f"{self.columns.label(s)} ({shots}-shot)", row)]
                line += self.with_paper(c.stats if c else None, paper_row.get(s), 1)
            line += self.average(row, means, columns, theirs)
            line += self.wins(row, runs, means, columns, shots, theirs)
            body.append(line)
        title = f"Transfer benchmarks, {shots}-shot" if shots is not None else "Transfer benchmarks, zero-shot only"
        headers = self.headers([self.columns.label(s) for s in columns] + ["Avg", "Win"])
        return self.table(title, headers, body, partial_before)

    def average(self, row: Row, means: dict[str, float], columns: list[str], paper: dict) -> list[str]:
        if not means:
            return [MISSING] + self.with_paper(None, None, 1)
        avg = mean(means.values())
        text = f"{avg:.1f}" + ("" if len(means) == len(columns) else f" ({len(means)}/{len(columns)})")
        complete = set(means) == set(self.columns.transfer)
        ours = Stats(avg, None, len(means)) if complete else None
        return [text] + self.with_paper(ours, paper.get("avg", {}).get(row.trainer), 1)

    def wins(
        self, row: Row, runs: list[Run], means: dict[str, float], columns: list[str], shots: int | None, paper: dict
    ) -> list[str]:
        theirs = paper.get("win", {}).get(row.trainer)
        zero_shot = Row(ZERO_SHOT, row.backbone, clip=row.clip)
        zs = {s: c.stats.mean for s in columns if (c := self.cell(runs, zero_shot, s, shots)) is not None}
        if row.trainer == ZERO_SHOT or not zs:
            return [MISSING] + ([MISSING, MISSING] if self.paper is not None else [])
        shared = [s for s in means if s in zs]
        win = sum(means[s] > zs[s] for s in shared)
        text = f"{win}" + ("" if len(shared) == len(columns) else f" ({len(shared)}/{len(columns)})")
        if self.paper is None:
            return [text]
        complete = set(shared) == set(self.columns.transfer)
        delta = f"{win - theirs:+d}" if theirs is not None and complete else MISSING
        return [text, MISSING if theirs is None else str(theirs), delta]

    def synthetic(self) -> Table:
        partial_before = len(self.partial)
        runs = [r for r in self.runs if r.synthetic]
        trained = {(r.setting, r.shots) for r in runs if r.shots is not None}
        zs_only = {(r.setting, None) for r in runs if not any(s == r.setting for s, _ in trained)}
        datasets = {r.setting: r.dataset for r in runs}
        families, known = list(self.columns.synthetic_datasets), list(self.columns.synthetic)

        def order(column: tuple[str, int | None]) -> tuple:
            setting, shots = column
            family = families.index(datasets[setting]) if datasets[setting] in families else len(families)
            return family, shots or 0, known.index(setting) if setting in known else len(known), setting

        columns = sorted(trained | zs_only, key=order)
        paper = (self.paper or {}).get("synthetic", {}).get("accuracy", {})
        body = []
        for row in sorted_rows(r.row for r in runs):
            line = [row.label]
            for setting, shots in columns:
                c = self.cell(runs, row, setting, shots)
                theirs = paper.get(row.trainer, {}).get(setting, {}).get(shots) if row.is_paper_setup else None
                line += [self.cell_text(c, 2, self.synthetic_label(setting, shots), row)]
                line += self.with_paper(c.stats if c else None, theirs, 2)
            body.append(line)
        headers = self.headers([self.synthetic_label(*c) for c in columns])
        return self.table("Synthetic datasets", headers, body, partial_before)

    def table(self, title: str, headers: list[str], body: list[list[str]], partial_before: int) -> Table:
        """A table whose caption explains n/m when a cell of it averages only some of its folder's runs."""
        table = Table(title, headers, body)
        if len(self.partial) > partial_before:
            table.mark_partial()
        return table

    def synthetic_label(self, setting: str, shots: int | None) -> str:
        return self.columns.synthetic.get(setting, setting) + (f" ({shots}-shot)" if shots is not None else "")

    def cost(self) -> Table:
        paper = (self.paper or {}).get("cost", {})
        headers = ["Method", "Runs", "Learnable parameters", "Train image queries", "Train calls", "Train time (h)"]
        if self.paper is not None:
            headers += ["Paper parameters (ViT-B)", "Paper peak memory MB (ViT-B)"]
        body = []
        for row in sorted_rows(r.row for r in self.runs):
            runs = [r for r in self.runs if r.row == row]
            learnable = sorted({r.learnable for r in runs if r.learnable is not None})
            line = [
                row.label,
                str(len(runs)),
                ", ".join(f"{n:,}" for n in learnable) or MISSING,
                f"{sum(r.train_images for r in runs):,}",
                f"{sum(r.train_calls for r in runs):,}",
                f"{sum(r.train_time_s for r in runs) / 3600:.2f}",
            ]
            if self.paper is not None:
                theirs = paper.get(row.trainer) if row.is_paper_setup else None
                line += (
                    [str(theirs["params"]["vit_b"]), f"{theirs['memory_mb']['vit_b']:,}"]
                    if theirs
                    else [MISSING, MISSING]
                )
            body.append(line)
        return Table("Cost", headers, body, "totals over every finished run found (all hyper-parameter folders)")


def build_report(
    runs: list[Run], unfinished: list[NoResult], paper: dict | None, patterns: list[str] | None = None
) -> Report:
    """The tables and the notes on variants, on cells averaging only some runs, and on runs without a result."""
    evaluations = sorted((r for r in runs if r.evaluation), key=lambda r: r.path)
    runs = [r for r in runs if not r.evaluation]
    pending: dict[str, int] = {}
    for u in unfinished:
        pending[u.variant] = pending.get(u.variant, 0) + 1
    builder = TableBuilder(runs, paper, patterns or [], paper_columns(), pending)
    report = Report()
    transfer_runs = [r for r in runs if not r.synthetic]
    shot_counts = sorted({r.shots for r in transfer_runs if r.shots is not None})
    if transfer_runs:
        report.tables += [builder.transfer(s) for s in shot_counts or [None]]
    if any(r.synthetic for r in runs):
        report.tables.append(builder.synthetic())
    if runs:
        report.tables.append(builder.cost())
    if builder.ambiguous:
        lines = []
        for label, where, c in builder.ambiguous:
            lines.append(
                f"{label} / {where}: {len(c.variants)} hyper-parameter folders, not averaged together; "
                f"the table shows the one with {c.reason}:"
            )
            for variant, vruns in sorted(c.variants.items()):
                mark = "  <- shown" if variant == c.shown else ""
                stats = Stats.of([r.accuracy for r in vruns]).text(2, builder.of(variant, vruns))
                lines.append(f"    {variant}: {stats}{mark}")
        lines.append("Choose the folder shown with --variant REGEX (matched against the paths above).")
        report.notes.append(("Cells marked * have runs from several hyper-parameter folders", lines))
    if builder.partial:
        lines = [
            f"{label} / {where}: the mean of {len(c.runs)} of the {builder.of(c.shown, c.runs)} runs in {c.shown}"
            for label, where, c in builder.partial
        ]
        report.notes.append(("Cells marked n/m average only the runs with a result (the rest are listed below)", lines))
    stopped = sorted((r for r in runs if r.stopped_by), key=lambda r: r.path)
    if stopped:
        report.notes.append(
            (
                f"Runs that stopped early ({len(stopped)}), in the tables with what they trained",
                [
                    f"{r.path}: stopped by its {'query budget' if r.stopped_by == 'budget' else r.stopped_by} after "
                    f"{r.steps} steps, {r.train_images:,} training images"
                    for r in stopped
                ],
            )
        )
    if evaluations:
        report.notes.append(
            (
                f"Evaluations (--eval-only) of trained models ({len(evaluations)}), not counted as seeds",
                [f"{r.path}: {r.row.label}, {r.accuracy:.2f}%" for r in evaluations],
            )
        )
    unreadable = sorted((u for u in unfinished if u.unreadable), key=lambda u: u.path)
    if unreadable:
        report.notes.append(
            (f"Unreadable files ({len(unreadable)}), their runs not in the tables", [u.reason for u in unreadable])
        )
    others = sorted((u for u in unfinished if not u.unreadable), key=lambda u: u.path)
    if others:
        report.notes.append(
            (
                f"Runs without a result ({len(others)}), not in the tables",
                [f"{u.path}: {u.reason}" for u in others],
            )
        )
    return report


def load_paper(path: str = PAPER_RESULTS) -> dict:
    """The paper's numbers (configs/paper/results.yaml)."""
    with open(path) as f:
        return yaml.safe_load(f)
