"""Aggregate the seed runs under an output folder into the BlackVIP paper's tables.

    python scripts/make_tables.py OUTPUT_ROOT [--format markdown|latex|csv] [--paper] [--variant REGEX ...]
                                              [--plot FILE.png]

Every folder holding ``results.json`` (or a ``log.txt`` or a checkpoint) is one run. Finished runs are grouped by
method (trainer, target backbone, BlackVIP coordinator) and column: the dataset for the transfer table (one table
per shot count, the paper's column order, with Avg and the Win count against zero-shot CLIP of the same
backbone) or the setting and shots for the synthetic table (Loc-MNIST fake-digit size, Biased-MNIST rho pair).
A cell reads ``mean ± std (n)``: the std is the SAMPLE std over seeds (n-1 in the denominator; none for n = 1),
unlike CoOp's parse_test_res.py, which prints the population std. Zero-shot runs count for every shot count.

A cell whose runs come from several hyper-parameter folders is never averaged across them: the table shows one
folder, marks the cell with ``*`` and lists every folder after the tables. The folder shown is the one matching
``--variant REGEX`` (a path relative to OUTPUT_ROOT; repeatable), else the one with the most seeds, then the
newest. Runs without a result (unfinished, failed, or a log without results.json) are listed at the end.
``--paper`` adds the paper's number and our difference beside each cell (configs/paper/results.yaml).
``--plot`` draws accuracy against the training image queries of each run folder (results.json
``queries.train.images``), one series per method.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass, field
from statistics import mean, stdev

import yaml
from tabulate import tabulate

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAPER_RESULTS = osp.join(REPO_ROOT, "configs", "paper", "results.yaml")
DATASET_CONFIGS = osp.join(REPO_ROOT, "configs", "datasets")

METHODS = {
    "VPWB": "VP (white-box)",
    "ZeroshotCLIP": "ZS CLIP",
    "BAR": "BAR",
    "VPOUR": "VP w/ SPSA-GC",
    "BLACKVIP": "BlackVIP",
}
ZERO_SHOT = "ZeroshotCLIP"
PAPER_BACKBONE, PAPER_COORDINATOR = "ViT-B/16", "vit-mae-base"
TRANSFER = {
    "caltech101": "Caltech",
    "oxford_pets": "Pets",
    "stanford_cars": "Cars",
    "oxford_flowers": "Flowers",
    "food101": "Food",
    "fgvc_aircraft": "Aircraft",
    "sun397": "SUN",
    "dtd": "DTD",
    "svhn": "SVHN",
    "eurosat": "EuroSAT",
    "resisc45": "Resisc",
    "clevr": "CLEVR",
    "ucf101": "UCF",
    "imagenet": "ImageNet",
}
SYNTHETIC_DATASETS = ("colour_biased_mnist", "locmnist")
SYNTHETIC = {
    "colour_biased_mnist_easy": "Biased MNIST ρ=0.8",
    "colour_biased_mnist_hard": "Biased MNIST ρ=0.9",
    "locmnist_r1_f1": "Loc-MNIST 1:1",
    "locmnist_r1_f4": "Loc-MNIST 1:4",
}
RHO_SETTINGS = {(0.8, 0.2): "colour_biased_mnist_easy", (0.9, 0.1): "colour_biased_mnist_hard"}
MISSING = "–"


@dataclass(frozen=True)
class Row:
    """A table row: one method on one target, with BlackVIP's coordinator encoder."""

    trainer: str
    backbone: str
    coordinator: str = ""

    @property
    def label(self) -> str:
        label = METHODS.get(self.trainer, self.trainer)
        if self.backbone != PAPER_BACKBONE:
            label += f" ({self.backbone})"
        if self.coordinator not in ("", PAPER_COORDINATOR):
            label += f" [{self.coordinator}]"
        return label

    @property
    def is_paper_setup(self) -> bool:
        return self.backbone == PAPER_BACKBONE and self.coordinator in ("", PAPER_COORDINATOR)

    def sort_key(self) -> tuple:
        order = list(METHODS).index(self.trainer) if self.trainer in METHODS else len(METHODS)
        return order, self.trainer, self.backbone != PAPER_BACKBONE, self.backbone, self.coordinator


