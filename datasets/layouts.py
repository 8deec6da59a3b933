"""How a dataset describes what it expects on disk and where each piece comes from.

Each dataset module builds its ``Layout`` from these pieces and registers it in its ``DatasetInfo``;
``datasets.prepare`` and the not-ready errors read it from there.
"""

from __future__ import annotations

import os.path as osp
import shlex
from dataclasses import dataclass

from dassl.utils import listdir_nohidden

from .manifests import Generated


@dataclass(frozen=True)
class Need:
    """One file or folder, relative to the dataset folder; a trailing "/" marks a folder that must hold files."""

    path: str
    source: str

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")

    def problem(self, dataset_dir: str) -> str | None:
        """``"missing"`` or ``"empty"`` when the piece is not usable under ``dataset_dir``, else None."""
        path = osp.join(dataset_dir, self.path)
        if self.is_folder:
            if not osp.isdir(path):
                return "missing"
            return None if listdir_nohidden(path) else "empty"
        return None if osp.isfile(path) else "missing"


@dataclass(frozen=True)
class Layout:
    """A dataset's expected files: always-required pieces, the fixed split, and the raw files a split is built from.

    ``generator`` is the command that creates the folder (generated data), ``generator_note`` what it needs, and
    ``generated`` the folders whose manifest must name the generator and parameters this layout expects.
    """

    name: str
    folder: str
    required: tuple[Need, ...]
    split: Need | None = None
    fallback: tuple[Need, ...] = ()
    created_split: str | None = None
    generator: str | None = None
    generator_note: str = ""
    generated: tuple[Generated, ...] = ()

    def tree(self, root: str) -> str:
        """The expected layout as an indented listing under ``root``."""
        lines = [f"  {root}/", f"    {self.folder}/"]
        for need in self.required + ((self.split,) if self.split else ()):
            lines.append(f"      {need.path}")
        if self.fallback:
            alternative = f"without {self.split.path}: " if self.split else ""
            lines.append(f"      ({alternative}{', '.join(n.path for n in self.fallback)})")
        return "\n".join(lines)


BLACKVIP_README = "the BlackVIP README (https://github.com/changdaeoh/BlackVIP, data preparation section)"
VGG = "https://www.robots.ox.ac.uk/~vgg/data"


def gdrive(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}/view"


def coop_split(name: str, file_id: str) -> Need:
    """CoOp's published split file ``split_zhou_<name>.json``."""
    return Need(f"split_zhou_{name}.json", f"CoOp's fixed split: {gdrive(file_id)}")


def blackvip_split(name: str) -> Need:
    """BlackVIP's published split file ``split_mlai_<name>.json`` (the datasets CoOp does not cover)."""
    return Need(f"split_mlai_{name}.json", f"the fixed split linked in {BLACKVIP_README}")


def command(*words: object) -> str:
    """A shell command line, each word quoted where needed."""
    return " ".join(shlex.quote(str(w)) for w in words)
