"""ImageNet-1k: train from ``images/train``, test (and val) from the 50,000 ``images/val`` images."""

from __future__ import annotations

import os
import os.path as osp
from collections import OrderedDict

from dassl.data.datasets import DATASET_REGISTRY

from .caches import read_records_cache, save_records_cache, upgrade_cache
from .catalog import DatasetInfo
from .errors import not_ready
from .layouts import Layout, Need, gdrive
from .split_dataset import SplitDataset
from .splits import Record, read_text_lines

ILSVRC = "ILSVRC2012 {} images from https://image-net.org/download.php"
LAYOUT = Layout(
    "ImageNet",
    "imagenet",
    (
        Need("images/train/", f"{ILSVRC.format('train')}, one folder per wnid"),
        Need("images/val/", f"{ILSVRC.format('val')}, sorted into one folder per wnid like images/train/"),
        Need("classnames.txt", gdrive("1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF")),
    ),
)


@DATASET_REGISTRY.register()
class ImageNet(SplitDataset):
    """Labels are the sorted wnid folders, names from ``classnames.txt``; the scan is cached in ``preprocessed.pkl``.

    The few-shot cache holds train only; validation uses the test set, as in CoOp.
    """

    info = DatasetInfo(
        name="ImageNet",
        config="imagenet",
        label="ImageNet",
        template="a photo of a {}.",
        group="transfer",
        layout=LAYOUT,
        paper_column=14,
    )
    image_subdir = "images"

    def load_records(self, cfg):
        cache = osp.join(self.dataset_dir, "preprocessed.pkl")
        if osp.exists(cache):
            print(f"Loading preprocessed ImageNet lists from {cache}")
            read = read_records_cache(cache, self.dataset_dir)
            upgrade_cache(cache, self.dataset_dir, read)
            return read.splits["train"], None, read.splits["test"]
        classnames = self.read_classnames(osp.join(self.dataset_dir, "classnames.txt"))
        train = self.scan_folders(classnames, "train")
        test = self.scan_folders(classnames, "val")
        save_records_cache(cache, self.dataset_dir, {"train": train, "test": test})
        print(f"Saved preprocessed ImageNet lists to {cache}")
        return train, None, test

    @staticmethod
    def read_classnames(text_file: str) -> OrderedDict[str, str]:
        """``<wnid> <class name words>`` per line -> ordered {wnid: name}."""
        classnames = OrderedDict()
        for line in read_text_lines(text_file):
            wnid, _, name = line.partition(" ")
            classnames[wnid] = name.strip()
        return classnames

    def scan_folders(self, classnames: dict[str, str], split: str) -> list[Record]:
        """Records of ``images/<split>/<wnid>/*``, labelled by the wnid's index in sorted order."""
        split_dir = osp.join(self.image_dir, split)
        folders = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
        unknown = [wnid for wnid in folders if wnid not in classnames]
        if unknown:
            raise not_ready(self.layout, self.root, f"classnames.txt has no entry for {', '.join(unknown[:5])}")
        records = []
        for label, wnid in enumerate(folders):
            folder = osp.join(split_dir, wnid)
            records += [
                Record(osp.join(folder, name), label, classnames[wnid])
                for name in sorted(n for n in os.listdir(folder) if not n.startswith("."))
            ]
        return records
