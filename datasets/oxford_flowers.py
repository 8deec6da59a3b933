"""Oxford Flowers-102: 102 flower species, names from ``cat_to_name.json``."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY
from dassl.utils import read_json

from .catalog import DatasetInfo
from .layouts import VGG, Layout, Need, coop_split, gdrive
from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, split_three_ways

LAYOUT = Layout(
    "OxfordFlowers",
    "oxford_flowers",
    (Need("jpg/", f"102flowers.tgz from {VGG}/flowers/102/102flowers.tgz; extract it into oxford_flowers/"),),
    coop_split("OxfordFlowers", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
    (
        Need("imagelabels.mat", f"{VGG}/flowers/102/imagelabels.mat"),
        Need("cat_to_name.json", gdrive("1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0")),
    ),
    created_split="split_OxfordFlowers.json",
)


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitDataset):
    """``oxford_flowers/jpg/image_NNNNN.jpg``; CoOp's fixed split, or 50/20/30 per class from ``imagelabels.mat``."""

    info = DatasetInfo(
        name="OxfordFlowers",
        config="oxford_flowers",
        label="Flowers",
        template="a photo of a {}, a type of flower.",
        group="transfer",
        layout=LAYOUT,
        paper_column=4,
    )
    image_subdir = "jpg"

    def build_split(self):
        from scipy.io import loadmat

        labels = loadmat(osp.join(self.dataset_dir, "imagelabels.mat"))["labels"][0]
        cat_to_name = read_json(osp.join(self.dataset_dir, "cat_to_name.json"))
        records = [
            Record(osp.join(self.image_dir, f"image_{i + 1:05d}.jpg"), int(label) - 1, cat_to_name[str(label)])
            for i, label in enumerate(labels)
        ]
        return split_three_ways(records, 0.5, 0.2, created_split_rng())
