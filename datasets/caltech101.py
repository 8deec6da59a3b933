"""Caltech-101: 100 object categories (the background and easy-faces folders are left out)."""

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, coop_split
from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}

LAYOUT = Layout(
    "Caltech101",
    "caltech-101",
    (
        Need(
            "101_ObjectCategories/",
            "101_ObjectCategories.tar.gz from https://data.caltech.edu/records/mzrjq-6wc02 "
            "(formerly http://www.vision.caltech.edu/Image_Datasets/Caltech101/); extract it into caltech-101/",
        ),
    ),
    coop_split("Caltech101", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
    created_split="split_Caltech101.json",
)


@DATASET_REGISTRY.register()
class Caltech101(SplitDataset):
    """``caltech-101/101_ObjectCategories/<class>/``; CoOp's fixed split, or 50/20/30 per class."""

    info = DatasetInfo(
        name="Caltech101",
        config="caltech101",
        label="Caltech",
        template="a photo of a {}.",
        group="transfer",
        layout=LAYOUT,
        paper_column=1,
    )
    image_subdir = "101_ObjectCategories"

    def build_split(self):
        return folder_split_records(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES, rng=created_split_rng())
