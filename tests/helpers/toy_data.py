"""Tiny on-disk image datasets in CoOp's layout (image folder + ``split_zhou_<Name>.json``) for tests."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image


def make_images(folder: str, classnames: list[str], per_class: int, size: int = 16, seed: int = 0) -> list[list]:
    """Write ``per_class`` small PNGs per class (class-dependent colour + noise); returns [relpath, label, name] rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(classnames):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        base = np.array([(label * 67) % 256, (label * 131) % 256, (label * 29) % 256], dtype=np.float64)
        for i in range(per_class):
            pixels = np.clip(base + rng.normal(0, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
            rel = f"{name}/{name}_{i:03d}.png"
            Image.fromarray(pixels).save(os.path.join(folder, rel))
            rows.append([rel, label, name])
    return rows


def make_coop_dataset(
    root: str,
    dataset_dir: str,
    split_name: str,
    classnames: list[str],
    n_train: int = 6,
    n_val: int = 3,
    n_test: int = 4,
    size: int = 16,
) -> str:
    """Create ``root/dataset_dir/images/...`` and the split json; returns the dataset folder."""
    ddir = os.path.join(root, dataset_dir)
    rows = make_images(os.path.join(ddir, "images"), classnames, n_train + n_val + n_test, size=size)
    split = {"train": [], "val": [], "test": []}
    per_class = n_train + n_val + n_test
    for i, row in enumerate(rows):
        k = i % per_class
        split["train" if k < n_train else "val" if k < n_train + n_val else "test"].append(row)
    with open(os.path.join(ddir, split_name), "w") as f:
        json.dump(split, f, indent=4)
    return ddir
