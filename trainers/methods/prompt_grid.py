"""A picture of the learned prompt: for a few test images, the input, the prompt and the prompted input side by side.

The prompt column shows what the prompter added, in pixels: mid-grey is nothing, brighter and darker are the
signed change, scaled per image to its largest magnitude so a faint prompt is still visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

PROMPT_GRID_FILE = "prompt_grid.png"
"""Written into OUTPUT_DIR at the end of training by trainers with a prompt."""

GRID_IMAGES = 4
"""Test images in the grid (its rows)."""

GRID_COLUMNS = ("input", "prompt", "prompted input")

GRID_PAD = 2
"""White pixels between and around the tiles."""


def to_pixels(x: Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> Tensor:
    """Images in [0, 1] from a batch in the input normalisation (``mean``/``std`` None: already pixels)."""
    x = x.detach().float().cpu()
    if mean is not None and std is not None:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    return x


def centred(x: Tensor, height: int, width: int) -> Tensor:
    """A (N, C, h, w) batch placed at the centre of black (N, C, height, width) images."""
    top, left = (height - x.shape[-2]) // 2, (width - x.shape[-1]) // 2
    out = x.new_zeros(*x.shape[:-2], height, width)
    out[..., top : top + x.shape[-2], left : left + x.shape[-1]] = x
    return out


def grid_tiles(inputs: Tensor, prompted: Tensor) -> list[list[Tensor]]:
    """Rows of (input, prompt, prompted input) tiles in [0, 1] from pixel batches ``inputs`` and ``prompted``; an
    input smaller than its prompted image (BAR's frame around the image) is shown centred on black, as embedded."""
    if inputs.shape[-2:] != prompted.shape[-2:]:
        inputs = centred(inputs, *prompted.shape[-2:])
    rows = []
    for x, y in zip(inputs, prompted):
        delta = y - x
        scale = float(delta.abs().max())
        prompt = 0.5 + delta / (2 * scale) if scale > 0 else torch.full_like(delta, 0.5)
        rows.append([x.clamp(0, 1), prompt.clamp(0, 1), y.clamp(0, 1)])
    return rows


def grid_size(images: int, side: int, columns: int = len(GRID_COLUMNS), pad: int = GRID_PAD) -> tuple[int, int]:
    """(width, height) of a grid of ``images`` rows and ``columns`` square tiles of ``side`` pixels."""
    return columns * (side + pad) + pad, images * (side + pad) + pad


def render_grid(rows: list[list[Tensor]], pad: int = GRID_PAD) -> Image.Image:
    """An RGB image of equally sized (C, H, W) tiles in [0, 1], ``pad`` white pixels between and around them."""
    channels, height, width = rows[0][0].shape
    canvas = np.full((len(rows) * (height + pad) + pad, len(rows[0]) * (width + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            rgb = tile.expand(3, -1, -1) if channels == 1 else tile[:3]
            top, left = pad + r * (height + pad), pad + c * (width + pad)
            canvas[top : top + height, left : left + width] = (rgb.permute(1, 2, 0).numpy() * 255).round()
    return Image.fromarray(canvas)


def prompt_grid(
    inputs: Tensor, prompted: Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> Image.Image:
    """The grid for a batch of normalised inputs and the prompter's output on them."""
    return render_grid(grid_tiles(to_pixels(inputs, mean, std), to_pixels(prompted, mean, std)))
