"""UCF101 (middle frame of each clip): 101 actions, CamelCase names split by underscores ("Apply_Eye_Makeup")."""

import os.path as osp
import re

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, coop_split, gdrive
from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, read_text_lines, split_trainval

SPLITS = (
    "UCF101TrainTestSplits-RecognitionTask.zip from https://www.crcv.ucf.edu/data/UCF101.php; extract it into ucf101/"
)
LAYOUT = Layout(
    "UCF101",
    "ucf101",
    (
        Need(
            "UCF-101-midframes/",
            f"UCF-101-midframes.zip from {gdrive('10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O')}; extract it into ucf101/",
        ),
    ),
    coop_split("UCF101", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
    tuple(Need(f"ucfTrainTestlist/{name}", SPLITS) for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt")),
    created_split="split_UCF101.json",
)


def ucf101_classname(action: str) -> str:
    """Split a CamelCase action at capitals and join with underscores (the midframes folder name)."""
    return "_".join(re.findall(r"[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(SplitDataset):
    """``ucf101/UCF-101-midframes/<Action_Name>/<clip>.jpg``; CoOp's fixed split, or split list 01 with 20% val."""

    info = DatasetInfo(
        name="UCF101",
        config="ucf101",
        label="UCF",
        template="a photo of a person doing {}.",
        group="transfer",
        layout=LAYOUT,
        paper_column=13,
    )
    image_subdir = "UCF-101-midframes"

    def build_split(self):
        labels = {}
        for line in read_text_lines(osp.join(self.dataset_dir, "ucfTrainTestlist", "classInd.txt")):
            index, action = line.split()
            labels[action] = int(index) - 1
        trainval = self.read_list("trainlist01.txt", labels)
        test = self.read_list("testlist01.txt", labels)
        train, val = split_trainval(trainval, p_val=0.2, rng=created_split_rng())
        return train, val, test

    def read_list(self, name: str, labels: dict[str, int]) -> list[Record]:
        """Lines ``<Action>/<clip>.avi [label]``; each clip maps to its middle frame ``<Action_Name>/<clip>.jpg``."""
        records = []
        for line in read_text_lines(osp.join(self.dataset_dir, "ucfTrainTestlist", name)):
            action, clip = line.split()[0].split("/")
            folder = ucf101_classname(action)
            frame = osp.splitext(clip)[0] + ".jpg"
            records.append(Record(osp.join(self.image_dir, folder, frame), labels[action], folder))
        return records
