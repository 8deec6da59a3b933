"""SVHN digits, exported to JPG folders by ``python -m datasets.export_svhn``."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, blackvip_split
from .manifests import Generated
from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_records, split_trainval

GENERATOR = "datasets.export_svhn"
GENERATOR_VERSION = 1
"""Bumped when the export of the same files changes, so folders made by an older exporter are flagged."""
EXPORT = f"python -m {GENERATOR} --root DATA --download"
LAYOUT = Layout(
    "SVHN",
    "svhn",
    (
        Need("train/", f"{EXPORT} (or --svhn-dir DIR holding torchvision's train_32x32.mat and test_32x32.mat)"),
        Need("test/", f"{EXPORT} (see train/)"),
    ),
    blackvip_split("SVHN"),
    created_split="split_SVHN.json",
    generated=tuple(
        Generated(split, GENERATOR, GENERATOR_VERSION, (("split", split),), EXPORT) for split in ("train", "test")
    ),
)


@DATASET_REGISTRY.register()
class SVHN(SplitDataset):
    """``svhn/{train,test}/<digit>/<index>.jpg``, classes ``"0"``..``"9"``.

    Train/val come from the published ``split_mlai_SVHN.json``, else from ``split_SVHN.json``, else from a
    seeded 70/30 per-class split of ``train/`` saved as ``split_SVHN.json``. Test is all of ``test/`` in sorted order.
    """

    info = DatasetInfo(
        name="SVHN",
        config="svhn",
        label="SVHN",
        template="This is a photo of a {}",
        group="transfer",
        layout=LAYOUT,
        paper_column=9,
    )
    image_subdir = "train"

    def load_records(self, cfg):
        train, val, _ = super().load_records(cfg)
        return train, val, folder_records(osp.join(self.dataset_dir, "test"))

    def build_split(self):
        train, val = split_trainval(folder_records(self.image_dir), p_val=0.3, rng=created_split_rng())
        return train, val, []
