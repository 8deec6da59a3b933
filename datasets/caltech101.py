"""Caltech-101: 100 object categories (the background and easy-faces folders are left out)."""

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitDataset):
    """``caltech-101/101_ObjectCategories/<class>/``; CoOp's fixed split, or 50/20/30 per class."""

    dataset_dir = "caltech-101"
    image_subdir = "101_ObjectCategories"

    def build_split(self):
        return folder_split_records(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES, rng=created_split_rng())