@dataclass
class Run:
    """A finished run read from its results.json."""

    path: str
    variant: str
    row: Row
    setting: str
    shots: int | None
    accuracy: float
    train_images: int
    train_calls: int
    learnable: int | None
    train_time_s: float
    mtime: float


@dataclass
class Stats:
    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(mean(values), stdev(values) if len(values) > 1 else None, len(values))

    def text(self, digits: int) -> str:
        spread = "" if self.std is None else f" ± {self.std:.{digits}f}"
        return f"{self.mean:.{digits}f}{spread} ({self.n})"


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


@dataclass
class Report:
    tables: list[Table] = field(default_factory=list)
    notes: list[tuple[str, list[str]]] = field(default_factory=list)


# ---------------------------------------------------------------- reading runs


def dataset_stems(folder: str = DATASET_CONFIGS) -> dict[str, str]:
    """Registered dataset name -> config name (``EuroSAT`` -> ``eurosat``), from configs/datasets/*.yaml."""
    stems = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            with open(osp.join(folder, name)) as f:
                stems[yaml.safe_load(f)["DATASET"]["NAME"]] = name[: -len(".yaml")]
    return stems


def setting_of(results: dict, stems: dict[str, str]) -> str:
    """The column a run belongs to: its dataset's config name, or the synthetic setting it was run in."""
    stem = stems.get(results["dataset"], str(results["dataset"]).lower())
    data = results.get("config", {}).get("DATASET", {})
    if stem == "locmnist":
        lm = data.get("LOCMNIST", {})
        return f"locmnist_r{lm.get('R_SIZE', 1)}_f{lm.get('F_SIZE', 4)}"
    if stem == "colour_biased_mnist":
        bm = data.get("COLOUR_BIASED_MNIST", {})
        rho = (float(bm.get("TRAIN_RHO", 0.8)), float(bm.get("TEST_RHO", 0.2)))
        return RHO_SETTINGS.get(rho, f"colour_biased_mnist_rho{rho[0]:g}_{rho[1]:g}")
    return stem


def row_of(results: dict) -> Row:
    trainer = results["trainer"]
    coordinator = ""
    if trainer == "BLACKVIP":
        blackvip = results.get("config", {}).get("TRAINER", {}).get("BLACKVIP", {})
        coordinator = blackvip.get("PT_BACKBONE") or blackvip.get("METHOD", "")
    return Row(trainer, results.get("backbone", ""), coordinator)


def run_folders(root: str) -> list[str]:
    """Folders holding results.json, log.txt or a checkpoint (``<model>/checkpoint``); not searched further."""
    found = []
    for folder, subdirs, files in os.walk(root):
        subdirs.sort()
        has_checkpoint = any(osp.isfile(osp.join(folder, d, "checkpoint")) for d in subdirs)
        if "results.json" in files or "log.txt" in files or has_checkpoint:
            found.append(folder)
            subdirs.clear()
    return found


def why_unfinished(folder: str) -> str:
    """A short reason why a run folder has no usable result."""
    checkpoints = [osp.join(folder, d, "checkpoint") for d in sorted(os.listdir(folder))]
    latest = [open(p).read().strip() for p in checkpoints if osp.isfile(p)]
    log = osp.join(folder, "log.txt")
    text = open(log, errors="replace").read() if osp.isfile(log) else ""
    if "=> result" in text and re.search(r"\* accuracy: [\d.]+%", text):
        return "log.txt has a result but there is no results.json (killed while writing it, or another tool's run)"
    if latest:
        return f"unfinished: last checkpoint {latest[-1]}, no results.json (re-run the script to resume)"
    if text:
        return "log.txt without a result (failed or still running)"
    return "no results.json"


