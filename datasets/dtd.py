"""Describable Textures (DTD): 47 texture attributes."""

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records


@DATASET_REGISTRY.register()
class DescribableTextures(SplitDataset):
    """``dtd/images/<texture>/``; CoOp's fixed split, or 50/20/30 per class (``read_and_split_data``)."""

    dataset_dir = "dtd"
    image_subdir = "images"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
