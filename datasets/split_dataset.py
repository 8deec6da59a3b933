"""``SplitDataset``: CoOp's dataset recipe (split file -> few-shot subset -> base/new classes) for every dataset."""

from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

from dassl.data.datasets import DatasetBase, Datum
from trainers.config import ConfigKey, declare_keys

from . import splits
from .caches import fewshot_cache_path, fewshot_subsets, require_valid_num_shots
from .catalog import DatasetInfo
from .errors import not_ready, require_layout
from .layouts import Layout
from .splits import Record, read_split_records, save_split, to_datums

KEYS = declare_keys(
    "DATASET",
    ConfigKey(
        "SUBSAMPLE_CLASSES",
        "all",
        "classes kept: all, base (first half of the sorted labels) or new (the rest), relabelled from 0",
        choices=("all", "base", "new"),
    ),
)


class SplitDataset(DatasetBase):
    """Train/val/test from a fixed split file, or from a split built once from the raw files and saved.

    Subclasses set ``info`` (a ``DatasetInfo`` whose layout names the folder under ``DATASET.ROOT``), ``image_subdir``
    (the folder split paths are relative to) and implement ``build_split``. The split is read in this order: the
    published split file, a split this project created earlier (``Layout.created_split``, never the published name),
    a new split from the raw files. CoOp's static helpers are attributes here so plugins can call
    ``OxfordPets.read_split`` and friends.
    """

    dataset_dir = ""
    image_subdir = ""

    read_split = staticmethod(splits.read_split)
    save_split = staticmethod(splits.save_split)
    split_trainval = staticmethod(splits.split_trainval)
    subsample_classes = staticmethod(splits.subsample_classes)
    read_and_split_data = staticmethod(splits.read_and_split_data)

    def __init__(self, cfg) -> None:
        self.root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.layout = self.get_layout(cfg)
        self.dataset_dir = require_layout(self.layout, self.root)
        self.image_dir = osp.join(self.dataset_dir, self.image_subdir)
        self.split_path = osp.join(self.dataset_dir, self.layout.split.path) if self.layout.split else None
        self.split_fewshot_dir = osp.dirname(self.fewshot_path(cfg, 1))
        self.split_file: str | None = None

        num_shots = cfg.DATASET.NUM_SHOTS
        require_valid_num_shots(num_shots)
        train, val, test = self.load_records(cfg)
        if num_shots >= 1:
            train, val = fewshot_subsets(
                self.fewshot_path(cfg, num_shots), self.dataset_dir, num_shots, cfg.SEED, train, val, self.split_file
            )
        train, test = self.datums(train), self.datums(test)
        subsample = cfg.DATASET.SUBSAMPLE_CLASSES
        if val is None:
            train, test = splits.subsample_classes(train, test, subsample=subsample)
            val = test
        else:
            train, val, test = splits.subsample_classes(train, self.datums(val), test, subsample=subsample)
        super().__init__(train_x=train, val=val, test=test)

    @classmethod
    def get_layout(cls, cfg) -> Layout:
        """The expected files, from the ``info`` of this class or of the dataset it extends (may depend on ``cfg``)."""
        info = getattr(cls, "info", None)
        layout = None
        if isinstance(info, DatasetInfo):
            layout = info.layout_for(osp.abspath(osp.expanduser(cfg.DATASET.ROOT)), cfg)
        if layout is None:
            raise NotImplementedError(
                f"{cls.__name__} must set info = DatasetInfo(..., layout=...) or define get_layout"
            )
        return layout

    def fewshot_path(self, cfg, num_shots: int) -> str:
        return fewshot_cache_path(self.dataset_dir, num_shots, cfg.SEED)

    def split_prefixes(self) -> Sequence[str]:
        """Folders a split file's paths may be relative to, the one used for new split files first."""
        return self.image_dir, self.dataset_dir

    def load_records(self, cfg) -> tuple[list[Record], list[Record] | None, list[Record]]:
        """Train, val and test records; val ``None`` means the test set doubles as validation (ImageNet).

        Sets ``split_file`` to the split file read, if any (its checksum goes into the few-shot cache).
        """
        published = self.layout.split.path if self.layout.split else None
        for name in filter(None, [published, self.layout.created_split]):
            path = osp.join(self.dataset_dir, name)
            if osp.isfile(path):
                print(f"Reading split from {path}")
                self.split_file = path
                return read_split_records(path, self.split_prefixes(), self.split_file_remedy(name))
        if self.layout.created_split is None:
            return self.build_split()
        return self.create_split()

    def split_file_remedy(self, name: str) -> str:
        """What to do about the split file ``name`` when it cannot be read."""
        if self.layout.split and name == self.layout.split.path:
            return (
                f"It is {self.layout.name}'s published split: restore it (get: {self.layout.split.source}). "
                "Deleting it instead makes runs build a new split whose numbers are not comparable with published ones."
            )
        return "This project created it from the raw files: delete it and the next run creates it again."

    def create_split(self) -> tuple[list[Record], list[Record], list[Record]]:
        """Build a split from the raw files and save it under ``Layout.created_split``."""
        missing = [n.path for n in self.layout.fallback if n.problem(self.dataset_dir)]
        published = self.layout.split.path if self.layout.split else None
        if missing:
            raise not_ready(
                self.layout,
                self.root,
                f"no split file ({published}) and the raw files to build one are missing: {', '.join(missing)}",
            )
        if published:
            print(
                f"{published} not found in {self.dataset_dir}: building a new split from the raw files "
                "(numbers on it are not comparable with published ones)"
            )
        train, val, test = self.build_split()
        save_split(train, val, test, osp.join(self.dataset_dir, self.layout.created_split), self.image_dir)
        return train, val, test

    def build_split(self) -> tuple[list[Record], list[Record], list[Record]]:
        """Train/val/test records from the raw files."""
        raise NotImplementedError

    def datums(self, records: Sequence[Record]) -> list[Datum]:
        """``Datum`` objects for ``records``; a missing image names the dataset and how to repair it."""
        try:
            return to_datums(records)
        except FileNotFoundError as e:
            raise not_ready(self.layout, self.root, str(e)) from None
