"""NWPU-RESISC45: 45 remote-sensing scene classes."""

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records


@DATASET_REGISTRY.register()
class Resisc45(SplitDataset):
    """``resisc45/NWPU-RESISC45/<class>/``; the published fixed split, or 50/20/30 per class."""

    dataset_dir = "resisc45"
    image_subdir = "NWPU-RESISC45"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
