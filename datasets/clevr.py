"""CLEVR counting: the class is the number of objects in the scene (8 classes, "3".."10")."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY
from dassl.utils import read_json

from .catalog import DatasetInfo
from .layouts import Layout, Need, blackvip_split
from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, split_trainval

ARCHIVE = "CLEVR_v1.0.zip from https://dl.fbaipublicfiles.com/clevr/CLEVR_v1.0.zip; extract it into DATA"
LAYOUT = Layout(
    "CLEVR",
    "CLEVR_v1.0",
    tuple(Need(path, f"{ARCHIVE} (it creates CLEVR_v1.0/)") for path in ("images/train/", "images/val/")),
    blackvip_split("CLEVR"),
    tuple(Need(f"scenes/CLEVR_{split}_scenes.json", "CLEVR_v1.0.zip (see images/)") for split in ("train", "val")),
    created_split="split_CLEVR.json",
)


@DATASET_REGISTRY.register()
class CLEVR(SplitDataset):
    """``CLEVR_v1.0/images/{train,val}/``; labels follow the lexicographic order of the counts, so "10" is label 0.

    Without the published split, train/val is an 80/20 per-class split of the train scenes and test is the val scenes.
    """

    info = DatasetInfo(
        name="CLEVR",
        config="clevr",
        label="CLEVR",
        template="This is a photo of {} objects",
        group="transfer",
        layout=LAYOUT,
        paper_column=12,
    )
    image_subdir = "images"

    def build_split(self):
        scenes = {split: self.read_scenes(split) for split in ("train", "val")}
        classnames = sorted({count for pairs in scenes.values() for _, count in pairs})
        labels = {name: label for label, name in enumerate(classnames)}
        trainval, test = (
            [Record(osp.join(self.image_dir, split, image), labels[count], count) for image, count in scenes[split]]
            for split in ("train", "val")
        )
        train, val = split_trainval(trainval, p_val=0.2, rng=created_split_rng())
        return train, val, test

    def read_scenes(self, split: str) -> list[tuple[str, str]]:
        """(image file name, object count as a string) for every scene of ``scenes/CLEVR_<split>_scenes.json``."""
        scenes = read_json(osp.join(self.dataset_dir, "scenes", f"CLEVR_{split}_scenes.json"))["scenes"]
        return [(scene["image_filename"], str(len(scene["objects"]))) for scene in scenes]
