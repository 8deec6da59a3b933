"""Food-101: 101 dishes."""

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records


@DATASET_REGISTRY.register()
class Food101(SplitDataset):
    """``food-101/images/<dish>/``; CoOp's fixed split (not the official meta/ split), or 50/20/30 per class."""

    dataset_dir = "food-101"
    image_subdir = "images"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
