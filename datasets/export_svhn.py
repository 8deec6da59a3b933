"""Export SVHN (torchvision's ``train_32x32.mat``, ``test_32x32.mat``) to ``DATA/svhn/{train,test}/<digit>/*.jpg``.

Files are numbered from 00001 in dataset order per split (the names the published split file refers to);
torchvision's label 10 is the digit 0. Each split folder is replaced whole and records its source in
``generator.json``.

    python -m datasets.export_svhn --root DATA [--download | --svhn-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
from collections import Counter

import numpy as np
from PIL import Image

from .generation import print_summary, staged_folder
from .svhn import GENERATOR, GENERATOR_VERSION

MAT_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def load_svhn_mat(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` uint8 and digits ``(N,)`` from an SVHN ``.mat`` file (label 10 -> 0)."""
    from scipy.io import loadmat

    mat = loadmat(path)
    images = np.ascontiguousarray(np.transpose(mat["X"], (3, 0, 1, 2)))
    labels = mat["y"].reshape(-1).astype(np.int64) % 10
    return images, labels


def find_or_download(svhn_dir: str, download: bool) -> dict[str, str]:
    """Paths of both ``.mat`` files in ``svhn_dir``, fetched with torchvision only when ``download`` is set."""
    paths = {split: osp.join(svhn_dir, name) for split, name in MAT_FILES.items()}
    missing = [p for p in paths.values() if not osp.isfile(p)]
    if missing and download:
        from torchvision.datasets import SVHN

        for split in MAT_FILES:
            SVHN(svhn_dir, split=split, download=True)
        missing = [p for p in paths.values() if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"Missing {', '.join(missing)}. Add --download to fetch SVHN with torchvision, "
            "or point --svhn-dir at the folder that holds train_32x32.mat and test_32x32.mat."
        )
    return paths


def export_split(images: np.ndarray, labels: np.ndarray, out_dir: str, desc: str) -> Counter:
    """Write ``out_dir/<digit>/<index:05d>.jpg`` (index from 1); returns images per digit."""
    from tqdm import tqdm

    for digit in range(10):
        os.makedirs(osp.join(out_dir, str(digit)), exist_ok=True)
    counts: Counter = Counter()
    for index in tqdm(range(len(labels)), desc=desc, unit="img"):
        digit = int(labels[index])
        Image.fromarray(images[index]).save(osp.join(out_dir, str(digit), f"{index + 1:05d}.jpg"))
        counts[digit] += 1
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.export_svhn",
        description=__doc__.rsplit("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", required=True, help="data root (DATASET.ROOT); output goes to ROOT/svhn")
    parser.add_argument(
        "--svhn-dir", help="folder holding train_32x32.mat and test_32x32.mat (default: ROOT/svhn_source)"
    )
    parser.add_argument("--download", action="store_true", help="download the .mat files with torchvision when missing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = osp.abspath(args.root)
    svhn_dir = args.svhn_dir or osp.join(root, "svhn_source")
    try:
        paths = find_or_download(svhn_dir, args.download)
    except FileNotFoundError as e:
        raise SystemExit(f"error: {e}") from None
    output = osp.join(root, "svhn")
    counts = {}
    for split, path in paths.items():
        images, labels = load_svhn_mat(path)
        params = {"split": split, "source": osp.abspath(path), "source_bytes": osp.getsize(path)}
        with staged_folder(osp.join(output, split), GENERATOR, GENERATOR_VERSION, params) as staging:
            counts[split] = export_split(images, labels, staging, desc=split)
    print_summary("SVHN export (images per digit)", counts, output, svhn_dir)
    print(
        "Add the published split_mlai_SVHN.json to the output folder for the paper's train/val split "
        "(python -m datasets.prepare SVHN shows where to get it)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
