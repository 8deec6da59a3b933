"""Finding the runs under an output folder and reading each one's results.json into a table row and column."""

from __future__ import annotations

import os
import os.path as osp
import re
from collections.abc import Iterable
from dataclasses import dataclass

from datasets.catalog import dataset_info, setting_of
from trainers.methods import DEFAULT_TABLE_ORDER, method_label, registered_methods
from trainers.results import RESULTS_FILE, ResultsError, RunResults

ZERO_SHOT = "ZeroshotCLIP"
PAPER_BACKBONE, PAPER_COORDINATOR = "ViT-B/16", "vit-mae-base"


@dataclass(frozen=True)
class Row:
    """A table row: one method on one target, with BlackVIP's coordinator encoder."""

    trainer: str
    backbone: str
    coordinator: str = ""

    @property
    def label(self) -> str:
        label = method_label(self.trainer)
        if self.backbone != PAPER_BACKBONE:
            label += f" ({self.backbone})"
        if self.coordinator not in ("", PAPER_COORDINATOR):
            label += f" [{self.coordinator}]"
        return label

    @property
    def is_paper_setup(self) -> bool:
        return self.backbone == PAPER_BACKBONE and self.coordinator in ("", PAPER_COORDINATOR)


def sorted_rows(rows: Iterable[Row]) -> list[Row]:
    """Distinct rows in the methods' table order (unregistered trainers last), the paper's target first."""
    order = {m.name: m.table_order for m in registered_methods()}

    def key(row: Row) -> tuple:
        rank = order.get(row.trainer, DEFAULT_TABLE_ORDER)
        return rank, row.trainer, row.backbone != PAPER_BACKBONE, row.backbone, row.coordinator

    return sorted(set(rows), key=key)


@dataclass
class Run:
    """A finished run read from its results.json."""

    path: str
    variant: str
    row: Row
    dataset: str
    setting: str
    synthetic: bool
    shots: int | None
    accuracy: float
    train_images: int
    train_calls: int
    learnable: int | None
    train_time_s: float
    mtime: float


def row_of(results: RunResults) -> Row:
    coordinator = ""
    if results.trainer == "BLACKVIP":
        blackvip = results.config.get("TRAINER", {}).get("BLACKVIP", {})
        coordinator = blackvip.get("PT_BACKBONE") or blackvip.get("METHOD", "")
    return Row(str(results.trainer), results.backbone, coordinator)


def dataset_of(results: RunResults) -> tuple[str, bool]:
    """The run's dataset config stem, and whether it belongs in the synthetic table (catalog group "synthetic")."""
    try:
        info = dataset_info(str(results.dataset))
    except ValueError:
        return str(results.dataset).lower(), False
    return info.config, info.group == "synthetic"


def run_folders(root: str) -> list[str]:
    """Folders holding results.json, log.txt or a checkpoint (``<model>/checkpoint``); not searched further."""
    found = []
    for folder, subdirs, files in os.walk(root):
        subdirs.sort()
        has_checkpoint = any(osp.isfile(osp.join(folder, d, "checkpoint")) for d in subdirs)
        if RESULTS_FILE in files or "log.txt" in files or has_checkpoint:
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


def read_run(folder: str, root: str) -> Run | str:
    """The finished run in ``folder``, or the reason it has no usable result."""
    path = osp.join(folder, RESULTS_FILE)
    if not osp.isfile(path):
        return why_unfinished(folder)
    try:
        results = RunResults.read(path)
    except ResultsError as e:
        return str(e)
    if results.accuracy is None:
        return "results.json without an accuracy"
    if results.trainer is None or results.dataset is None:
        return "results.json without a trainer or dataset (not written by train.py)"
    dataset, synthetic = dataset_of(results)
    return Run(
        path=osp.relpath(folder, root),
        variant=osp.relpath(osp.dirname(folder), root),
        row=row_of(results),
        dataset=dataset,
        setting=setting_of(results.dataset, results.config),
        synthetic=synthetic,
        shots=None if results.trainer == ZERO_SHOT else results.shots,
        accuracy=results.accuracy,
        train_images=results.queries.images("train"),
        train_calls=results.queries.calls("train"),
        learnable=results.learnable_parameters,
        train_time_s=results.train_time_s or 0.0,
        mtime=osp.getmtime(path),
    )


def collect(root: str) -> tuple[list[Run], list[tuple[str, str]]]:
    """The finished runs under ``root``, and (folder, reason) for the runs without a result."""
    runs, unfinished = [], []
    for folder in run_folders(root):
        run = read_run(folder, root)
        if isinstance(run, str):
            unfinished.append((osp.relpath(folder, root), run))
        else:
            runs.append(run)
    return runs, unfinished