def read_run(folder: str, root: str, stems: dict[str, str]) -> Run | str:
    """The finished run in ``folder``, or the reason it has no usable result."""
    path = osp.join(folder, "results.json")
    if not osp.isfile(path):
        return why_unfinished(folder)
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        return f"unreadable results.json ({e})"
    if results.get("accuracy") is None:
        return "results.json without an accuracy"
    train = results.get("queries", {}).get("train", {})
    return Run(
        path=osp.relpath(folder, root),
        variant=osp.relpath(osp.dirname(folder), root),
        row=row_of(results),
        setting=setting_of(results, stems),
        shots=None if results["trainer"] == ZERO_SHOT else results.get("shots"),
        accuracy=float(results["accuracy"]),
        train_images=int(train.get("images", 0)),
        train_calls=int(train.get("calls", 0)),
        learnable=results.get("learnable_parameters"),
        train_time_s=float(results.get("train_time_s") or 0.0),
        mtime=osp.getmtime(path),
    )


def collect(root: str) -> tuple[list[Run], list[tuple[str, str]]]:
    """The finished runs under ``root``, and (folder, reason) for the runs without a result."""
    stems = dataset_stems()
    runs, unfinished = [], []
    for folder in run_folders(root):
        run = read_run(folder, root, stems)
        if isinstance(run, str):
            unfinished.append((osp.relpath(folder, root), run))
        else:
            runs.append(run)
    return runs, unfinished


# ---------------------------------------------------------------- building tables


def is_synthetic(setting: str) -> bool:
    return setting.startswith(SYNTHETIC_DATASETS)


def cell(runs: list[Run], row: Row, setting: str, shots: int | None, patterns: list[str]) -> Cell | None:
    """The runs of ``row`` on ``setting`` with ``shots`` (zero-shot runs match any shots), by folder."""
    variants: dict[str, list[Run]] = {}
    for r in runs:
        if r.row == row and r.setting == setting and (r.shots is None or r.shots == shots):
            variants.setdefault(r.variant, []).append(r)
    return Cell(variants, patterns) if variants else None


def transfer_order(setting: str) -> tuple:
    keys = list(TRANSFER)
    return (keys.index(setting), "") if setting in TRANSFER else (len(keys), setting)


def synthetic_order(column: tuple[str, int | None]) -> tuple:
    setting, shots = column
    family = next(i for i, d in enumerate(SYNTHETIC_DATASETS) if setting.startswith(d))
    known = list(SYNTHETIC)
    return family, shots or 0, known.index(setting) if setting in known else len(known), setting


