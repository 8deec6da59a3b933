"""The zeroth-order optimiser role: the public base class ``ZOOptimizer``, its registry and shared maths.

An optimiser asks a loss oracle for the losses of all its query points at once (one call per step), so the
caller can send every perturbed prompt to the black box in as few target calls as possible, then returns
the update. It never sees the prompter, the target or the data: pure tensors in, tensors out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dassl.config import CfgNode
from dassl.utils import Registry

LossOracle = Callable[[Tensor], Tensor]
"""Maps a batch of parameter vectors ``W`` of shape (P, d) to their losses, shape (P,)."""


@dataclass
class ZOStep:
    """What one optimiser step did, for logging.

    ``w`` is the new parameter vector (the input unchanged when ``skipped``), ``losses`` the oracle's
    answer in query order, ``grad`` the gradient estimate used (zeros when skipped), ``gain`` the step size.
    """

    w: Tensor
    losses: Tensor
    grad: Tensor
    gain: float
    skipped: bool


def clip_grad_norm(grad: Tensor, max_norm: float) -> Tensor:
    """Scale ``grad`` down to L2 norm ``max_norm`` when it is larger; ``max_norm <= 0`` leaves it as is."""
    if max_norm <= 0:
        return grad
    norm = grad.norm()
    if norm > max_norm:
        return grad * (max_norm / norm)
    return grad


class ZOOptimizer:
    """Base of every zeroth-order optimiser: a flat parameter vector in, one oracle call per step, the update out.

    Subclasses set ``queries_per_step`` (parameter vectors per oracle call) and implement ``step``,
    ``state_dict`` and ``load_state_dict`` (everything needed to resume bit for bit), and ``from_cfg``
    (construction from a method's config node). ``k`` counts completed steps; randomness comes only from
    the private CPU generator ``_generator``, so CPU and GPU runs draw the same perturbations.
    """

    queries_per_step: int

    per_image = False
    """True for optimisers stepped with ``step_prompts`` (per-image prompt-space estimates, see ``prompt_space``)."""

    def __init__(self, dim: int, seed: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.k = 0
        self._generator = torch.Generator(device="cpu")
        self._generator.manual_seed(seed)

    def _as_vector(self, w: Tensor) -> Tensor:
        """Detached float32 view of ``w``, checked to be (dim,)."""
        if w.shape != (self.dim,):
            raise ValueError(f"expected a parameter vector of shape ({self.dim},), got {tuple(w.shape)}")
        return w.detach().to(torch.float32)

    def _ask(self, oracle: LossOracle, points: Tensor) -> Tensor:
        """Call the oracle once and return its losses as float32 (P,) on the points' device."""
        losses = oracle(points)
        if losses.shape != (points.shape[0],):
            raise ValueError(
                f"the loss oracle must return shape ({points.shape[0]},) for {points.shape[0]} points, "
                f"got {tuple(losses.shape)}"
            )
        return losses.detach().to(device=points.device, dtype=torch.float32)

    def _skipped(self, w: Tensor, losses: Tensor, gain: float) -> ZOStep:
        return ZOStep(w=w, losses=losses, grad=torch.zeros_like(w), gain=gain, skipped=True)

    def step(self, w: Tensor, oracle: LossOracle) -> ZOStep:
        """One optimisation step from ``w``: query the oracle once with all points, return the update."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (step counter, generator state, buffers)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        raise NotImplementedError

    @classmethod
    def example(cls, dim: int, seed: int = 0) -> ZOOptimizer:
        """An instance with gains that suit a small quadratic, for the contract tests every optimiser must pass."""
        raise NotImplementedError(f"{cls.__name__} does not define example")

    @classmethod
    def from_cfg(cls, node: CfgNode, dim: int, seed: int, total_steps: int) -> ZOOptimizer:
        """Build from a method's config node (e.g. ``TRAINER.VPOUR``) for a ``dim``-vector and a run of ``total_steps``."""
        raise NotImplementedError(f"{cls.__name__} does not define from_cfg")


ZO_REGISTRY = Registry("ZO_OPTIMIZER")
"""Zeroth-order optimisers by the name a config selects them with (``OPT_TYPE``): ``spsa``, ``spsa-gc``, ``rgf``."""


def zo_names() -> list[str]:
    """Registered optimiser names (the allowed ``OPT_TYPE`` values)."""
    return ZO_REGISTRY.registered_names()


def build_zo(name: str, node: CfgNode, dim: int, seed: int, total_steps: int) -> ZOOptimizer:
    """The optimiser registered as ``name``, built from ``node``."""
    return ZO_REGISTRY.get(name).from_cfg(node, dim=dim, seed=seed, total_steps=total_steps)
