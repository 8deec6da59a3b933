"""VP's patch prompts (Bahng et al. 2022): a learnable p x p pixel patch added to the normalised image.

``fixed_patch`` puts the patch at the top-left corner, as the VP paper does. ``random_patch`` moves it: in
training every image gets its own location, drawn anew at every step from the prompter's own generator,
which is seeded from the run's seed and saved in checkpoints, so a run and its resumption see the same
locations. In evaluation each image's location is a fixed function of its dataset index. Both have 3 p^2
learnable values (2,700 for p = 30), against 2 x 3 p (S + S - 2p) for padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dassl.config import CfgNode

from .base import PROMPTER_REGISTRY, Prompter

EVAL_SEED = 0
"""Seed of the locations ``random_patch`` uses in eval mode (the same for every model, run and call)."""

TRAIN_STREAM = 1
"""``random_patch``'s training generator is seeded with child ``TRAIN_STREAM`` of the run's seed (a numpy
``SeedSequence`` spawn key), never with the seed itself, which seeds the zeroth-order optimiser's generator."""


def training_seed(seed: int) -> int:
    """The seed of ``random_patch``'s training generator for a run seeded with ``seed``: a stream of its own."""
    state = np.random.SeedSequence(seed, spawn_key=(TRAIN_STREAM,)).generate_state(1, dtype=np.uint64)
    return int(state[0])


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 whose outputs look independent for consecutive inputs."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def eval_locations(index: Tensor, image_size: int, patch: int) -> tuple[Tensor, Tensor]:
    """Top-left (rows, cols) of ``random_patch`` in evaluation for the images with dataset indices ``index``.

    A pure function of ``(EVAL_SEED, index)``: a 64-bit hash whose low and high 32 bits, modulo the
    S - p + 1 placements, give the row and the column. An image is evaluated at the same location whatever
    the batch size, its place in the batch or the other images in it.
    """
    keys = index.detach().cpu().numpy().astype(np.uint64)
    seed = _mix64(np.array([EVAL_SEED], dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    h = _mix64(keys + seed)
    span = np.uint64(image_size - patch + 1)
    rows, cols = (h & np.uint64(0xFFFFFFFF)) % span, (h >> np.uint64(32)) % span
    return torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64))


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

    node_keys = ("IMAGE_SIZE", "PROMPT_SIZE")

    def __init__(self, image_size: int = 224, patch: int = 30) -> None:
        super().__init__()
        if not 0 < patch <= image_size:
            raise ValueError(f"patch must satisfy 0 < patch <= image_size, got patch={patch}, image_size={image_size}")
        self.image_size = image_size
        self.patch_size = patch
        self.patch = nn.Parameter(torch.randn(1, 3, patch, patch))

    @classmethod
    def check_cfg(cls, cfg: CfgNode, node: str) -> None:
        """A patch must fit in the image: PROMPT_SIZE <= IMAGE_SIZE."""
        c = cfg.TRAINER[node.split(".")[-1]]
        if c.PROMPT_SIZE > c.IMAGE_SIZE:
            raise ValueError(
                f"{node}.PROMPT_SIZE {c.PROMPT_SIZE} is too large for a patch on {c.IMAGE_SIZE}-px images: the "
                f"patch must fit in the image (PROMPT_SIZE <= IMAGE_SIZE), so at most {c.IMAGE_SIZE}. Lower "
                f"{node}.PROMPT_SIZE (the VP paper's is 30)."
            )

    def locations(self, n: int, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Top-left (rows, cols) of the patch for ``n`` images with dataset indices ``index`` (None: unknown),
        each a CPU int64 tensor of shape (n,)."""
        raise NotImplementedError

    def _check_size(self, x: Tensor) -> None:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")

    def _add_patches(self, x: Tensor, patches: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """(P, N, 3, S, S): images ``x`` (N, 3, S, S) with patch ``patches[i]`` (P, 3, p, p) added at image ``j``'s
        location; only the windows are written, no full-size prompt canvas is built."""
        p, n = self.patch_size, x.shape[0]
        offsets = torch.arange(p, device=x.device)
        image = torch.arange(n, device=x.device)[:, None, None]
        r = (rows.to(x.device)[:, None] + offsets)[:, :, None]
        c = (cols.to(x.device)[:, None] + offsets)[:, None, :]
        out = x.unsqueeze(0).expand(patches.shape[0], -1, -1, -1, -1).clone()
        windows = out.permute(0, 1, 3, 4, 2)  # (P, N, S, S, 3) view of out
        values = patches.permute(0, 2, 3, 1).unsqueeze(1)  # (P, 1, p, p, 3)
        windows[:, image, r, c, :] = windows[:, image, r, c, :] + values
        return out

    def prepare(self, x: Tensor, index: Tensor | None = None) -> PatchContext:
        """The batch and its patch locations (drawn here once per step, shared by every parameter vector);
        ``index``: the images' dataset indices, where known."""
        self._check_size(x)
        if index is not None and tuple(index.shape) != (x.shape[0],):
            raise ValueError(f"expected one dataset index per image, shape ({x.shape[0]},), got {tuple(index.shape)}")
        rows, cols = self.locations(x.shape[0], index)
        return PatchContext(x=x, rows=rows, cols=cols)

    def forward(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        ctx = self.prepare(x, index)
        return self._add_patches(ctx.x, self.patch, ctx.rows, ctx.cols)[0]

    def prompt_indexed(self, x: Tensor, index: Tensor | None) -> Tensor:
        return self(x, index)

    def apply_many(self, ctx: PatchContext, W: Tensor) -> Tensor:
        W = self._check_many(W)
        p = self.patch_size
        with torch.no_grad():
            return self._add_patches(ctx.x, W.reshape(W.shape[0], 3, p, p), ctx.rows, ctx.cols).flatten(0, 1)


@PROMPTER_REGISTRY.register(name="fixed_patch")
class FixedPatchPrompter(_PatchPrompter):
    """VP's fixed patch: a learnable p x p patch added at the top-left corner of every image (3 p^2 values)."""

    def locations(self, n: int, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
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
    from the prompter's generator, seeded with ``training_seed(seed)`` (a stream apart from the optimiser's,
    which ``seed`` itself seeds). The generator state is part of ``state_dict``, so a resumed run draws what
    the uninterrupted run would have drawn. The dataset indices are not used.

    Eval mode: the locations are random too, since the patch was trained to work anywhere and accuracy at
    random locations is what the paper reports, but each image's location is ``eval_locations`` of its
    dataset index, a fixed function of ``EVAL_SEED`` and the index: the same whatever the model, the run's
    seed, the batch size, the image's place in its batch or how often it was evaluated before. Evaluation
    is therefore deterministic, and validating during training leaves the training locations unchanged.
    Without indices (a direct call ``prompter(x)``), image j of the batch is taken as dataset image j.
    """

    def __init__(self, image_size: int = 224, patch: int = 30, seed: int = 0) -> None:
        super().__init__(image_size, patch)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(training_seed(self.seed))

    def locations(self, n: int, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training:
            corners = torch.randint(0, self.image_size - self.patch_size + 1, (2, n), generator=self.generator)
            return corners[0], corners[1]
        return eval_locations(torch.arange(n) if index is None else index, self.image_size, self.patch_size)

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
