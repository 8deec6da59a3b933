"""Few-shot subsets and their cache files (also ImageNet's ``preprocessed.pkl``).

Caches are written in CoOp's format under CoOp's names, so CoOp, CoCoOp and BlackVIP checkouts sharing a data root
read them: a pickled dict ``{"train": [Datum, ...], "val": [...]}`` of ``dassl.data.datasets.base_dataset.Datum``
objects with absolute paths. One extra key, ``"bbvp"`` (plain data, never read by CoOp), records the dataset folder
the paths were written under (so a moved data root still works: paths are re-rooted on load) and what a few-shot
subset was sampled from (so a cache that no longer matches its split is never used).
Also read: CoOp's and BlackVIP's own caches (``my_dassl`` module path included), and the relative-row caches of
earlier versions of this toolkit, which are rewritten in CoOp's format once accepted.
"""

from __future__ import annotations

import copyreg
import hashlib
import json
import os.path as osp
import pickle
import random
import re
from collections.abc import Sequence
from typing import NamedTuple

from dassl.data.datasets import Datum
from dassl.utils import atomic_write

from .splits import Record, group_by_label, relative_path

CACHE_FORMAT = "coop-datum-1"
METADATA_KEY = "bbvp"
"""The key of this toolkit's record in a cache: ``{"format": CACHE_FORMAT, "root": dataset folder, "source": ...}``."""
ROWS_FORMAT = "relative-records-1"
"""The format of caches written by earlier versions: ``[path relative to the dataset folder, label, classname]`` rows
beside top-level ``format`` and ``source`` keys (CoOp's readers fail on them)."""
METADATA_KEYS = (METADATA_KEY, "format", "source")
"""Keys of a cache that are not record lists."""
PICKLE_PROTOCOL = 4
"""Readable by every Python 3 that CoOp-family checkouts run on (protocol 5 needs 3.8)."""

LEGACY_CLASSES = {
    ("dassl.data.datasets.base_dataset", "Datum"): Datum,
    ("my_dassl.data.datasets.base_dataset", "Datum"): Datum,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("builtins", "object"): object,
}


