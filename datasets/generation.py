"""Pieces every generator and exporter shares: output folders replaced whole, with a manifest, and the summary."""

from __future__ import annotations

import os
import os.path as osp
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dassl.utils import mkdir_if_missing

from .manifests import write_manifest


@contextmanager
def staged_folder(final_dir: str, generator: str, version: int, params: dict[str, Any]) -> Iterator[str]:
    """Yield a temporary sibling folder to write into; when the body completes, the manifest is written into it and
    it replaces ``final_dir`` whole.

    The old output is renamed aside and removed only once the new one is in place, so a killed run leaves either the
    previous folder or the new one (plus leftovers that ``clear_leftovers`` handles on the next run), never a mix.
    """
    parent, name = osp.split(osp.normpath(final_dir))
    mkdir_if_missing(parent)
    clear_leftovers(final_dir)
    staging = osp.join(parent, f".{name}.partial")
    os.makedirs(staging)
    try:
        yield staging
        write_manifest(staging, generator, version, params)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if osp.exists(final_dir):
        print(f"Replacing the existing {final_dir}")
        previous = osp.join(parent, f".{name}.previous")
        os.replace(final_dir, previous)
        os.replace(staging, final_dir)
        shutil.rmtree(previous)
    else:
        os.replace(staging, final_dir)


def clear_leftovers(final_dir: str) -> None:
    """Remove what an interrupted ``staged_folder`` left beside ``final_dir``: a partial output, and an old output
    renamed aside (put back when the run died between the two renames, so the old dataset is never lost)."""
    parent, name = osp.split(osp.normpath(final_dir))
    staging = osp.join(parent, f".{name}.partial")
    previous = osp.join(parent, f".{name}.previous")
    if osp.exists(staging):
        print(f"Removing {staging} (left by an interrupted run)")
        shutil.rmtree(staging)
    if osp.exists(previous):
        if osp.exists(final_dir):
            shutil.rmtree(previous)
        else:
            print(f"Restoring {final_dir} (an interrupted run had moved it aside)")
            os.replace(previous, final_dir)


def print_summary(
    title: str,
    counts: dict[str, Counter],
    output: str,
    source: str,
    extra_columns: dict[str, dict[int, str]] | None = None,
) -> None:
    """Images per class and split (plus optional per-class columns), totals, the output folder and the source."""
    from tabulate import tabulate

    extra_columns = extra_columns or {}
    labels = sorted({label for split in counts.values() for label in split})
    rows = [
        [label, *(counts[s][label] for s in counts), *(col.get(label, "") for col in extra_columns.values())]
        for label in labels
    ]
    rows.append(["total", *(sum(counts[s].values()) for s in counts), *("" for _ in extra_columns)])
    print()
    print(title)
    print(tabulate(rows, headers=["class", *counts, *extra_columns], tablefmt="simple"))
    print(f"Source: {source}")
    print(f"Output: {output}")
