"""VP's patch prompts (Bahng et al. 2022): a learnable p x p pixel patch added to the normalised image.

``fixed_patch`` puts the patch at the top-left corner, as the VP paper does. ``random_patch`` moves it: in
training every image gets its own location, drawn anew at every step from the prompter's own generator,
which is seeded from the run's seed and saved in checkpoints, so a run and its resumption see the same
locations. Both have 3 p^2 learnable values (2,700 for p = 30), against 2 x 3 p (S + S - 2p) for padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dassl.config import CfgNode

from .base import PROMPTER_REGISTRY, Prompter

EVAL_SEED = 0
"""Seed of the locations ``random_patch`` uses in eval mode (the same for every model, run and call)."""


@dataclass
class PatchContext:
    """A batch and the top-left corner (row, column) of the patch in each of its images."""

    x: Tensor
    rows: Tensor
    cols: Tensor


def vp_prompt_parameters(design: str, image_size: int, prompt_size: int, channels: int = 3) -> int:
    """The VP paper's count of learnable values: C p^2 for a patch, 2 C p (H + W - 2p) for padding (H = W = S)."""
    p, s = prompt_size, image_size
    if design == "padding":
        return 2 * channels * p * (s + s - 2 * p)
    if design in ("fixed_patch", "random_patch"):
        return channels * p * p
    raise ValueError(f"unknown VP prompt design {design!r}; expected padding, fixed_patch or random_patch")


class _PatchPrompter(Prompter[PatchContext]):
    """A ``(1, 3, p, p)`` patch (N(0, 1) initial values) added, unclamped, at a per-image location; subclasses
    choose the locations with ``locations``."""

    def __init__(self, image_size: int = 224, patch: int = 30) -> None:
        super().__init__()
        if not 0 < patch <= image_size:
            raise ValueError(f"patch must satisfy 0 < patch <= image_size, got patch={patch}, image_size={image_size}")
        self.image_size = image_size
        self.patch_size = patch
        self.patch = nn.Parameter(torch.randn(1, 3, patch, patch))

    def locations(self, n: int) -> tuple[Tensor, Tensor]:
        """Top-left (rows, cols) of the patch for ``n`` images, each a CPU int64 tensor of shape (n,)."""
        raise NotImplementedError

    def _check_size(self, x: Tensor) -> None:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")

    def _canvas(self, patches: Tensor, rows: Tensor, cols: Tensor, n: int) -> Tensor:
        """(P, N, 3, S, S) prompts: patch ``patches[i]`` (P, 3, p, p) placed at image ``j``'s location, zeros elsewhere."""
        p, s = self.patch_size, self.image_size
        offsets = torch.arange(p, device=patches.device)
        image = torch.arange(n, device=patches.device)[:, None, None]
        r = (rows.to(patches.device)[:, None] + offsets)[:, :, None]
        c = (cols.to(patches.device)[:, None] + offsets)[:, None, :]
        canvas = patches.new_zeros(patches.shape[0], n, s, s, 3)
        values = patches.permute(0, 2, 3, 1).unsqueeze(1).expand(-1, n, -1, -1, -1)
        canvas[:, image, r, c, :] = values
        return canvas.permute(0, 1, 4, 2, 3)

    def prepare(self, x: Tensor) -> PatchContext:
        """The batch and its patch locations (drawn here once per step, shared by every parameter vector)."""
        self._check_size(x)
        rows, cols = self.locations(x.shape[0])
        return PatchContext(x=x, rows=rows, cols=cols)

    def forward(self, x: Tensor) -> Tensor:
        ctx = self.prepare(x)
        return ctx.x + self._canvas(self.patch, ctx.rows, ctx.cols, x.shape[0])[0]

    def apply_many(self, ctx: PatchContext, W: Tensor) -> Tensor:
        W = self._check_many(W)
        p = self.patch_size
        with torch.no_grad():
            prompts = self._canvas(W.reshape(W.shape[0], 3, p, p), ctx.rows, ctx.cols, ctx.x.shape[0])
            return (ctx.x.unsqueeze(0) + prompts).flatten(0, 1)


@PROMPTER_REGISTRY.register(name="fixed_patch")
class FixedPatchPrompter(_PatchPrompter):
    """VP's fixed patch: a learnable p x p patch added at the top-left corner of every image (3 p^2 values)."""

    def locations(self, n: int) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros(n, dtype=torch.long)
        return zeros, zeros.clone()

    @classmethod
    def example(cls) -> FixedPatchPrompter:
        return cls(image_size=16, patch=4)

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> FixedPatchPrompter:
        """``node.IMAGE_SIZE`` and ``node.PROMPT_SIZE`` (the patch side) of VPOUR or VPWB."""
        return cls(image_size=node.IMAGE_SIZE, patch=node.PROMPT_SIZE)


@PROMPTER_REGISTRY.register(name="random_patch")
class RandomPatchPrompter(_PatchPrompter):
    """VP's random patch: a learnable p x p patch added at a random location (3 p^2 values).

    Training mode: each image of each call (``forward`` or ``prepare``) gets its own location, uniform over
    all (S - p + 1)^2 placements (the reference draws one location per batch, from S - p values per axis),
    from the prompter's generator, seeded with ``seed``. The generator state is part of ``state_dict``, so
    a resumed run draws what the uninterrupted run would have drawn.

    Eval mode: the locations are random too, since the patch was trained to work anywhere and accuracy at
    random locations is what the paper reports, but they are drawn afresh from ``EVAL_SEED`` at every call:
    image j of a batch always gets the same location, whatever the model, the run's seed or how often it
    was evaluated before. Evaluation is therefore deterministic, and validating during training leaves the
    training locations unchanged.
    """

    def __init__(self, image_size: int = 224, patch: int = 30, seed: int = 0) -> None:
        super().__init__(image_size, patch)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def _draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        corners = torch.randint(0, self.image_size - self.patch_size + 1, (2, n), generator=generator)
        return corners[0], corners[1]

    def locations(self, n: int) -> tuple[Tensor, Tensor]:
        if self.training:
            return self._draw(n, self.generator)
        return self._draw(n, torch.Generator().manual_seed(EVAL_SEED))

    def get_extra_state(self) -> Tensor:
        """The training generator's state, checkpointed with the patch."""
        return self.generator.get_state()

    def set_extra_state(self, state: Tensor) -> None:
        self.generator.set_state(state)

    @classmethod
    def example(cls) -> RandomPatchPrompter:
        return cls(image_size=16, patch=4)

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> RandomPatchPrompter:
        """``node.IMAGE_SIZE``, ``node.PROMPT_SIZE`` (the patch side) and the run's ``SEED`` (0 when unset)."""
        return cls(image_size=node.IMAGE_SIZE, patch=node.PROMPT_SIZE, seed=max(cfg.SEED, 0))
