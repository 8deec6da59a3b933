"""Few-shot subsets and their cache files (also ImageNet's ``preprocessed.pkl``).

New caches hold plain rows with paths relative to the dataset folder, so a moved data root still works.
Old caches (pickled ``Datum`` objects with absolute paths, as CoOp and BlackVIP wrote them) still load:
their paths are re-rooted at the current dataset folder.
"""

from __future__ import annotations

import copyreg
import os.path as osp
import pickle
import random
import re
from collections.abc import Sequence

from dassl.data.datasets import Datum
from dassl.utils import atomic_write

from .splits import Record, group_by_label, relative_path

CACHE_FORMAT = "relative-records-1"

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


def save_records_cache(path: str, dataset_dir: str, splits: dict[str, Sequence[Record]]) -> None:
    """Pickle record lists (atomically) as rows ``[path relative to dataset_dir, label, classname]``."""
    data: dict = {"format": CACHE_FORMAT}
    for key, records in splits.items():
        data[key] = [[relative_path(r.impath, dataset_dir), int(r.label), r.classname] for r in records]
    with atomic_write(path, "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_records_cache(path: str, dataset_dir: str) -> dict[str, list[Record]]:
    """Read a cache written by ``save_records_cache`` or an old ``Datum`` pickle; paths become absolute."""
    try:
        with open(path, "rb") as f:
            data = CacheUnpickler(f).load()
        if not isinstance(data, dict):
            raise pickle.UnpicklingError(f"expected a dict, found {type(data).__name__}")
        if data.get("format") == CACHE_FORMAT:
            return {
                key: [Record(osp.join(dataset_dir, *p.split("/")), int(y), c) for p, y, c in rows]
                for key, rows in data.items()
                if key != "format"
            }
        return {
            key: [Record(rebase_path(d.impath, dataset_dir), int(d.label), d.classname) for d in items]
            for key, items in data.items()
        }
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
        raise RuntimeError(
            f'Cannot read the cache "{path}" ({e}). Delete it and it is rebuilt on the next run.'
        ) from None


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


def fewshot_subsets(
    cache_path: str,
    dataset_dir: str,
    num_shots: int,
    seed: int,
    train: Sequence[Record],
    val: Sequence[Record] | None = None,
) -> tuple[list[Record], list[Record] | None]:
    """The few-shot train (``num_shots`` per class) and val (``min(num_shots, 4)``) subsets, cached at ``cache_path``.

    Sampling uses its own ``random.Random(seed)``, train first and then val, so unrelated RNG draws never change
    the subset. CoOp seeds the global RNG with the same seed and draws nothing before sampling, so for the same
    split this gives CoOp's subsets. ``seed < 0`` samples unseeded (the cache name then says ``seed_-1``, as in
    CoOp). With ``val=None`` only train is sampled and cached (ImageNet).
    """
    if osp.exists(cache_path):
        print(f"Loading few-shot subset from {cache_path}")
        data = load_records_cache(cache_path, dataset_dir)
        if "train" not in data or (val is not None and "val" not in data):
            raise RuntimeError(f'The cache "{cache_path}" lacks a train or val list. Delete it to rebuild it.')
        return data["train"], (data["val"] if val is not None else None)
    print(f"Creating a {num_shots}-shot subset")
    rng = random.Random(seed) if seed >= 0 else random.Random()
    fewshot_train = sample_per_class(train, num_shots, rng)
    splits = {"train": fewshot_train}
    fewshot_val = None
    if val is not None:
        fewshot_val = sample_per_class(val, min(num_shots, 4), rng)
        splits["val"] = fewshot_val
    save_records_cache(cache_path, dataset_dir, splits)
    print(f"Saved few-shot subset to {cache_path}")
    return fewshot_train, fewshot_val


def fewshot_cache_path(dataset_dir: str, num_shots: int, seed: int, folder: str = "split_fewshot") -> str:
    """``<dataset_dir>/<folder>/shot_{K}-seed_{S}.pkl`` (CoOp's name)."""
    return osp.join(dataset_dir, folder, f"shot_{num_shots}-seed_{seed}.pkl")
