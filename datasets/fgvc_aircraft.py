"""FGVC-Aircraft: 100 aircraft variants, read from the dataset's own list files (there is no split JSON)."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import VGG, Layout, Need
from .split_dataset import SplitDataset
from .splits import Record, read_text_lines

ARCHIVE = (
    f"fgvc-aircraft-2013b.tar.gz from {VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz; "
    "keep its data/ folder and rename it to fgvc_aircraft/"
)
LAYOUT = Layout(
    "FGVCAircraft",
    "fgvc_aircraft",
    tuple(
        Need(path, ARCHIVE)
        for path in (
            "images/",
            "variants.txt",
            "images_variant_train.txt",
            "images_variant_val.txt",
            "images_variant_test.txt",
        )
    ),
)


@DATASET_REGISTRY.register()
class FGVCAircraft(SplitDataset):
    """``fgvc_aircraft/images/<id>.jpg``; labels follow ``variants.txt``, splits ``images_variant_<split>.txt``."""

    info = DatasetInfo(
        name="FGVCAircraft",
        config="fgvc_aircraft",
        label="Aircraft",
        template="a photo of a {}, a type of aircraft.",
        group="transfer",
        layout=LAYOUT,
        paper_column=6,
    )
    image_subdir = "images"

    def build_split(self):
        classnames = read_text_lines(osp.join(self.dataset_dir, "variants.txt"))
        labels = {name: label for label, name in enumerate(classnames)}
        return tuple(
            self.read_variant_list(f"images_variant_{split}.txt", labels) for split in ("train", "val", "test")
        )

    def read_variant_list(self, name: str, labels: dict[str, int]) -> list[Record]:
        """Lines ``<image id> <variant name, may contain spaces>``."""
        path = osp.join(self.dataset_dir, name)
        records = []
        for line in read_text_lines(path):
            image_id, _, variant = line.partition(" ")
            if variant not in labels:
                raise ValueError(f'{path}: variant "{variant}" is not listed in variants.txt')
            records.append(Record(osp.join(self.image_dir, f"{image_id}.jpg"), labels[variant], variant))
        return records
