"""A random low-dimensional search space for any zeroth-order optimiser: ``w = w0 + P z``, ``z`` in R^m.

``P`` (d x m) has independent N(0, 1/m) entries drawn from a generator seeded by the run seed, so it is never
stored: a checkpoint keeps ``w0``, the inner optimiser's state and a digest of ``P`` that is checked on resume.
With this scale a perturbation ``c u`` of ``z`` (``u`` of norm about ``sqrt(m)``) moves ``w`` by about ``c sqrt(d)``,
as the same ``c`` does in the full space, and an estimate of ``P^T g`` maps back to a step of the full-space size,
so the full-space gains ``a`` and ``c`` keep their meaning.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import LossOracle, ZOOptimizer, ZOStep

PROJECTION_SEED_OFFSET = 7_654_321
"""Added to the run seed for the projection's generator, so ``P`` never shares draws with the directions."""


def random_projection(dim: int, m: int, seed: int) -> Tensor:
    """The (dim, m) matrix with N(0, 1/m) entries for ``seed``: one ``torch.randn(dim, m)`` from its own generator."""
    generator = torch.Generator(device="cpu").manual_seed(seed + PROJECTION_SEED_OFFSET)
    return torch.randn(dim, m, generator=generator) / m**0.5


def projection_digest(P: Tensor) -> list[float]:
    """Three float64 sums that change if any entry of ``P`` does (checked when a checkpoint is resumed)."""
    P64 = P.double()
    weights = torch.arange(1, P.numel() + 1, dtype=torch.float64).view_as(P64)
    return [float(P64.sum()), float((P64 * weights).sum()), float(P64.abs().sum())]


class Subspace(ZOOptimizer):
    """Runs ``inner`` (an optimiser over R^m) on ``z`` with ``w = w0 + P z``; ``w0`` is the first ``w`` it sees.

    Each step asks the oracle about full-space points ``w0 + P z_i`` for the inner optimiser's points ``z_i``; the
    step's ``grad`` is the estimate mapped to the full space, ``P g_z``.
    """

    def __init__(self, inner: ZOOptimizer, dim: int, seed: int) -> None:
        super().__init__(dim, seed)
        self.inner = inner
        self.m = inner.dim
        self.queries_per_step = inner.queries_per_step
        self.projection = random_projection(dim, self.m, seed)
        self.w0: Tensor | None = None
        self.z = torch.zeros(self.m)

    def _full(self, Z: Tensor) -> Tensor:
        assert self.w0 is not None
        P = self.projection.to(Z.device)
        return self.w0.to(Z.device) + Z @ P.T

    def step(self, w: Tensor, oracle: LossOracle) -> ZOStep:
        w = self._as_vector(w)
        if self.w0 is None:
            self.w0 = w.detach().clone()
        z = self.z.to(w.device)
        result = self.inner.step(z, lambda Z: oracle(self._full(Z)))
        self.k = self.inner.k
        if result.skipped:
            return self._skipped(w, result.losses, result.gain)
        self.z = result.w.detach().clone()
        P = self.projection.to(w.device)
        return ZOStep(
            w=self._full(self.z.unsqueeze(0))[0],
            losses=result.losses,
            grad=P @ result.grad,
            gain=result.gain,
            skipped=False,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "inner": self.inner.state_dict(),
            "w0": None if self.w0 is None else self.w0.clone(),
            "z": self.z.clone(),
            "projection_digest": projection_digest(self.projection),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("projection_digest")
        if saved is not None and saved != projection_digest(self.projection):
            raise ValueError(
                "The subspace projection P rebuilt from the run seed differs from the one this checkpoint was trained "
                "in (torch's random generator changed?); the run cannot be resumed in the same subspace. Start it again."
            )
        self.inner.load_state_dict(state["inner"])
        self.k = self.inner.k
        self.w0 = None if state["w0"] is None else state["w0"].clone()
        self.z = state["z"].clone()
