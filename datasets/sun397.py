"""SUN397: 397 scene categories, named by their folder words in reverse ("b/bakery/shop" -> "shop bakery")."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, read_text_lines, split_trainval


def sun397_classname(folder: str) -> str:
    """Drop the leading letter folder, reverse the rest and join with spaces."""
    return " ".join(folder.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(SplitDataset):
    """``sun397/SUN397/<letter>/<scene>[/<sub>]/*.jpg``; CoOp's fixed split, or partition 01 with 20% val."""

    dataset_dir = "sun397"
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
