"""Food-101: 101 dishes."""

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, coop_split
from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records

LAYOUT = Layout(
    "Food101",
    "food-101",
    (
        Need(
            "images/",
            "food-101.tar.gz from http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz; "
            "extract it into DATA (it creates food-101/)",
        ),
    ),
    coop_split("Food101", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
    created_split="split_Food101.json",
)


@DATASET_REGISTRY.register()
class Food101(SplitDataset):
    """``food-101/images/<dish>/``; CoOp's fixed split (not the official meta/ split), or 50/20/30 per class."""

    info = DatasetInfo(
        name="Food101",
        config="food101",
        label="Food",
        template="a photo of {}, a type of food.",
        group="transfer",
        layout=LAYOUT,
        paper_column=5,
    )
    image_subdir = "images"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
