"""Colour-Biased MNIST: background colour correlates with the digit (``make_colour_biased_mnist`` generates it)."""

from __future__ import annotations

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .caches import fewshot_cache_path
from .layouts import Layout, colour_biased_layout
from .split_dataset import SplitDataset
from .splits import folder_records


@DATASET_REGISTRY.register()
class ColourBiasedMNIST(SplitDataset):
    """Train from ``images_rho={TRAIN_RHO}_.../train``, test from ``images_rho={TEST_RHO}_.../test``.

    With ``USE_TEST_AS_VAL`` the test images also serve as validation; otherwise there is no validation set.
    Few-shot caches are kept per setting (val, rhos, confusing labels, randomize) so settings never share one.
    """

    dataset_dir = "colour_biased_mnist"

    @classmethod
    def get_layout(cls, cfg) -> Layout:
        c = cfg.DATASET.COLOUR_BIASED_MNIST
        root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        return colour_biased_layout(
            root, c.TRAIN_RHO, c.TEST_RHO, c.TRAIN_N_CONFUSING_LABELS, c.TEST_N_CONFUSING_LABELS, c.RANDOMIZE
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
