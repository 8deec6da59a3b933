"""SUN397: 397 scene categories, named by their folder words in reverse ("b/bakery/shop" -> "shop bakery")."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, coop_split
from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, read_text_lines, split_trainval

PARTITIONS = (
    "Partitions.zip from https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip; "
    "extract it into sun397/"
)
LAYOUT = Layout(
    "SUN397",
    "sun397",
    (
        Need(
            "SUN397/",
            "SUN397.tar.gz from http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz "
            "(the Princeton links may be offline); extract it into sun397/",
        ),
    ),
    coop_split("SUN397", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
    tuple(Need(name, PARTITIONS) for name in ("ClassName.txt", "Training_01.txt", "Testing_01.txt")),
    created_split="split_SUN397.json",
)


def sun397_classname(folder: str) -> str:
    """Drop the leading letter folder, reverse the rest and join with spaces."""
    return " ".join(folder.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(SplitDataset):
    """``sun397/SUN397/<letter>/<scene>[/<sub>]/*.jpg``; CoOp's fixed split, or partition 01 with 20% val."""

    info = DatasetInfo(
        name="SUN397",
        config="sun397",
        label="SUN",
        template="a photo of a {}.",
        group="transfer",
        layout=LAYOUT,
        paper_column=7,
    )
    image_subdir = "SUN397"

    def build_split(self):
        folders = [line.lstrip("/") for line in read_text_lines(osp.join(self.dataset_dir, "ClassName.txt"))]
        labels = {folder: label for label, folder in enumerate(folders)}
        trainval = self.read_partition("Training_01.txt", labels)
        test = self.read_partition("Testing_01.txt", labels)
        train, val = split_trainval(trainval, p_val=0.2, rng=created_split_rng())
        return train, val, test

    def read_partition(self, name: str, labels: dict[str, int]) -> list[Record]:
        """Lines ``/<letter>/<scene>/.../<image>.jpg``."""
        records = []
        for line in read_text_lines(osp.join(self.dataset_dir, name)):
            relpath = line.lstrip("/")
            folder = osp.dirname(relpath)
            records.append(Record(osp.join(self.image_dir, relpath), labels[folder], sun397_classname(folder)))
        return records
