"""Dataset registry and builder."""

import os.path as osp

from dassl.utils import Registry, check_availability

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Instantiate the dataset named by ``DATASET.NAME`` after checking the data root exists."""
    check_availability(cfg.DATASET.NAME, DATASET_REGISTRY.registered_names())
    root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'Data root "{root}" does not exist (DATASET.ROOT={cfg.DATASET.ROOT!r}). Pass the folder that holds your '
            f"datasets with --root DATA (e.g. --root ./data); `python -m datasets.prepare {cfg.DATASET.NAME}` shows the "
            f"layout {cfg.DATASET.NAME} expects."
        )
    if cfg.VERBOSE:
        print(f"Loading dataset: {cfg.DATASET.NAME}")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
