"""Oxford-IIIT Pets: 37 cat and dog breeds; also the home of CoOp's shared split helpers."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, read_text_lines, split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(SplitDataset):
    """``oxford_pets/images/<Breed>_<n>.jpg``; class names are the lower-cased breed (``american_bulldog``)."""

    dataset_dir = "oxford_pets"
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
