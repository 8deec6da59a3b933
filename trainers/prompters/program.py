"""BAR's reprogramming frame (Tsai et al. 2020): the shrunken image inside a learnable sigmoid frame."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dassl.config import CfgNode

from .base import CLIP_MEAN, CLIP_STD, PROMPTER_REGISTRY, Prompter


@PROMPTER_REGISTRY.register(name="reprogramming")
class Program(Prompter[Tensor]):
    """BAR's reprogramming frame: the image is pasted at the centre of an F x F canvas and framed by ``sigmoid(W)``.

    The whole (3, F, F) tensor is the optimised vector; ``num_learnable`` counts only the frame entries
    that reach the output, 3 * (F^2 - s^2).
    """

    def __init__(
        self,
        frame_size: int = 224,
        image_size: int = 194,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
    ) -> None:
        super().__init__()
        if not 0 < image_size <= frame_size:
            raise ValueError(f"need 0 < image_size <= frame_size, got {image_size} and {frame_size}")
        self.frame_size = frame_size
        self.image_size = image_size
        self.offset = (frame_size - image_size) // 2
        self.program = nn.Parameter(torch.randn(3, frame_size, frame_size))
        mask = torch.ones(3, frame_size, frame_size)
        window = slice(self.offset, self.offset + image_size)
        mask[:, window, window] = 0.0
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def num_learnable(self) -> int:
        return int(self.mask.sum().item())

    def _canvas(self, x: Tensor) -> Tensor:
        """De-normalise the (N, 3, s, s) batch to pixels and paste it at the centre of a zero F x F canvas."""
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"Program expects {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")
        pixels = x * self.std + self.mean
        after = self.frame_size - self.image_size - self.offset
        return F.pad(pixels, (self.offset, after, self.offset, after))

    def _finish(self, canvas: Tensor, programs: Tensor) -> Tensor:
        """Add the masked sigmoid frame(s) to the canvas and normalise again."""
        return (canvas + torch.sigmoid(programs) * self.mask - self.mean) / self.std

    def forward(self, x: Tensor) -> Tensor:
        return self._finish(self._canvas(x), self.program.unsqueeze(0))

    def prepare(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self._canvas(x)

    def apply_many(self, ctx: Tensor, W: Tensor) -> Tensor:
        W = self._check_many(W)
        canvas = ctx
        with torch.no_grad():
            programs = W.reshape(W.shape[0], 1, 3, self.frame_size, self.frame_size)
            return self._finish(canvas.unsqueeze(0), programs).flatten(0, 1)

    node_keys = ("FRAME_SIZE",)

    @classmethod
    def example(cls) -> Program:
        return cls(frame_size=16, image_size=12)

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> Program:
        """The image at ``INPUT.SIZE`` inside BAR's ``FRAME_SIZE`` canvas, in the config's normalisation."""
        return cls(
            frame_size=node.FRAME_SIZE, image_size=cfg.INPUT.SIZE[0], mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD
        )
