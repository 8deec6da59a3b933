"""Split helpers in CoOp's conventions: split JSON files, train/val splits, folder splits and base/new classes.

Dataset classes here expose them CoOp's way (``OxfordPets.read_split``, ``OxfordPets.save_split``,
``OxfordPets.split_trainval``, ``OxfordPets.subsample_classes``, ``DescribableTextures.read_and_split_data``)
because CoOp-family dataset plugins call them there. Internally, datasets pass plain ``Record`` tuples
around and build ``Datum`` objects (which check that each file exists) only for what they keep.
"""

from __future__ import annotations

import json
import math
import os
import os.path as osp
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple, TypeVar

from dassl.data.datasets import Datum
from dassl.utils import listdir_nohidden, write_json

CREATED_SPLIT_SEED = 1
"""Seed of every split this project creates itself, so a created split file is the same whichever run made it."""


def created_split_rng() -> random.Random:
    """The RNG for building a split from raw files (independent of ``SEED`` and of earlier draws)."""
    return random.Random(CREATED_SPLIT_SEED)


class Record(NamedTuple):
    """One labelled image as plain data, with ``Datum``'s attribute names (full path, no existence check)."""

    impath: str
    label: int
    classname: str


Item = TypeVar("Item")


def group_by_label(items: Iterable[Item]) -> dict[int, list[Item]]:
    """Items per label, labels in order of first appearance (the order CoOp's samplers visit them)."""
    groups: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.label].append(item)
    return groups


def relative_path(path: str, prefix: str) -> str:
    """``path`` relative to ``prefix`` with forward slashes, as split files store it."""
    return osp.relpath(path, prefix).replace(os.sep, "/")


class SplitFileError(ValueError):
    """A split file that cannot be read as ``{"train": [[path, label, classname], ...], ...}``."""


def read_split_records(
    filepath: str, path_prefix: str | Sequence[str], remedy: str = ""
) -> tuple[list[Record], list[Record], list[Record]]:
    """Read a split JSON as ``Record`` lists; a missing ``val`` or ``test`` key gives an empty list.

    ``path_prefix`` may list candidate folders; each split uses the first under which its first file
    exists (published split files differ in the folder their paths are relative to). An empty, truncated or
    malformed file raises ``SplitFileError`` naming it and how to repair it (``remedy``, else the general advice).
    """
    split = read_split_json(filepath, remedy)
    prefixes = [path_prefix] if isinstance(path_prefix, str) else list(path_prefix)
    output = []
    for key in ("train", "val", "test"):
        rows = split.get(key, [])
        try:
            prefix = choose_prefix([row[0] for row in rows[:1]], prefixes)
            output.append([Record(osp.join(prefix, path), int(label), classname) for path, label, classname in rows])
        except (TypeError, ValueError, KeyError, IndexError) as e:
            raise split_file_error(
                filepath, f'rows of "{key}" must be [relative_path, label, classname] ({e})', remedy
            ) from None
    return output[0], output[1], output[2]


def read_split_json(filepath: str, remedy: str = "") -> dict:
    """The parsed split file; ``SplitFileError`` when it is not a JSON object with a ``train`` list."""
    try:
        with open(filepath, encoding="utf-8") as f:
            split = json.load(f)
    except ValueError as e:
        reason = "it is empty" if osp.getsize(filepath) == 0 else f"it is not valid JSON: {e}"
        raise split_file_error(filepath, reason, remedy) from None
    if not isinstance(split, dict) or not isinstance(split.get("train"), list):
        expected = 'expected {"train": [[path, label, classname], ...], "val": ..., "test": ...}'
        raise split_file_error(filepath, expected, remedy)
    return split


GENERAL_REMEDY = (
    "A split this project created (split_<Dataset>.json) is created again from the raw files once you delete it; "
    "a published split (split_zhou_*, split_mlai_*) must be restored from its source "
    "(python -m datasets.prepare <Dataset> says where)."
)


def split_file_error(filepath: str, reason: str, remedy: str = "") -> SplitFileError:
    return SplitFileError(f'Cannot read the split file "{filepath}": {reason}. {remedy or GENERAL_REMEDY}')


def choose_prefix(sample_paths: Sequence[str], prefixes: Sequence[str]) -> str:
    """The first prefix under which the sample paths exist (the first prefix when none matches)."""
    for prefix in prefixes:
        if all(osp.exists(osp.join(prefix, path)) for path in sample_paths):
            return prefix
    return prefixes[0]


def read_split(filepath: str, path_prefix: str) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """CoOp's ``read_split``: a split JSON as three ``Datum`` lists (paths joined to ``path_prefix``)."""
    print(f"Reading split from {filepath}")
    return tuple(to_datums(records) for records in read_split_records(filepath, path_prefix))


