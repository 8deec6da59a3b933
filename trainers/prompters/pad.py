"""VP's padding prompt (Bahng et al. 2022): a learnable frame added around the normalised image."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dassl.config import CfgNode
from trainers.config import AT_LEAST_ONE, ConfigKey

from .base import PROMPTER_REGISTRY, Prompter, prompters_reading

PAD_KEYS = (
    ConfigKey(
        "METHOD",
        "padding",
        "prompt design (a registered prompter): padding, fixed_patch or random_patch (VP's designs), ...",
        choices=prompters_reading("IMAGE_SIZE", "PROMPT_SIZE"),
    ),
    ConfigKey("IMAGE_SIZE", 224, "side of the prompted image in pixels (must equal INPUT.SIZE)", valid=AT_LEAST_ONE),
    ConfigKey(
        "PROMPT_SIZE",
        30,
        "prompt size p in pixels: the pad width (padding) or the patch side (fixed_patch, random_patch; its location "
        "is drawn per image and step from SEED in training, from a fixed seed and the image's dataset index in "
        "evaluation)",
        valid=AT_LEAST_ONE,
    ),
)
"""The keys VP's prompters (``padding``, ``fixed_patch``, ``random_patch``) read, with the prompter choice, for a
method to declare under its node."""


@PROMPTER_REGISTRY.register(name="padding")
class PadPrompter(Prompter[Tensor]):
    """VP's padding prompt: a learnable frame of width ``pad`` added to the normalised image, no clamping."""

    node_keys = ("IMAGE_SIZE", "PROMPT_SIZE")

    def __init__(self, image_size: int = 224, pad: int = 30) -> None:
        super().__init__()
        if not 0 < 2 * pad < image_size:
            raise ValueError(f"pad must satisfy 0 < 2*pad < image_size, got pad={pad}, image_size={image_size}")
        self.image_size = image_size
        self.pad = pad
        inner = image_size - 2 * pad
        self.pad_up = nn.Parameter(torch.randn(1, 3, pad, image_size))
        self.pad_down = nn.Parameter(torch.randn(1, 3, pad, image_size))
        self.pad_left = nn.Parameter(torch.randn(1, 3, inner, pad))
        self.pad_right = nn.Parameter(torch.randn(1, 3, inner, pad))

    def _frame(self, up: Tensor, down: Tensor, left: Tensor, right: Tensor) -> Tensor:
        """Assemble (B, 3, S, S) frames from (B, ...) edge pieces."""
        inner = self.image_size - 2 * self.pad
        centre = up.new_zeros(up.shape[0], 3, inner, inner)
        middle = torch.cat([left, centre, right], dim=3)
        return torch.cat([up, middle, down], dim=2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self._frame(self.pad_up, self.pad_down, self.pad_left, self.pad_right)

    def prepare(self, x: Tensor) -> Tensor:
        return x

    def apply_many(self, ctx: Tensor, W: Tensor) -> Tensor:
        W = self._check_many(W)
        x = ctx
        named = self.learnable_named_parameters()
        with torch.no_grad():
            chunks = torch.split(W, [p.numel() for _, p in named], dim=1)
            pieces = [chunk.reshape(W.shape[0], *p.shape[1:]) for (_, p), chunk in zip(named, chunks)]
            frames = self._frame(*pieces)
            return (x.unsqueeze(0) + frames.unsqueeze(1)).flatten(0, 1)

    @classmethod
    def example(cls) -> PadPrompter:
        return cls(image_size=16, pad=3)

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> PadPrompter:
        """``node.IMAGE_SIZE`` and ``node.PROMPT_SIZE`` (the pad width) of VPOUR or VPWB."""
        return cls(image_size=node.IMAGE_SIZE, pad=node.PROMPT_SIZE)

    @classmethod
    def check_cfg(cls, cfg: CfgNode, node: str) -> None:
        """The pad on both sides must leave an image inside: 2 x PROMPT_SIZE < IMAGE_SIZE."""
        c = cfg.TRAINER[node.split(".")[-1]]
        if 2 * c.PROMPT_SIZE >= c.IMAGE_SIZE:
            raise ValueError(
                f"{node}.PROMPT_SIZE {c.PROMPT_SIZE} is too large for padding on {c.IMAGE_SIZE}-px images: the pad on "
                f"both sides must leave an image inside (2 x PROMPT_SIZE < IMAGE_SIZE), so at most "
                f"{(c.IMAGE_SIZE - 1) // 2}. Lower {node}.PROMPT_SIZE (the VP paper's is 30) or choose a patch design "
                f"({node}.METHOD fixed_patch or random_patch)."
            )
