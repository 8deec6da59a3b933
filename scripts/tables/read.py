"""Finding the runs under an output folder and reading each one's results.json into a table row and column, or
saying why a run has none (unfinished, failed, or a file that cannot be read)."""

from __future__ import annotations

import os
import os.path as osp
import re
from collections.abc import Iterable
from dataclasses import dataclass

from datasets.catalog import dataset_info, setting_of
from trainers.methods import DEFAULT_TABLE_ORDER, method_label, registered_methods
from trainers.results import LOG_FILE, RESULTS_FILE, ResultsError, RunFiles, RunResults
from trainers.targets.classifier import CLASSIFIER_ARCHS

ZERO_SHOT = "ZeroshotCLIP"
ZERO_SHOT_LABEL = "Zero-shot"
"""The zero-shot row's label when the target is not CLIP (its method label says CLIP)."""
PAPER_BACKBONE, PAPER_COORDINATOR = "ViT-B/16", "vit-mae-base"
VP_TRAINERS = ("VPWB", "VPOUR")
PAPER_VP_PROMPT = ("padding", 30)
"""The BlackVIP paper's VP prompt (pad 30); other designs and sizes (the VP paper's comparison) get rows of their own."""


@dataclass(frozen=True)
class Row:
    """A table row: one method on one target, with BlackVIP's coordinator encoder or VP's prompt design and size."""

    trainer: str
    backbone: str
    """The target actually queried: CLIP's architecture, a classifier's title (LeNet-5), or ``remote <model>``."""
    coordinator: str = ""
    prompt: str = ""
    clip: bool = True
    """Whether the target is CLIP; the zero-shot row of another target reads "Zero-shot (<target>)"."""

    @property
    def label(self) -> str:
        label = method_label(self.trainer) if self.clip or self.trainer != ZERO_SHOT else ZERO_SHOT_LABEL
        if self.backbone and self.backbone != PAPER_BACKBONE:
            label += f" ({self.backbone})"
        if self.coordinator not in ("", PAPER_COORDINATOR):
            label += f" [{self.coordinator}]"
        if self.prompt:
            label += f" [{self.prompt}]"
        return label

    @property
    def is_paper_setup(self) -> bool:
        return self.backbone == PAPER_BACKBONE and self.coordinator in ("", PAPER_COORDINATOR) and not self.prompt


def sorted_rows(rows: Iterable[Row]) -> list[Row]:
    """Distinct rows in the methods' table order (unregistered trainers last), the paper's target first."""
    order = {m.name: m.table_order for m in registered_methods()}

    def key(row: Row) -> tuple:
        rank = order.get(row.trainer, DEFAULT_TABLE_ORDER)
        return (
            rank,
            row.trainer,
            row.backbone != PAPER_BACKBONE,
            row.backbone,
            row.coordinator,
            prompt_order(row.prompt),
        )

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
    stopped_by: str | None = None
    steps: int | None = None
    evaluation: bool = False
    """An --eval-only run of a trained method (it evaluates another run's model): kept apart from the seeds."""


def prompt_order(prompt: str) -> tuple:
    """VP prompt rows by design (padding, fixed_patch, random_patch, others) then size."""
    if not prompt:
        return (-1, 0, "")
    design, _, size = prompt.partition(" p=")
    designs = ("padding", "fixed_patch", "random_patch")
    rank = designs.index(design) if design in designs else len(designs)
    return (rank, int(size) if size.isdigit() else 0, design)


def vp_prompt(results: RunResults) -> str:
    """``"<design> p=<size>"`` for a VP run whose prompt is not the paper's pad 30, else empty."""
    node = results.config.get("TRAINER", {}).get(str(results.trainer), {})
    design, size = node.get("METHOD", PAPER_VP_PROMPT[0]), node.get("PROMPT_SIZE", PAPER_VP_PROMPT[1])
    return "" if (design, size) == PAPER_VP_PROMPT else f"{design} p={size}"


def target_of(results: RunResults) -> tuple[str, bool]:
    """The target the run queried, from its saved config (``TARGET.NAME`` and that target's keys), and whether it
    is CLIP: CLIP's architecture, a classifier's title (``LeNet-5``) or ``remote <model>``."""
    target = results.config.get("TARGET", {})
    name = str(target.get("NAME") or "clip").lower()
    if name == "classifier":
        arch = str(target.get("CLASSIFIER", {}).get("ARCH", ""))
        spec = CLASSIFIER_ARCHS.get(arch)
        return (spec.title if spec else arch or "classifier"), False
    if name == "remote":
        model = str(target.get("REMOTE", {}).get("MODEL", ""))
        return f"remote {model}".strip(), False
    if name != "clip":
        return name, False
    return results.backbone, True


