"""Hand-made output trees: results.json files as train.py writes them, and logs in Dassl/CoOp's format."""

from __future__ import annotations

import json
from pathlib import Path

from trainers import __version__


def write_results(
    folder: Path,
    trainer: str,
    dataset: str,
    seed: int,
    accuracy: float | None,
    *,
    shots: int = 16,
    backbone: str = "ViT-B/16",
    train_images: int = 0,
    learnable: int = 0,
    config: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """``folder/results.json`` as train.py writes it (the fields the tables read); ``dataset`` is a config stem (svhn)."""
    from datasets.catalog import dataset_info

    folder.mkdir(parents=True, exist_ok=True)
    results = {
        "trainer": trainer,
        "dataset": dataset_info(dataset).name,
        "seed": seed,
        "shots": shots,
        "backbone": backbone,
        "eval_only": trainer == "ZeroshotCLIP",
        "accuracy": accuracy,
        "error": None if accuracy is None else round(100 - accuracy, 4),
        "macro_f1": accuracy,
        "wall_time_s": 2.0,
        "toolkit_version": __version__,
        "learnable_parameters": learnable,
        "train_time_s": 1800.0,
        "queries": {
            "train": {"images": train_images, "calls": train_images // 100},
            "test": {"images": 10, "calls": 1},
        },
        "config": config or {},
        **(extra or {}),
    }
    path = folder / "results.json"
    path.write_text(json.dumps(results))
    return path


def result_block(accuracy: float, error: float | None = None, macro_f1: float = 50.0) -> list[str]:
    """The evaluator's printed block, one decimal as Dassl prints it."""
    error = 100 - accuracy if error is None else error
    return [
        "Evaluate on the *test* set",
        "=> result",
        "* total: 8",
        "* correct: 7",
        f"* accuracy: {accuracy:.1f}%",
        f"* error: {error:.1f}%",
        f"* macro_f1: {macro_f1:.1f}%",
    ]


def training_log(*blocks: list[str], finished: bool = True, before_end: list[str] = ()) -> str:
    """A training log.txt: header, epoch lines, ``before_end``, then "Finish training" and the result blocks."""
    lines = [
        "***************",
        "** Arguments **",
        "Loading trainer: BLACKVIP",
        "epoch [1/1] batch [1/1] time 0.1 (0.1) data 0.0 (0.0) loss 2.1 (2.1) acc 25.0 (25.0) lr 1.0e-03",
        *before_end,
    ]
    if finished:
        lines += [
            "Checkpoint saved to out/coordinator/model.pth.tar-1",
            "Finish training",
            "Deploy the last-epoch model",
        ]
        for block in blocks:
            lines += block
        lines.append("Elapsed: 0:00:01")
    return "\n".join(lines) + "\n"


def eval_only_log(block: list[str]) -> str:
    """An eval-only log.txt: no "Finish training", the result block after loading."""
    return "\n".join(["Loading trainer: ZeroshotCLIP", "Note that load_model() is skipped", *block]) + "\n"


def write_log(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "log.txt"
    path.write_text(text)
    return path


def checkpoint(folder: Path, model: str, epoch: int) -> None:
    """A Dassl checkpoint pointer (the weights file itself is not needed by the table tools)."""
    (folder / model).mkdir(parents=True, exist_ok=True)
    (folder / model / "checkpoint").write_text(f"model.pth.tar-{epoch}\n")
