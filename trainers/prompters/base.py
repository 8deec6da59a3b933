"""The prompter role: the public base ``Prompter``, its registry, and the pixel-range helpers prompters share.

A prompter maps normalised images to prompted normalised images and exposes its learnable parameters as
one flat float32 vector, so white-box training can back-propagate through ``forward`` and black-box
training can render many candidate vectors at once with ``prepare`` (once per batch) + ``apply_many``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn

from dassl.config import CfgNode
from dassl.utils import Registry

Ctx = TypeVar("Ctx")
"""What ``prepare`` computes once per batch and ``apply_many`` reuses for every parameter vector."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def channel_stats(values: Sequence[float], like: Tensor) -> Tensor:
    """Per-channel constants shaped (1, C, 1, 1) on ``like``'s device and dtype."""
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def clip_to_pixel_range(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Clamp a normalised image batch per channel to ``[(0-mean)/std, (1-mean)/std]``, i.e. pixels to [0, 1]."""
    m, s = channel_stats(mean, x), channel_stats(std, x)
    return torch.clamp(x, min=(0.0 - m) / s, max=(1.0 - m) / s)


class Prompter(nn.Module, Generic[Ctx]):
    """Base of all prompters: flat-vector access to the learnable parameters and batched rendering.

    Subclasses implement ``forward``, ``prepare`` and ``apply_many``; they narrow
    ``learnable_named_parameters`` when they hold parameters that are not learned (a frozen encoder).
    ``node_keys`` names the keys of a method's node that ``from_cfg`` reads, so a method offers in its
    ``METHOD`` key only the prompters it can build (``prompters_reading``).
    """

    node_keys: ClassVar[tuple[str, ...]] = ()
    """The keys of the method's config node (e.g. ``TRAINER.VPOUR``) that ``from_cfg`` reads."""

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

    def prompt_indexed(self, x: Tensor, index: Tensor | None) -> Tensor:
        """``self(x)`` for a batch whose images have dataset indices ``index`` (None: unknown); a prompter whose
        prompt depends on which image it is (``random_patch`` in evaluation) overrides it. Evaluation calls it."""
        return self(x)

    def prepare(self, x: Tensor) -> Ctx:
        """Everything about the batch ``x`` that does not depend on the learnable parameters."""
        raise NotImplementedError

    supports_prompt_space = False
    """True when the output is ``render_prompts(ctx, prompts(ctx, w))`` with ``prompts`` differentiable in ``w``:
    then per-image prompt-space estimators (``OPT_TYPE prompt-spsa-gc``) can train it."""

    def prompts(self, ctx: Ctx, w: Tensor) -> Tensor:
        """The batch's prompts (N, C, H, W) for the flat vector ``w``, differentiable in ``w``."""
        raise NotImplementedError(f"{type(self).__name__} has no prompt space")

    def render_prompts(self, ctx: Ctx, prompts: Tensor) -> Tensor:
        """Prompted images for Q sets of the batch's prompts (Q, N, C, H, W): (Q*N, 3, S, S), set by set."""
        raise NotImplementedError(f"{type(self).__name__} has no prompt space")

    def apply_many(self, ctx: Ctx, W: Tensor) -> Tensor:
        """Prompted images for each row of W (P, d): (P*N, 3, S, S), all N images of W[0] first."""
        raise NotImplementedError

    @classmethod
    def example(cls) -> Prompter:
        """A small instance for the contract tests that every registered prompter must pass."""
        raise NotImplementedError(f"{cls.__name__} does not define example")

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> Prompter:
        """Build from the full config and the method's node (e.g. ``TRAINER.VPOUR``), which holds its sizes."""
        raise NotImplementedError(f"{cls.__name__} does not define from_cfg")

    @classmethod
    def check_cfg(cls, cfg: CfgNode, node: str) -> None:
        """Raise ValueError, naming the key and how to fix it, when the values under ``node`` (e.g.
        ``"TRAINER.VPOUR"``) cannot build this prompter; the method's config check calls it before any data loads."""


PROMPTER_REGISTRY = Registry("PROMPTER")
"""Prompters by the name a method's ``METHOD`` key selects them with (``padding``, ``reprogramming``, ...)."""


def prompter_names() -> list[str]:
    """Registered prompter names."""
    return PROMPTER_REGISTRY.registered_names()


def prompters_reading(*keys: str) -> Callable[[], list[str]]:
    """A ``METHOD`` key's choices for a method whose node has ``keys``: the registered prompters whose
    ``node_keys`` it has (read when the config is checked, so plugins' prompters count)."""

    def names() -> list[str]:
        return [name for name, cls in PROMPTER_REGISTRY.items() if set(cls.node_keys) <= set(keys)]

    return names


def build_prompter(name: str, cfg: CfgNode, node: CfgNode) -> Prompter:
    """The prompter registered as ``name``, built from ``cfg`` and the method's config node."""
    cls = PROMPTER_REGISTRY.get(name)
    try:
        return cls.from_cfg(cfg, node)
    except AttributeError as err:
        raise ValueError(
            f"Prompter {name!r} ({cls.__name__}) needs a config key this method does not have ({err}); "
            f"choose a prompter this method supports for its METHOD key."
        ) from err
