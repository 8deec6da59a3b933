"""Learnable image prompts: the common ``Prompter`` interface, VP's ``PadPrompter`` and BAR's ``Program`` frame.

Every prompter maps normalised images to prompted normalised images and exposes its learnable
parameters as one flat float32 vector, so white-box training can back-propagate through ``forward`` and
black-box training can render many candidate vectors at once with ``prepare`` + ``apply_many``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def channel_stats(values: Sequence[float], like: Tensor) -> Tensor:
    """Per-channel constants shaped (1, C, 1, 1) on ``like``'s device and dtype."""
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def clip_to_pixel_range(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Clamp a normalised image batch per channel to ``[(0-mean)/std, (1-mean)/std]``, i.e. pixels to [0, 1]."""
    m, s = channel_stats(mean, x), channel_stats(std, x)
    return torch.clamp(x, min=(0.0 - m) / s, max=(1.0 - m) / s)


class Prompter(nn.Module):
    """Base of all prompters: flat-vector access to the learnable parameters and batched rendering.

    Subclasses implement ``forward``, ``prepare`` and ``apply_many``; they narrow
    ``learnable_named_parameters`` when they hold parameters that are not learned (a frozen encoder).
    """

    def learnable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The learned parameters in flat-vector order, with their names relative to this module."""
        return list(self.named_parameters())

    def num_learnable(self) -> int:
        """Number of learned values the paper reports for this prompter."""
        return self.flat_dim()

    def flat_dim(self) -> int:
        """Length of the flat vector handled by ``get_flat``, ``set_flat`` and ``apply_many``."""
        return sum(p.numel() for _, p in self.learnable_named_parameters())

    def get_flat(self) -> Tensor:
        """Detached float32 copy of the learnable parameters as one 1-D vector."""
        flat = torch.cat([p.detach().reshape(-1) for _, p in self.learnable_named_parameters()])
        return flat.to(torch.float32)

    def set_flat(self, w: Tensor) -> None:
        """Write a flat vector (as returned by ``get_flat``) back into the learnable parameters."""
        with torch.no_grad():
            for (_, p), value in zip(self.learnable_named_parameters(), self.split_flat(w).values()):
                p.copy_(value)

    def split_flat(self, w: Tensor) -> dict[str, Tensor]:
        """Views of a flat vector shaped like each learnable parameter, keyed by parameter name."""
        named = self.learnable_named_parameters()
        if w.shape != (self.flat_dim(),):
            raise ValueError(f"expected a flat vector of shape ({self.flat_dim()},), got {tuple(w.shape)}")
        chunks = torch.split(w, [p.numel() for _, p in named])
        return {name: chunk.reshape(p.shape) for (name, p), chunk in zip(named, chunks)}

    def _check_many(self, W: Tensor) -> Tensor:
        if W.dim() != 2 or W.shape[1] != self.flat_dim():
            raise ValueError(f"expected W of shape (P, {self.flat_dim()}), got {tuple(W.shape)}")
        return W

    def prepare(self, x: Tensor) -> Any:
        """Everything about the batch ``x`` that does not depend on the learnable parameters."""
        raise NotImplementedError

    def apply_many(self, ctx: Any, W: Tensor) -> Tensor:
        """Prompted images for each row of W (P, d): (P*N, 3, S, S), all N images of W[0] first."""
        raise NotImplementedError


class PadPrompter(Prompter):
    """VP's padding prompt: a learnable frame of width ``pad`` added to the normalised image, no clamping."""

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


class Program(Prompter):
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