class TableBuilder:
    """Turns runs into the transfer, synthetic and cost tables, with the paper's numbers when asked."""

    def __init__(self, runs: list[Run], paper: dict | None, patterns: list[str]) -> None:
        self.runs, self.paper, self.patterns = runs, paper, patterns
        self.ambiguous: list[tuple[str, str, Cell]] = []

    def cell(self, runs: list[Run], row: Row, setting: str, shots: int | None) -> Cell | None:
        return cell(runs, row, setting, shots, self.patterns)

    def rows(self, runs: list[Run]) -> list[Row]:
        return sorted({r.row for r in runs}, key=Row.sort_key)

    def cell_text(self, c: Cell | None, digits: int, where: str, row: Row) -> str:
        if c is None:
            return MISSING
        if len(c.variants) > 1:
            if all((row.label, where) != (label, w) for label, w, _ in self.ambiguous):
                self.ambiguous.append((row.label, where, c))
            return c.stats.text(digits) + " *"
        return c.stats.text(digits)

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

    def transfer(self, shots: int | None) -> Table:
        runs = [r for r in self.runs if not is_synthetic(r.setting) and r.shots in (None, shots)]
        columns = sorted({r.setting for r in runs}, key=transfer_order)
        paper = (self.paper or {}).get("transfer", {})
        body = []
        for row in self.rows(runs):
            theirs = paper if shots == paper.get("shots") and row.is_paper_setup else {}
            cells = [self.cell(runs, row, s, shots) for s in columns]
            means = {s: c.stats.mean for s, c in zip(columns, cells) if c is not None}
            line = [row.label]
            paper_row = theirs.get("accuracy", {}).get(row.trainer, {})
            for s, c in zip(columns, cells):
                line += [self.cell_text(c, 1, f"{TRANSFER.get(s, s)} ({shots}-shot)", row)]
                line += self.with_paper(c.stats if c else None, paper_row.get(s), 1)
            line += self.average(row, means, columns, theirs)
            line += self.wins(row, runs, means, columns, shots, theirs)
            body.append(line)
        title = f"Transfer benchmarks, {shots}-shot" if shots is not None else "Transfer benchmarks, zero-shot only"
        headers = self.headers([TRANSFER.get(s, s) for s in columns] + ["Avg", "Win"])
        return Table(title, headers, body)

    def average(self, row: Row, means: dict[str, float], columns: list[str], paper: dict) -> list[str]:
        if not means:
            return [MISSING] + self.with_paper(None, None, 1)
        avg = mean(means.values())
        text = f"{avg:.1f}" + ("" if len(means) == len(columns) else f" ({len(means)}/{len(columns)})")
        complete = set(means) == set(TRANSFER)
        ours = Stats(avg, None, len(means)) if complete else None
        return [text] + self.with_paper(ours, paper.get("avg", {}).get(row.trainer), 1)

    def wins(
        self, row: Row, runs: list[Run], means: dict[str, float], columns: list[str], shots: int | None, paper: dict
    ) -> list[str]:
        theirs = paper.get("win", {}).get(row.trainer)
        zero_shot = Row(ZERO_SHOT, row.backbone)
        zs = {s: c.stats.mean for s in columns if (c := self.cell(runs, zero_shot, s, shots)) is not None}
        if row.trainer == ZERO_SHOT or not zs:
            return [MISSING] + ([MISSING, MISSING] if self.paper is not None else [])
        shared = [s for s in means if s in zs]
        win = sum(means[s] > zs[s] for s in shared)
        text = f"{win}" + ("" if len(shared) == len(columns) else f" ({len(shared)}/{len(columns)})")
        if self.paper is None:
            return [text]
        complete = set(shared) == set(TRANSFER)
        delta = f"{win - theirs:+d}" if theirs is not None and complete else MISSING
        return [text, MISSING if theirs is None else str(theirs), delta]

    def synthetic(self) -> Table:
        runs = [r for r in self.runs if is_synthetic(r.setting)]
        trained = {(r.setting, r.shots) for r in runs if r.shots is not None}
        zs_only = {(r.setting, None) for r in runs if not any(s == r.setting for s, _ in trained)}
        columns = sorted(trained | zs_only, key=synthetic_order)
        paper = (self.paper or {}).get("synthetic", {}).get("accuracy", {})
        body = []
        for row in self.rows(runs):
            line = [row.label]
            for setting, shots in columns:
                c = self.cell(runs, row, setting, shots)
                theirs = paper.get(row.trainer, {}).get(setting, {}).get(shots) if row.is_paper_setup else None
                line += [self.cell_text(c, 2, self.synthetic_label(setting, shots), row)]
                line += self.with_paper(c.stats if c else None, theirs, 2)
            body.append(line)
        return Table("Synthetic datasets", self.headers([self.synthetic_label(*c) for c in columns]), body)

    @staticmethod
    def synthetic_label(setting: str, shots: int | None) -> str:
        return SYNTHETIC.get(setting, setting) + (f" ({shots}-shot)" if shots is not None else "")

    def cost(self) -> Table:
        paper = (self.paper or {}).get("cost", {})
        headers = ["Method", "Runs", "Learnable parameters", "Train image queries", "Train calls", "Train time (h)"]
        if self.paper is not None:
            headers += ["Paper parameters (ViT-B)", "Paper peak memory MB (ViT-B)"]
        body = []
        for row in self.rows(self.runs):
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
    runs: list[Run], unfinished: list[tuple[str, str]], paper: dict | None, patterns: list[str] | None = None
) -> Report:
    """The tables and the notes on variants and on runs without a result."""
    builder = TableBuilder(runs, paper, patterns or [])
    report = Report()
    transfer_runs = [r for r in runs if not is_synthetic(r.setting)]
    shot_counts = sorted({r.shots for r in transfer_runs if r.shots is not None})
    if transfer_runs:
        report.tables += [builder.transfer(s) for s in shot_counts or [None]]
    if any(is_synthetic(r.setting) for r in runs):
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
                lines.append(f"    {variant}: {Stats.of([r.accuracy for r in vruns]).text(2)}{mark}")
        lines.append("Choose the folder shown with --variant REGEX (matched against the paths above).")
        report.notes.append(("Cells marked * have runs from several hyper-parameter folders", lines))
    if unfinished:
        report.notes.append(
            (
                f"Runs without a result ({len(unfinished)}), not in the tables",
                [f"{path}: {reason}" for path, reason in sorted(unfinished)],
            )
        )
    return report