def is_evaluation(results: RunResults) -> bool:
    """An --eval-only run of a method that learns (it scores a model trained elsewhere, so it is no extra seed);
    zero-shot runs, which learn nothing, are evaluations by nature and count as seeds."""
    return results.eval_only and results.trainer != ZERO_SHOT and results.learnable_parameters != 0


def row_of(results: RunResults) -> Row:
    coordinator = prompt = ""
    if results.trainer == "BLACKVIP":
        blackvip = results.config.get("TRAINER", {}).get("BLACKVIP", {})
        coordinator = blackvip.get("PT_BACKBONE") or blackvip.get("METHOD", "")
    if results.trainer in VP_TRAINERS:
        prompt = vp_prompt(results)
    target, clip = target_of(results)
    return Row(str(results.trainer), target, coordinator, prompt, clip)


def dataset_of(results: RunResults) -> tuple[str, bool]:
    """The run's dataset config stem, and whether it belongs in the synthetic table (catalog group "synthetic")."""
    try:
        info = dataset_info(str(results.dataset))
    except ValueError:
        return str(results.dataset).lower(), False
    return info.config, info.group == "synthetic"


@dataclass(frozen=True)
class NoResult:
    """A run folder (relative to the output root) without a usable result, why, and whether a file in it could
    not be read."""

    path: str
    reason: str
    unreadable: bool = False

    @property
    def variant(self) -> str:
        """The hyper-parameter folder holding the run, as ``Run.variant``."""
        return osp.dirname(self.path)


def run_folders(root: str) -> list[str]:
    """Folders where a run started (results.json, log.txt, run.json or a checkpoint); not searched further, and
    hidden folders (a run moved aside into ``.replaced-<time>/``) not at all."""
    found = []
    for folder, subdirs, _ in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if RunFiles.scan(folder).is_run:
            found.append(folder)
            subdirs.clear()
    return found


def has_test_result(log_text: str) -> bool:
    """Whether the log holds a test-set result block (validation blocks during training do not count)."""
    _, marker, tail = log_text.rpartition("Evaluate on the *test* set")
    return bool(marker) and "=> result" in tail and re.search(r"\* accuracy: [\d.]+%", tail) is not None


def why_unfinished(run: RunFiles) -> str:
    """A short reason why a run folder has no results.json, and what to do; OSError when its log cannot be read."""
    text = ""
    if run.has(LOG_FILE):
        with open(osp.join(run.path, LOG_FILE), errors="replace") as f:
            text = f.read()
    if has_test_result(text):
        reason = "log.txt has a result but there is no results.json (killed while writing it, or another tool's run)"
    elif run.checkpoints:
        reason = f"unfinished: last checkpoint {run.checkpoints[-1]}, no results.json (re-run the script to resume)"
    elif text:
        reason = "log.txt without a result (failed or still running)"
    else:
        reason = "no results.json"
    return "; ".join([reason, *run.hints()])


def read_run(folder: str, root: str) -> Run | NoResult:
    """The finished run in ``folder``, or why it has no usable result."""
    where, path = osp.relpath(folder, root), osp.join(folder, RESULTS_FILE)
    run = RunFiles.scan(folder)
    if not run.has(RESULTS_FILE):
        try:
            return NoResult(where, why_unfinished(run))
        except OSError as e:
            log = osp.join(folder, LOG_FILE)
            return NoResult(where, f"{log}: unreadable log.txt ({e.strerror or e})", unreadable=True)
    try:
        results = RunResults.read(path)
    except ResultsError as e:
        return NoResult(where, str(e), unreadable=True)
    if results.accuracy is None:
        return NoResult(where, "results.json without an accuracy")
    if results.trainer is None or results.dataset is None:
        return NoResult(where, "results.json without a trainer or dataset (not written by train.py)")
    dataset, synthetic = dataset_of(results)
    return Run(
        path=where,
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
        stopped_by=results.stopped_by,
        steps=results.steps,
        evaluation=is_evaluation(results),
    )


def collect(root: str) -> tuple[list[Run], list[NoResult]]:
    """The finished runs under ``root``, and the runs without a result."""
    runs, unfinished = [], []
    for folder in run_folders(root):
        run = read_run(folder, root)
        if isinstance(run, NoResult):
            unfinished.append(run)
        else:
            runs.append(run)
    return runs, unfinished
