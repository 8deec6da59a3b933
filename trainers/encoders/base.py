"""The frozen-encoder role: the public base ``FrozenEncoder`` and the registry of encoder builders.

An encoder maps CLIP-normalised images to (N, out_dim) features and is never trained. A builder
``(path, allow_download) -> FrozenEncoder`` is registered under the name ``TRAINER.BLACKVIP.PT_BACKBONE`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


class FrozenEncoder(nn.Module):
    """A pretrained image encoder held fixed: always in eval mode, no gradients; CLIP-normalised images -> (N, out_dim).

    ``stage1_groups`` is the group count the reference pairs with this encoder in the decoder's first
    stage (None: ``min(src_channels, 64)``).
    """

    def __init__(self, model: nn.Module, out_dim: int, input_size: int, stage1_groups: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.out_dim = out_dim
        self.input_size = input_size
        self.stage1_groups = stage1_groups
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenEncoder:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.features(x)

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError


EncoderBuilder = Callable[[str, bool], FrozenEncoder]
ENCODERS: dict[str, EncoderBuilder] = {}


def register_encoder(name: str) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Decorator adding a builder ``(path, allow_download) -> FrozenEncoder`` to the registry under ``name``."""

    def add(builder: EncoderBuilder) -> EncoderBuilder:
        if name in ENCODERS:
            raise KeyError(f"encoder '{name}' is already registered")
        ENCODERS[name] = builder
        return builder

    return add


def available_encoders() -> list[str]:
    """Names accepted by ``build_encoder``."""
    return sorted(ENCODERS)


def build_encoder(name: str, path: str = "", allow_download: bool = False) -> FrozenEncoder:
    """Frozen encoder registered as ``name``, weights from ``path`` or the local cache (network only if allowed)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder '{name}'; available: {', '.join(available_encoders())}")
    return ENCODERS[name](path, allow_download)