# ---------------------------------------------------------------- rendering

LATEX_SYMBOLS = {"±": r"$\pm$", "ρ": r"$\rho$", "Δ": r"$\Delta$", "–": "--"}


def latex_escape(text: str) -> str:
    text = re.sub(r"([_%&#$])", r"\\\1", text)
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def render_markdown(report: Report) -> str:
    parts = []
    for t in report.tables:
        table = tabulate(t.rows, t.headers, tablefmt="github", disable_numparse=True)
        parts.append(f"### {t.title}\n\n{t.caption}\n\n{table}")
    for title, lines in report.notes:
        items = [f"  - {line.strip()}" if line.startswith(" ") else f"- {line}" for line in lines]
        parts.append(f"### {title}\n\n" + "\n".join(items))
    return "\n\n".join(parts) + "\n"


def render_latex(report: Report) -> str:
    parts = []
    for t in report.tables:
        rows = [[latex_escape(c) for c in row] for row in t.rows]
        body = tabulate(rows, [latex_escape(h) for h in t.headers], tablefmt="latex_raw", disable_numparse=True)
        parts.append(f"% {t.title}: {t.caption}\n{body}")
    for title, lines in report.notes:
        parts.append("\n".join([f"% {title}"] + [f"% {line}" for line in lines]))
    return "\n\n".join(parts) + "\n"


def render_csv(report: Report) -> str:
    """One block per table (a title row, the header, the rows), blocks separated by an empty line."""
    blocks = []
    for t in report.tables:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([f"{t.title}: {t.caption}"])
        writer.writerow(t.headers)
        writer.writerows(t.rows)
        blocks.append(buffer.getvalue())
    return "\n".join(blocks)


RENDERERS = {"markdown": render_markdown, "latex": render_latex, "csv": render_csv}


def plot_queries(runs: list[Run], path: str) -> None:
    """Accuracy against training image queries, one point per cell (mean ± sample std over seeds) and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault((r.row, r.setting, r.shots, r.variant), []).append(r)
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in sorted({key[0] for key in groups}, key=Row.sort_key):
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
            ax.annotate(
                TRANSFER.get(setting, SYNTHETIC.get(setting, setting)),
                (x, stats.mean),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("training image queries per run (zero-shot at 0)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against query cost (mean ± sample std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def load_paper(path: str = PAPER_RESULTS) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="output root written by the scripts (e.g. ./output)")
    parser.add_argument("--format", choices=sorted(RENDERERS), default="markdown")
    parser.add_argument("--paper", action="store_true", help="add the paper's numbers and our differences")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="REGEX",
        help="in a cell with several hyper-parameter folders, show the one matching; repeatable",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="plot accuracy against training image queries")
    args = parser.parse_args(argv)
    if not osp.isdir(args.root):
        parser.error(f"{args.root} is not a folder")

    runs, unfinished = collect(args.root)
    report = build_report(runs, unfinished, load_paper() if args.paper else None, args.variant)
    if not report.tables and not report.notes:
        print(f"No runs found under {args.root}", file=sys.stderr)
        return 1
    print(RENDERERS[args.format](report), end="")
    if args.format == "csv":
        for title, lines in report.notes:
            print("\n".join([title + ":"] + lines), file=sys.stderr)
    if args.plot:
        plot_queries(runs, args.plot)
        print(f"Plot written to {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
