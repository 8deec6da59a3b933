"""Oxford-IIIT Pets: 37 cat and dog breeds; also the home of CoOp's shared split helpers."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import VGG, Layout, Need, coop_split
from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, read_text_lines, split_trainval

ANNOTATIONS = f"annotations.tar.gz from {VGG}/pets/data/annotations.tar.gz"
LAYOUT = Layout(
    "OxfordPets",
    "oxford_pets",
    (Need("images/", f"images.tar.gz from {VGG}/pets/data/images.tar.gz; extract it into oxford_pets/"),),
    coop_split("OxfordPets", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
    (Need("annotations/trainval.txt", ANNOTATIONS), Need("annotations/test.txt", ANNOTATIONS)),
    created_split="split_OxfordPets.json",
)


@DATASET_REGISTRY.register()
class OxfordPets(SplitDataset):
    """``oxford_pets/images/<Breed>_<n>.jpg``; class names are the lower-cased breed (``american_bulldog``)."""

    info = DatasetInfo(
        name="OxfordPets",
        config="oxford_pets",
        label="Pets",
        template="a photo of a {}, a type of pet.",
        group="transfer",
        layout=LAYOUT,
        paper_column=2,
    )
    image_subdir = "images"

    def build_split(self):
        trainval = self.read_annotations("trainval.txt")
        test = self.read_annotations("test.txt")
        train, val = split_trainval(trainval, p_val=0.2, rng=created_split_rng())
        return train, val, test

    def read_annotations(self, name: str) -> list[Record]:
        """Lines ``<image> <class id (1-based)> <species> <breed id>`` of ``annotations/<name>``."""
        records = []
        for line in read_text_lines(osp.join(self.dataset_dir, "annotations", name)):
            if line.startswith("#"):
                continue
            image, class_id = line.split()[:2]
            breed = image.rsplit("_", 1)[0].lower()
            records.append(Record(osp.join(self.image_dir, f"{image}.jpg"), int(class_id) - 1, breed))
        return records
