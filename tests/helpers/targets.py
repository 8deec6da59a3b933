"""Test helpers for the black-box targets: the config they read, OpenAI-layout checkpoints, real sample images."""

from __future__ import annotations

import glob
import importlib.util
import os
import warnings

import numpy as np
import torch
from PIL import Image

from dassl.config import CfgNode as CN
from dassl.config import get_cfg_default
from trainers.config import extend_cfg
from trainers.targets import CLIP_MEAN, CLIP_STD


def target_cfg(overrides: dict | None = None) -> CN:
    """The project's full default config (as train.py builds it) for a tiny CLIP on EuroSAT, then ``{"A.B": value}`` overrides."""
    cfg = extend_cfg(get_cfg_default())
    cfg.MODEL.BACKBONE.NAME = "tiny-vit"
    cfg.DATASET.NAME = "EuroSAT"
    cfg.INPUT.PIXEL_MEAN = list(CLIP_MEAN)
    cfg.INPUT.PIXEL_STD = list(CLIP_STD)
    cfg.merge_from_list([item for pair in (overrides or {}).items() for item in pair])
    return cfg


def normalise(images01: torch.Tensor, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """[0, 1] images -> the normalised space the targets receive."""
    return (images01 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def random_images(n: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    """``n`` CLIP-normalised images of smooth random colour fields (valid pixels in [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 7, 7, generator=g)
    return normalise(torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False))


def save_openai_checkpoint(model: torch.nn.Module, path: str, fmt: str) -> None:
    """Write ``model`` as OpenAI ships CLIP: ``fp16`` / ``fp32`` plain state dict, or a ``torchscript`` archive."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "torchscript":
        model.register_buffer("input_resolution", torch.tensor(224))  # as in OpenAI's archives
        example = torch.zeros(1, 3, 224, 224)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and torch.jit deprecation notices
            torch.jit.save(torch.jit.trace_module(model, {"encode_image": (example,)}), path)
        return
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[fmt]
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, path)


def foolbox_samples(prefix: str, size: int = 224) -> tuple[torch.Tensor, torch.Tensor]:
    """foolbox's 20 labelled sample images for ``prefix`` (imagenet, cifar10, ...), resized bicubically to
    ``size`` and CLIP-normalised, with their labels."""
    spec = importlib.util.find_spec("foolbox")
    folder = os.path.join(os.path.dirname(spec.origin), "data")
    images, labels = [], []
    for path in sorted(glob.glob(os.path.join(folder, f"{prefix}_*"))):
        pil = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
        images.append(torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255.0)
        labels.append(int(os.path.splitext(path)[0].rsplit("_", 1)[1]))
    return normalise(torch.stack(images)), torch.tensor(labels)
