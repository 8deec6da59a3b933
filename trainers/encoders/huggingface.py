"""Pretrained Hugging Face encoders for the Coordinator: MAE / ViT CLS tokens and DINO ResNet-50 pooled features.

Weights come from ``TRAINER.BLACKVIP.PT_BACKBONE_PATH`` or the local Hugging Face cache (``trainers.weights``);
the network is used only when ``TARGET.DOWNLOAD`` is True.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from trainers.weights import find_hf_checkpoint

from .base import FrozenEncoder, register_encoder

RESNET_INPUT_SIDE = 224
"""Input side of the DINO ResNet-50 encoder (the reference's image size)."""


class ViTCLSEncoder(FrozenEncoder):
    """CLS token of a Hugging Face ``ViTModel``, read before the final LayerNorm (last block's output) or after it."""

    def __init__(self, model: nn.Module, before_final_norm: bool) -> None:
        super().__init__(model, model.config.hidden_size, model.config.image_size)
        self.before_final_norm = before_final_norm

    def features(self, x: Tensor) -> Tensor:
        if self.before_final_norm:
            return self.model(pixel_values=x, output_hidden_states=True).hidden_states[-1][:, 0]
        return self.model(pixel_values=x).last_hidden_state[:, 0]


class ResNetPoolEncoder(FrozenEncoder):
    """Globally pooled features of a Hugging Face ``ResNetModel``, flattened to (N, C)."""

    def __init__(self, model: nn.Module, stage1_groups: int | None = None) -> None:
        super().__init__(model, model.config.hidden_sizes[-1], RESNET_INPUT_SIDE, stage1_groups)

    def features(self, x: Tensor) -> Tensor:
        return self.model(pixel_values=x).pooler_output.flatten(1)


VIT_CONFIG_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "qkv_bias",
)


def _locate(name: str, repo_id: str, path: str, allow_download: bool) -> Path:
    return find_hf_checkpoint(
        f"encoder '{name}'",
        repo_id,
        path,
        allow_download,
        path_key="TRAINER.BLACKVIP.PT_BACKBONE_PATH",
        download_key="TARGET.DOWNLOAD True",
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars; ``_require_complete`` does the checking instead."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _require_complete(info: dict, folder: Path) -> None:
    """Fail loudly when a checkpoint left weights of the model randomly initialised or mis-shaped."""
    if info["missing_keys"] or info["mismatched_keys"]:
        raise RuntimeError(
            f"checkpoint in {folder} does not fit the encoder: missing {sorted(info['missing_keys'])}, "
            f"mismatched {sorted(map(str, info['mismatched_keys']))}"
        )


def load_vit(folder: Path) -> nn.Module:
    """Plain ``ViTModel`` (no pooler) built from the folder's config and loaded with its ``vit.*`` / ViT weights.

    An MAE checkpoint's config is read for its ViT fields only, so the model never masks or shuffles patches.
    """
    from transformers import ViTConfig, ViTModel

    raw = json.loads((folder / "config.json").read_text())
    config = ViTConfig(**{key: raw[key] for key in VIT_CONFIG_FIELDS if key in raw})
    with _quiet_transformers():
        model, info = ViTModel.from_pretrained(
            folder, config=config, add_pooling_layer=False, local_files_only=True, output_loading_info=True
        )
    _require_complete(info, folder)
    return model


def load_resnet(folder: Path) -> nn.Module:
    """``ResNetModel`` with the folder's config and weights."""
    from transformers import ResNetModel

    with _quiet_transformers():
        model, info = ResNetModel.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    _require_complete(info, folder)
    return model


@register_encoder("vit-mae-base")
def _vit_mae_base(path: str, allow_download: bool) -> FrozenEncoder:
    folder = _locate("vit-mae-base", "facebook/vit-mae-base", path, allow_download)
    return ViTCLSEncoder(load_vit(folder), before_final_norm=True)


@register_encoder("vit-base")
def _vit_base(path: str, allow_download: bool) -> FrozenEncoder:
    folder = _locate("vit-base", "google/vit-base-patch16-224-in21k", path, allow_download)
    return ViTCLSEncoder(load_vit(folder), before_final_norm=False)


@register_encoder("dino-resnet-50")
def _dino_resnet_50(path: str, allow_download: bool) -> FrozenEncoder:
    folder = _locate("dino-resnet-50", "Ramos-Ramos/dino-resnet-50", path, allow_download)
    return ResNetPoolEncoder(load_resnet(folder), stage1_groups=32)


@register_encoder("tiny-vit")
def _tiny_vit(path: str, allow_download: bool) -> FrozenEncoder:
    """Small random ViT (hidden 32, 2 layers, fixed seed) read out like vit-mae-base; for tests, needs no weights."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=224, patch_size=16
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ViTModel(config, add_pooling_layer=False)
    return ViTCLSEncoder(model, before_final_norm=True)
