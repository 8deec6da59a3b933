"""Describable Textures (DTD): 47 texture attributes."""

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import VGG, Layout, Need, coop_split
from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records

LAYOUT = Layout(
    "DescribableTextures",
    "dtd",
    (
        Need(
            "images/",
            f"dtd-r1.0.1.tar.gz from {VGG}/dtd/download/dtd-r1.0.1.tar.gz; extract it into DATA (it creates dtd/)",
        ),
    ),
    coop_split("DescribableTextures", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
    created_split="split_DescribableTextures.json",
)


@DATASET_REGISTRY.register()
class DescribableTextures(SplitDataset):
    """``dtd/images/<texture>/``; CoOp's fixed split, or 50/20/30 per class (``read_and_split_data``)."""

    info = DatasetInfo(
        name="DescribableTextures",
        config="dtd",
        label="DTD",
        template="{} texture.",
        group="transfer",
        layout=LAYOUT,
        paper_column=8,
    )
    image_subdir = "images"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
