"""Build real trainers for benchmarks: full-size architectures with random weights on a synthetic image folder.

Speed and memory do not depend on weight values, so a randomly initialised CLIP ViT-B/32 target and MAE
ViT-B/16 coordinator encoder stand in for the pretrained ones (which cannot be downloaded here). Trainers
are built through the same config path as ``train.py``.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import platform

import numpy as np
import torch
from PIL import Image

import train
from dassl.engine import build_trainer
from trainers.targets.clip import OPENAI_ARCHS

EUROSAT_CLASSES = [
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
]
CONFIGS = {
    "BLACKVIP": "BLACKVIP/vit_b16.yaml",
    "VPOUR": "VPOUR/vit_b16.yaml",
    "BAR": "BAR/vit_b16.yaml",
    "VPWB": "VPWB/vit_b16.yaml",
    "LP": "LP/vit_b16.yaml",
    "FT": "FT/vit_b16.yaml",
}
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def make_eurosat_folder(root: str, per_class: int = 8, size: int = 64) -> str:
    """A miniature EuroSAT (real layout and split file) of random images; returns the data root."""
    rng = np.random.default_rng(0)
    image_dir = osp.join(root, "eurosat", "2750")
    rows = []
    for label, name in enumerate(EUROSAT_CLASSES):
        os.makedirs(osp.join(image_dir, name), exist_ok=True)
        for i in range(per_class):
            rel = f"{name}/{name}_{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(osp.join(image_dir, rel))
            rows.append([rel, label, name])
    split = {"train": rows, "val": rows[:10], "test": rows}
    with open(osp.join(root, "eurosat", "split_zhou_EuroSAT.json"), "w") as f:
        json.dump(split, f)
    return root


def random_clip_checkpoint(arch: str, path: str) -> str:
    """Save a randomly initialised CLIP of ``arch`` (OpenAI name) in OpenAI's state-dict layout."""
    import open_clip

    if not osp.exists(path):
        model = open_clip.create_model(OPENAI_ARCHS[arch], pretrained=None)
        torch.save(model.state_dict(), path)
    return path


def random_mae_folder(path: str) -> str:
    """Save a randomly initialised MAE ViT-B/16 (the paper's coordinator encoder) in the hub folder layout."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    if not osp.exists(osp.join(path, "config.json")):
        ViTMAEForPreTraining(ViTMAEConfig(mask_ratio=0.0)).save_pretrained(path)
    return path


def build(method: str, data_root: str, out_dir: str, opts: list) -> object:
    """A trainer of ``method`` on the synthetic EuroSAT folder, configured like ``train.py`` would."""
    train.load_plugins()
    argv = [
        "--root",
        data_root,
        "--seed",
        "1",
        "--trainer",
        method,
        "--dataset-config-file",
        osp.join(REPO, "configs/datasets/eurosat.yaml"),
        "--config-file",
        osp.join(REPO, "configs/trainers", CONFIGS[method]),
        "--output-dir",
        out_dir,
        *[str(o) for o in opts],
    ]
    cfg = train.setup_cfg(train.parse_args(argv))
    return build_trainer(cfg)


def machine() -> dict:
    """What the numbers were measured on."""
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_json(obj: dict, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
