"""Colour-Biased MNIST: background colour correlates with the digit (``make_colour_biased_mnist`` generates it)."""

from __future__ import annotations

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY
from trainers.config import ConfigKey, declare_keys

from .caches import fewshot_cache_path
from .catalog import DatasetInfo, Setting
from .layouts import Layout, Need, command
from .manifests import Generated
from .mnist_source import SOURCES_HELP
from .split_dataset import SplitDataset
from .splits import folder_records

GENERATOR = "datasets.make_colour_biased_mnist"
GENERATOR_VERSION = 1
"""Bumped when the output for the same parameters changes, so folders made by an older generator are flagged."""

KEYS = declare_keys(
    "DATASET.COLOUR_BIASED_MNIST",
    ConfigKey("TRAIN_RHO", 0.8, "share (0-1) of train images whose background has their digit's colour"),
    ConfigKey("TEST_RHO", 0.2, "share (0-1) of test images whose background has their digit's colour"),
    ConfigKey("TRAIN_N_CONFUSING_LABELS", 9, "number of other digits whose colours the rest of the train images take"),
    ConfigKey("TEST_N_CONFUSING_LABELS", 9, "number of other digits whose colours the rest of the test images take"),
    ConfigKey("USE_TEST_AS_VAL", True, "validate on the test images (False: no validation set)"),
    ConfigKey(
        "RANDOMIZE", True, "read the folders coloured in shuffled order, not dataset order (train.py --randomize)"
    ),
)


def colour_biased_folder(rho: float, n_confusing_labels: int, randomize: bool) -> str:
    """``images_rho={rho}_ncl={n}_rand={True|False}``: one generated split's folder under ``colour_biased_mnist/``."""
    return f"images_rho={float(rho)}_ncl={int(n_confusing_labels)}_rand={bool(randomize)}"


def colour_biased_command(
    root: str, train_rho: float, test_rho: float, train_ncl: int = 9, test_ncl: int = 9, randomize: bool = True
) -> str:
    """The ``make_colour_biased_mnist`` command that generates the setting under ``root``."""
    words = [
        "python",
        "-m",
        GENERATOR,
        "--root",
        root,
        "--train-rho",
        float(train_rho),
        "--test-rho",
        float(test_rho),
    ]
    if train_ncl != 9 or test_ncl != 9:
        words += ["--train-n-confusing-labels", train_ncl, "--test-n-confusing-labels", test_ncl]
    words += ["--randomize" if randomize else "--no-randomize", "--download"]
    return command(*words)


def colour_biased_params(split: str, rho: float, n_confusing_labels: int, randomize: bool) -> dict:
    """The manifest parameters of one generated split folder (the generator also records its seed and source)."""
    return {
        "split": split,
        "rho": float(rho),
        "n_confusing_labels": int(n_confusing_labels),
        "randomize": bool(randomize),
    }


def colour_biased_layout(root: str, cfg) -> Layout:
    """The generated train and test folders of the setting ``cfg.DATASET.COLOUR_BIASED_MNIST`` names."""
    c = cfg.DATASET.COLOUR_BIASED_MNIST
    generator = colour_biased_command(
        root, c.TRAIN_RHO, c.TEST_RHO, c.TRAIN_N_CONFUSING_LABELS, c.TEST_N_CONFUSING_LABELS, c.RANDOMIZE
    )
    source = f"generate it: {generator}  ({SOURCES_HELP})"
    splits = (("train", c.TRAIN_RHO, c.TRAIN_N_CONFUSING_LABELS), ("test", c.TEST_RHO, c.TEST_N_CONFUSING_LABELS))
    folders = {split: f"{colour_biased_folder(rho, ncl, c.RANDOMIZE)}/{split}" for split, rho, ncl in splits}
    return Layout(
        "ColourBiasedMNIST",
        "colour_biased_mnist",
        tuple(Need(f"{folder}/", source) for folder in folders.values()),
        generator=generator,
        generator_note=SOURCES_HELP,
        generated=tuple(
            Generated(
                folders[split],
                GENERATOR,
                GENERATOR_VERSION,
                tuple(colour_biased_params(split, rho, ncl, c.RANDOMIZE).items()),
                generator,
            )
            for split, rho, ncl in splits
        ),
    )


def describe_setting(cfg) -> str:
    """``colour_biased_mnist_rho{train}_{test}``: the column of a run in a rho pair the paper does not use."""
    c = cfg.DATASET.COLOUR_BIASED_MNIST
    return f"colour_biased_mnist_rho{float(c.TRAIN_RHO):g}_{float(c.TEST_RHO):g}"


def paper_setting(name: str, train_rho: float, test_rho: float) -> Setting:
    """The paper's setting ``name`` with train and test colour correlations ``train_rho`` and ``test_rho``."""
    return Setting(
        f"colour_biased_mnist_{name}",
        f"Biased MNIST ρ={train_rho:g}",
        (("DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO", train_rho), ("DATASET.COLOUR_BIASED_MNIST.TEST_RHO", test_rho)),
    )


@DATASET_REGISTRY.register()
class ColourBiasedMNIST(SplitDataset):
    """Train from ``images_rho={TRAIN_RHO}_.../train``, test from ``images_rho={TEST_RHO}_.../test``.

    With ``USE_TEST_AS_VAL`` the test images also serve as validation; otherwise there is no validation set.
    Few-shot caches are kept per setting (val, rhos, confusing labels, randomize) so settings never share one.
    """

    info = DatasetInfo(
        name="ColourBiasedMNIST",
        config="colour_biased_mnist",
        label="Biased MNIST",
        template="This is a photo of {}",
        group="synthetic",
        settings=(paper_setting("easy", 0.8, 0.2), paper_setting("hard", 0.9, 0.1)),
        layout=colour_biased_layout,
        describe_setting=describe_setting,
        paper_column=15,
    )

    def load_records(self, cfg):
        train_need, test_need = self.layout.required
        train = folder_records(osp.join(self.dataset_dir, train_need.path))
        test = folder_records(osp.join(self.dataset_dir, test_need.path))
        val = list(test) if cfg.DATASET.COLOUR_BIASED_MNIST.USE_TEST_AS_VAL else []
        return train, val, test

    def fewshot_path(self, cfg, num_shots: int) -> str:
        c = cfg.DATASET.COLOUR_BIASED_MNIST
        folder = (
            f"split_fewshot_val={c.USE_TEST_AS_VAL}_rho={float(c.TRAIN_RHO)}_{float(c.TEST_RHO)}"
            f"_ncl={c.TRAIN_N_CONFUSING_LABELS}{c.TEST_N_CONFUSING_LABELS}_rand={c.RANDOMIZE}"
        )
        return fewshot_cache_path(self.dataset_dir, num_shots, cfg.SEED, folder)
