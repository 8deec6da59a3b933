"""Oxford Flowers-102: 102 flower species, names from ``cat_to_name.json``."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY
from dassl.utils import read_json

from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, split_three_ways


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitDataset):
    """``oxford_flowers/jpg/image_NNNNN.jpg``; CoOp's fixed split, or 50/20/30 per class from ``imagelabels.mat``."""

    dataset_dir = "oxford_flowers"
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
