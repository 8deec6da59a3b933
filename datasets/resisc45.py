"""NWPU-RESISC45: 45 remote-sensing scene classes."""

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import BLACKVIP_README, Layout, Need, blackvip_split
from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records

LAYOUT = Layout(
    "Resisc45",
    "resisc45",
    (
        Need(
            "NWPU-RESISC45/",
            f"NWPU-RESISC45.rar (OneDrive link in {BLACKVIP_README}; also listed at "
            "https://www.tensorflow.org/datasets/catalog/resisc45); extract it into resisc45/",
        ),
    ),
    blackvip_split("Resisc45"),
    created_split="split_Resisc45.json",
)


@DATASET_REGISTRY.register()
class Resisc45(SplitDataset):
    """``resisc45/NWPU-RESISC45/<class>/``; the published fixed split, or 50/20/30 per class."""

    info = DatasetInfo(
        name="Resisc45",
        config="resisc45",
        label="Resisc",
        template="This is a photo of a {}",
        group="transfer",
        layout=LAYOUT,
        paper_column=11,
    )
    image_subdir = "NWPU-RESISC45"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
