"""RGF, the randomised gradient-free estimator of BAR (black-box adversarial reprogramming)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dassl.config import CfgNode

from .base import ZO_REGISTRY, LossOracle, ZOOptimizer, ZOStep


def poly_decay_lr(k: int, total_steps: int, lrs: Sequence[float]) -> float:
    """BAR's polynomial learning rate (power 0.9) at step k >= 1; it reaches ``lrs[1]`` at 90% of the run."""
    init_lr, min_lr = lrs
    horizon = 0.9 * total_steps
    t = min(float(k), horizon)
    return (init_lr - min_lr) * (1.0 - t / horizon) ** 0.9 + min_lr


def unit_gaussian(num: int, dim: int, sigma: float, generator: torch.Generator) -> Tensor:
    """``num`` RGF directions ``u ~ N(0, sigma^2 I)`` scaled to unit L2 norm, shape (num, dim).

    Draw order: one ``torch.randn(num, dim)`` from ``generator``. The normalisation cancels ``sigma``;
    it is kept because BAR's configuration exposes it.
    """
    u = torch.randn(num, dim, generator=generator) * sigma
    return u / u.norm(dim=1, keepdim=True)


@ZO_REGISTRY.register(name="rgf")
class RGF(ZOOptimizer):
    """Randomised gradient-free estimator of BAR: one-sided, unit-norm Gaussian directions, no momentum.

    Queries ``[w, w+beta u_1, ..., w+beta u_q]`` (q+1 points); ``g = sum_j (d/q)(L_j - L_0)/beta u_j``;
    ``w <- w - lr_k g`` with ``lr_k = poly_decay_lr(k, total_steps, lrs)``. A step with non-finite losses
    returns ``w`` unchanged and does not advance ``k``; its directions are still consumed from the generator.
    """

    def __init__(
        self,
        dim: int,
        sp_avg: int = 5,
        smooth: float = 0.01,
        sigma: float = 1.0,
        lrs: Sequence[float] = (10.0, 0.1),
        total_steps: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, seed)
        if sp_avg < 1:
            raise ValueError(f"sp_avg must be at least 1, got {sp_avg}")
        if len(lrs) != 2:
            raise ValueError(f"lrs must be [init_lr, min_lr], got {list(lrs)}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}")
        self.sp_avg = sp_avg
        self.smooth = float(smooth)
        self.sigma = float(sigma)
        self.lrs = (float(lrs[0]), float(lrs[1]))
        self.total_steps = total_steps
        self.queries_per_step = sp_avg + 1

    def step(self, w: Tensor, oracle: LossOracle) -> ZOStep:
        """One RGF step from ``w``: draw q directions, query the oracle once, update."""
        w = self._as_vector(w)
        k = self.k + 1
        lr = poly_decay_lr(k, self.total_steps, self.lrs)
        u = unit_gaussian(self.sp_avg, self.dim, self.sigma, self._generator).to(w.device)
        points = torch.cat([w.unsqueeze(0), w + self.smooth * u])
        losses = self._ask(oracle, points)
        if not torch.isfinite(losses).all():
            return self._skipped(w, losses, lr)
        weights = (self.dim / self.sp_avg) * (losses[1:] - losses[0]) / self.smooth
        grad = (weights.unsqueeze(1) * u).sum(dim=0)
        self.k = k
        return ZOStep(w=w - lr * grad, losses=losses, grad=grad, gain=lr, skipped=False)

    def state_dict(self) -> dict[str, Any]:
        """Step counter and generator state: everything needed to resume exactly."""
        return {"k": self.k, "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        self.k = int(state["k"])
        self._generator.set_state(state["generator"].cpu())

    @classmethod
    def example(cls, dim: int, seed: int = 0) -> RGF:
        return cls(dim, sp_avg=4, smooth=0.01, lrs=(0.05, 0.01), total_steps=200, seed=seed)

    @classmethod
    def from_cfg(cls, node: CfgNode, dim: int, seed: int, total_steps: int) -> RGF:
        """From BAR's node: ``SP_AVG``, ``SMOOTH``, ``SIMGA`` (sic, the direction scale) and ``LRS``."""
        return cls(
            dim,
            sp_avg=node.SP_AVG,
            smooth=node.SMOOTH,
            sigma=node.SIMGA,
            lrs=[float(v) for v in node.LRS],
            total_steps=total_steps,
            seed=seed,
        )
