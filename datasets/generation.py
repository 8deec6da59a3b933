"""Pieces every generator and exporter shares: staged output folders and the closing summary."""

from __future__ import annotations

import os
import os.path as osp
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from dassl.utils import mkdir_if_missing


@contextmanager
def staged_folder(final_dir: str) -> Iterator[str]:
    """Yield a temporary sibling folder to write into; on success it replaces ``final_dir`` (never mixed or partial)."""
    parent, name = osp.split(osp.normpath(final_dir))
    mkdir_if_missing(parent)
    staging = osp.join(parent, f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if osp.exists(final_dir):
        print(f"Replacing the existing {final_dir}")
        shutil.rmtree(final_dir)
    os.replace(staging, final_dir)


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