def save_split(train: Iterable, val: Iterable, test: Iterable, filepath: str, path_prefix: str) -> None:
    """CoOp's ``save_split``: write items (``Datum`` or ``Record``) as a split JSON relative to ``path_prefix``."""

    def rows(items):
        return [[relative_path(item.impath, path_prefix), int(item.label), item.classname] for item in items]

    write_json({"train": rows(train), "val": rows(val), "test": rows(test)}, filepath)
    print(f"Saved split to {filepath}")


def split_trainval(
    trainval: Sequence[Item], p_val: float = 0.2, rng: random.Random | None = None
) -> tuple[list[Item], list[Item]]:
    """Per class, shuffle and move ``round(n * p_val)`` items to val (CoOp's ``split_trainval``).

    Without ``rng`` it draws from Python's global ``random``, as CoOp does.
    """
    rng = rng or random
    p_trn = 1 - p_val
    print(f"Splitting trainval into {p_trn:.0%} train and {p_val:.0%} val")
    train: list[Item] = []
    val: list[Item] = []
    for label, items in group_by_label(trainval).items():
        items = list(items)
        n_val = round(len(items) * p_val)
        if n_val < 1:
            raise ValueError(f"Class {label} has {len(items)} items: too few for a {p_val:.0%} validation share")
        rng.shuffle(items)
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return train, val


def split_three_ways(
    records: Sequence[Item], p_trn: float, p_val: float, rng: random.Random
) -> tuple[list[Item], list[Item], list[Item]]:
    """Per class (in order of first appearance), shuffle and cut ``round(n*p_trn)`` / ``round(n*p_val)`` / rest."""
    train: list[Item] = []
    val: list[Item] = []
    test: list[Item] = []
    for label, items in group_by_label(records).items():
        items = list(items)
        rng.shuffle(items)
        n_train = round(len(items) * p_trn)
        n_val = round(len(items) * p_val)
        if min(n_train, n_val, len(items) - n_train - n_val) < 1:
            raise ValueError(f"Class {label} has {len(items)} images: too few for a train/val/test split")
        train.extend(items[:n_train])
        val.extend(items[n_train : n_train + n_val])
        test.extend(items[n_train + n_val :])
    return train, val, test


def folder_split_records(
    image_dir: str,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: dict[str, str] | None = None,
    rng: random.Random | None = None,
) -> tuple[list[Record], list[Record], list[Record]]:
    """Split ``image_dir/<class>/<image>`` per class into train/val/test shares (labels = sorted folder index).

    Files are sorted before shuffling so the result does not depend on the file system's listing order.
    """
    categories = sorted(
        c for c in listdir_nohidden(image_dir) if c not in ignored and osp.isdir(osp.join(image_dir, c))
    )
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")
    records = []
    for label, category in enumerate(categories):
        classname = (new_cnames or {}).get(category, category)
        category_dir = osp.join(image_dir, category)
        records += [
            Record(osp.join(category_dir, name), label, classname) for name in listdir_nohidden(category_dir, sort=True)
        ]
    return split_three_ways(records, p_trn, p_val, rng or random)


def read_and_split_data(
    image_dir: str,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: dict[str, str] | None = None,
    rng: random.Random | None = None,
) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """CoOp's ``read_and_split_data``: ``folder_split_records`` as ``Datum`` lists."""
    return tuple(
        to_datums(records) for records in folder_split_records(image_dir, p_trn, p_val, ignored, new_cnames, rng)
    )


def subsample_classes(*args: Sequence[Datum], subsample: str = "all"):
    """Keep the base (first ceil(n/2) sorted labels of the first list) or new (the rest) classes, relabelled from 0.

    ``"all"`` returns the inputs unchanged (as a tuple), like CoOp.
    """
    if subsample not in ("all", "base", "new"):
        raise ValueError(f'DATASET.SUBSAMPLE_CLASSES must be "all", "base" or "new", got "{subsample}"')
    if subsample == "all":
        return args
    labels = sorted({item.label for item in args[0]})
    m = math.ceil(len(labels) / 2)
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabeler = {label: new for new, label in enumerate(selected)}
    return [
        [
            Datum(impath=item.impath, label=relabeler[item.label], classname=item.classname)
            for item in dataset
            if item.label in relabeler
        ]
        for dataset in args
    ]


def to_datums(records: Iterable) -> list[Datum]:
    """``Datum`` objects for records (each file must exist)."""
    return [Datum(impath=r.impath, label=int(r.label), classname=r.classname) for r in records]


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically ("2.png" before "10.png")."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def folder_records(split_dir: str) -> list[Record]:
    """``split_dir/<digit>/<file>`` as records labelled by the integer folder name, in (label, natural file) order."""
    folders = sorted(
        (d for d in listdir_nohidden(split_dir) if d.isdigit() and osp.isdir(osp.join(split_dir, d))), key=int
    )
    return [
        Record(osp.join(split_dir, folder, name), int(folder), folder)
        for folder in folders
        for name in sorted(listdir_nohidden(osp.join(split_dir, folder)), key=natural_key)
    ]


def read_text_lines(path: str) -> list[str]:
    """Non-empty, stripped lines of a text file."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]