class CacheUnpickler(pickle.Unpickler):
    """Loads plain data and old ``Datum`` pickles (Dassl's and BlackVIP's ``my_dassl`` module path), nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) in LEGACY_CLASSES:
            return LEGACY_CLASSES[(module, name)]
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def coop_datum(record: Record) -> Datum:
    """``record`` as the ``Datum`` CoOp pickles (domain 0), built without ``Datum``'s file check: the cache
    stores what the split lists, and the file is checked when a run builds its items."""
    datum = Datum.__new__(Datum)
    datum.__dict__.update(_impath=record.impath, _label=int(record.label), _domain=0, _classname=record.classname)
    return datum


def save_records_cache(
    path: str, dataset_dir: str, splits: dict[str, Sequence[Record]], source: dict | None = None
) -> None:
    """Pickle record lists (atomically) in CoOp's format: ``{key: [Datum, ...]}`` with absolute paths, plus this
    toolkit's record under ``"bbvp"``: the dataset folder (to re-root the paths when the data root moves) and
    ``source``, what the lists were derived from (see ``fewshot_subsets``), so a later run can tell a stale cache
    from a current one."""
    data: dict = {key: [coop_datum(r) for r in records] for key, records in splits.items()}
    data[METADATA_KEY] = {"format": CACHE_FORMAT, "root": osp.abspath(dataset_dir), "source": source}
    with atomic_write(path, "wb") as f:
        pickle.dump(data, f, protocol=PICKLE_PROTOCOL)


class RecordsCache(NamedTuple):
    """A cache's record lists (absolute paths), its ``source`` (None when it was written without one) and its
    format (``CACHE_FORMAT``, ``ROWS_FORMAT``, or ``"coop"`` for a pickle written by a CoOp-family checkout)."""

    splits: dict[str, list[Record]]
    source: dict | None
    format: str = CACHE_FORMAT


def read_records_cache(path: str, dataset_dir: str) -> RecordsCache:
    """Read a cache in any format ``RecordsCache.format`` names; paths become absolute under ``dataset_dir``."""
    try:
        with open(path, "rb") as f:
            data = CacheUnpickler(f).load()
        if not isinstance(data, dict):
            raise pickle.UnpicklingError(f"expected a dict, found {type(data).__name__}")
        lists = {key: items for key, items in data.items() if key not in METADATA_KEYS}
        ours = data.get(METADATA_KEY)
        if isinstance(ours, dict) and ours.get("format") == CACHE_FORMAT:
            root = str(ours.get("root") or "")
            splits = {
                key: [Record(reroot(d.impath, root, dataset_dir), int(d.label), d.classname) for d in items]
                for key, items in lists.items()
            }
            return RecordsCache(splits, as_source(ours.get("source")), CACHE_FORMAT)
        if data.get("format") == ROWS_FORMAT:
            splits = {
                key: [Record(osp.join(dataset_dir, *p.split("/")), int(y), c) for p, y, c in rows]
                for key, rows in lists.items()
            }
            return RecordsCache(splits, as_source(data.get("source")), ROWS_FORMAT)
        splits = {
            key: [Record(rebase_path(d.impath, dataset_dir), int(d.label), d.classname) for d in items]
            for key, items in lists.items()
        }
        return RecordsCache(splits, None, "coop")
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
        raise RuntimeError(
            f'Cannot read the cache "{path}" ({e}). Delete it and it is rebuilt on the next run.'
        ) from None


def as_source(value: object) -> dict | None:
    return value if isinstance(value, dict) else None


def upgrade_cache(path: str, dataset_dir: str, cache: RecordsCache) -> None:
    """Rewrite a cache of an earlier version of this toolkit (relative rows, which CoOp's readers cannot read) in
    CoOp's format with the same lists and source; other formats are left as they are."""
    if cache.format == ROWS_FORMAT:
        save_records_cache(path, dataset_dir, cache.splits, cache.source)
        print(f"Rewrote {path} in CoOp's cache format (same lists), so CoOp-family checkouts can read it")


def reroot(path: str, root: str, dataset_dir: str) -> str:
    """``path``, written under the dataset folder ``root``, moved under ``dataset_dir`` (by folder name when it is
    not under ``root``)."""
    if root and osp.normpath(root) != osp.normpath(dataset_dir):
        prefix = osp.join(root, "")
        if path.startswith(prefix):
            return osp.join(dataset_dir, *re.split(r"[\\/]", path[len(prefix) :]))
        return rebase_path(path, dataset_dir)
    return path


def load_records_cache(path: str, dataset_dir: str) -> dict[str, list[Record]]:
    """The record lists of a cache (``read_records_cache`` without its source)."""
    return read_records_cache(path, dataset_dir).splits


def rebase_path(path: str, dataset_dir: str) -> str:
    """Move an absolute path from an old cache under ``dataset_dir`` by the last occurrence of its folder name."""
    name = osp.basename(osp.normpath(dataset_dir))
    parts = re.split(r"[\\/]", path)
    folders = parts[:-1]
    if name not in folders:
        return path
    index = len(folders) - 1 - folders[::-1].index(name)
    return osp.join(dataset_dir, *parts[index + 1 :])


def sample_per_class(items: Sequence, num_shots: int, rng: random.Random) -> list:
    """``rng.sample`` of ``num_shots`` items per class (labels in order of first appearance); small classes keep all."""
    sampled = []
    for group in group_by_label(items).values():
        sampled.extend(rng.sample(group, num_shots) if len(group) >= num_shots else group)
    return sampled


def require_valid_num_shots(num_shots: int) -> None:
    """``DATASET.NUM_SHOTS`` is a positive count of training images per class, or -1 for all of them."""
    if num_shots == 0 or num_shots < -1:
        raise ValueError(
            f"DATASET.NUM_SHOTS must be a number of training images per class (1 or more) or -1 for all of them, "
            f"got {num_shots}."
        )


def check_shots_fit(num_shots: int, train: Sequence[Record]) -> None:
    """Refuse ``num_shots`` above every class's size (the run would be labelled K-shot but use fewer images); warn
    about the classes it exceeds, which keep all their images as in CoOp."""
    require_valid_num_shots(num_shots)
    sizes = {label: len(items) for label, items in group_by_label(train).items()}
    if not sizes or num_shots == -1:
        return
    largest = max(sizes.values())
    if num_shots > largest:
        raise ValueError(
            f"DATASET.NUM_SHOTS {num_shots} is more than any class holds: the largest class has {largest} training "
            f"images, so the run would use fewer images than its {num_shots}-shot label says. "
            f"Use DATASET.NUM_SHOTS {largest} or less, or -1 for all images."
        )
    names = {item.label: item.classname for item in train}
    short = [f"{names[label]} ({size})" for label, size in sizes.items() if size < num_shots]
    if short:
        shown = ", ".join(short[:10]) + (f" and {len(short) - 10} more" if len(short) > 10 else "")
        print(
            f"Warning: DATASET.NUM_SHOTS {num_shots} exceeds the training images of {len(short)} of {len(sizes)} "
            f"classes; they keep all of theirs: {shown}"
        )


def records_digest(dataset_dir: str, splits: dict[str, Sequence[Record] | None]) -> str:
    """SHA-256 of the lists' ordered rows ``[path relative to dataset_dir, label, classname]`` (None stays None)."""
    rows = {
        key: None
        if records is None
        else [[relative_path(r.impath, dataset_dir), int(r.label), r.classname] for r in records]
        for key, records in splits.items()
    }
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fewshot_subsets(
    cache_path: str,
    dataset_dir: str,
    num_shots: int,
    seed: int,
    train: Sequence[Record],
    val: Sequence[Record] | None = None,
    split_file: str | None = None,
) -> tuple[list[Record], list[Record] | None]:
    """The few-shot train (``num_shots`` per class) and val (``min(num_shots, 4)``) subsets, cached at ``cache_path``.

    Sampling uses its own ``random.Random(seed)``, train first and then val, so unrelated RNG draws never change
    the subset. CoOp seeds the global RNG with the same seed and draws nothing before sampling, so for the same
    split this gives CoOp's subsets. ``seed < 0`` samples unseeded (the cache name then says ``seed_-1``, as in
    CoOp). With ``val=None`` only train is sampled and cached (ImageNet).

    The cache records a digest of the train and val lists it was sampled from (and the checksum of ``split_file``,
    the split file they were read from, if any); when the lists change it is sampled again and replaced. A cache
    without that record (CoOp's and BlackVIP's ``Datum`` pickles, or written by an earlier version of this project)
    is used only if each of its items is in the current lists with the same label; otherwise it is refused, not
    overwritten, since other checkouts may share the file and the runs that used it should stay explainable.
    """
    check_shots_fit(num_shots, train)
    source = {
        "records": records_digest(dataset_dir, {"train": train, "val": val}),
        "split_file": osp.basename(split_file) if split_file else None,
        "split_sha256": file_sha256(split_file) if split_file else None,
        "num_shots": num_shots,
        "seed": seed,
    }
    if osp.exists(cache_path):
        cache = read_records_cache(cache_path, dataset_dir)
        data = cache.splits
        if "train" not in data or (val is not None and "val" not in data):
            raise RuntimeError(f'The cache "{cache_path}" lacks a train or val list. Delete it to rebuild it.')
        if cache.source is None:
            require_members(cache_path, dataset_dir, data, train, val)
        if cache.source is None or cache.source.get("records") == source["records"]:
            print(f"Loading few-shot subset from {cache_path}")
            upgrade_cache(cache_path, dataset_dir, cache)
            return data["train"], (data["val"] if val is not None else None)
        print(f"Rebuilding {cache_path}: {staleness(cache.source, source)}")
    else:
        print(f"Creating a {num_shots}-shot subset")
    rng = random.Random(seed) if seed >= 0 else random.Random()
    fewshot_train = sample_per_class(train, num_shots, rng)
    splits = {"train": fewshot_train}
    fewshot_val = None
    if val is not None:
        fewshot_val = sample_per_class(val, min(num_shots, 4), rng)
        splits["val"] = fewshot_val
    save_records_cache(cache_path, dataset_dir, splits, source)
    print(f"Saved few-shot subset to {cache_path}")
    return fewshot_train, fewshot_val


def staleness(cached: dict, current: dict) -> str:
    """Why a cache with a recorded source no longer matches the lists it would be sampled from now."""
    if current["split_sha256"] and cached.get("split_sha256") not in (None, current["split_sha256"]):
        return f"the source split changed ({current['split_file']} differs from the one it was sampled from)"
    return "the source split changed (the train/val lists it was sampled from differ from the current ones)"


def require_members(
    cache_path: str,
    dataset_dir: str,
    cached: dict[str, list[Record]],
    train: Sequence[Record],
    val: Sequence[Record] | None,
) -> None:
    """Refuse a cache without a recorded source unless every cached train (and val) item is in the current list."""
    lists = {"train": train} if val is None else {"train": train, "val": val}
    for key, records in lists.items():
        current = {relative_path(r.impath, dataset_dir): int(r.label) for r in records}
        strays = [r for r in cached[key] if current.get(relative_path(r.impath, dataset_dir)) != int(r.label)]
        if strays:
            first = strays[0]
            raise RuntimeError(
                f'The few-shot cache "{cache_path}" does not match the current split: {len(strays)} of its '
                f"{len(cached[key])} {key} items are not in the current {key} list with the same label (first: "
                f'"{first.impath}", label {first.label}). It records no source (written by CoOp, BlackVIP or an '
                "earlier version of this project), so it is left as it is: delete it and the subset is sampled "
                "again from the current split on the next run."
            )


def fewshot_cache_path(dataset_dir: str, num_shots: int, seed: int, folder: str = "split_fewshot") -> str:
    """``<dataset_dir>/<folder>/shot_{K}-seed_{S}.pkl`` (CoOp's name)."""
    return osp.join(dataset_dir, folder, f"shot_{num_shots}-seed_{seed}.pkl")
