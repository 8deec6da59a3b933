"""Zeroth-order optimisers over flat parameter vectors: SPSA, SPSA-GC (BlackVIP) and RGF (BAR).

Each optimiser asks a loss oracle for the losses of all its query points at once, so the caller can
send every perturbed prompt to the black box in as few calls as possible, then returns the update.
Randomness comes from a private CPU generator, so CPU and GPU runs draw the same perturbations and a
run resumed from ``state_dict`` continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

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


def spsa_gains(k: int, spsa_params: Sequence[float]) -> tuple[float, float]:
    """SPSA gain sequences at step k >= 1: ``a_k = a/(k+o)**alpha`` and ``c_k = c/k**gamma``."""
    o, c, a, alpha, gamma = spsa_params
    return a / (k + o) ** alpha, c / k**gamma


def poly_decay_lr(k: int, total_steps: int, lrs: Sequence[float]) -> float:
    """BAR's polynomial learning rate (power 0.9) at step k >= 1; it reaches ``lrs[1]`` at 90% of the run."""
    init_lr, min_lr = lrs
    horizon = 0.9 * total_steps
    t = min(float(k), horizon)
    return (init_lr - min_lr) * (1.0 - t / horizon) ** 0.9 + min_lr


def segmented_uniform(num: int, dim: int, generator: torch.Generator) -> Tensor:
    """``num`` SPSA directions ``s * u`` with ``u ~ U[0.5, 1)`` and ``s`` uniform in {-1, +1}, shape (num, dim).

    Draw order (reproduce it to recompute the directions): ``torch.rand(num, dim)`` for the magnitudes,
    then ``torch.randint(0, 2, (num, dim))`` for the signs, both from ``generator``.
    """
    magnitude = torch.rand(num, dim, generator=generator) * 0.5 + 0.5
    sign = torch.randint(0, 2, (num, dim), generator=generator).to(torch.float32) * 2.0 - 1.0
    return sign * magnitude


def unit_gaussian(num: int, dim: int, sigma: float, generator: torch.Generator) -> Tensor:
    """``num`` RGF directions ``u ~ N(0, sigma^2 I)`` scaled to unit L2 norm, shape (num, dim).

    Draw order: one ``torch.randn(num, dim)`` from ``generator``. The normalisation cancels ``sigma``;
    it is kept because BAR's configuration exposes it.
    """
    u = torch.randn(num, dim, generator=generator) * sigma
    return u / u.norm(dim=1, keepdim=True)


def clip_grad_norm(grad: Tensor, max_norm: float) -> Tensor:
    """Scale ``grad`` down to L2 norm ``max_norm`` when it is larger; ``max_norm <= 0`` leaves it as is."""
    if max_norm <= 0:
        return grad
    norm = grad.norm()
    if norm > max_norm:
        return grad * (max_norm / norm)
    return grad


class _ZOBase:
    """Shared bookkeeping: the step counter, the private generator and the single oracle call."""

    queries_per_step: int

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


class SPSA(_ZOBase):
    """SPSA with segmented-uniform perturbations, optionally with BlackVIP's gradient correction (SPSA-GC).

    Two-sided (default) queries ``[w+c_k D_1, w-c_k D_1, w+c_k D_2, ...]`` (2K points); one-sided queries
    ``[w, w+c_k D_1, ..., w+c_k D_K]`` (K+1 points). A step whose losses are not all finite returns ``w``
    unchanged and does not advance ``k`` or the momentum; its perturbations are still consumed from the
    generator, so the next step draws fresh ones.
    """

    def __init__(
        self,
        dim: int,
        spsa_params: Sequence[float],
        sp_avg: int = 5,
        gc: bool = True,
        moms: float = 0.9,
        one_sided: bool = False,
        clip_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, seed)
        if len(spsa_params) != 5:
            raise ValueError(f"spsa_params must be [o, c, a, alpha, gamma], got {list(spsa_params)}")
        if sp_avg < 1:
            raise ValueError(f"sp_avg must be at least 1, got {sp_avg}")
        self.spsa_params = tuple(float(v) for v in spsa_params)
        self.sp_avg = sp_avg
        self.gc = gc
        self.moms = float(moms)
        self.one_sided = one_sided
        self.clip_norm = float(clip_norm)
        self.queries_per_step = sp_avg + 1 if one_sided else 2 * sp_avg
        self.momentum: Tensor | None = None

    def step(self, w: Tensor, oracle: LossOracle) -> ZOStep:
        """One SPSA(-GC) step from ``w``: draw K directions, query the oracle once, update."""
        w = self._as_vector(w)
        k = self.k + 1
        a_k, c_k = spsa_gains(k, self.spsa_params)
        delta = segmented_uniform(self.sp_avg, self.dim, self._generator).to(w.device)
        losses = self._ask(oracle, self._points(w, delta, c_k))
        if not torch.isfinite(losses).all():
            return self._skipped(w, losses, a_k)
        grad = clip_grad_norm(self._estimate(losses, delta, c_k), self.clip_norm)
        direction = self._correct(grad) if self.gc else grad
        self.k = k
        return ZOStep(w=w - a_k * direction, losses=losses, grad=grad, gain=a_k, skipped=False)

    def _points(self, w: Tensor, delta: Tensor, c_k: float) -> Tensor:
        shift = c_k * delta
        if self.one_sided:
            return torch.cat([w.unsqueeze(0), w + shift])
        return torch.stack([w + shift, w - shift], dim=1).reshape(2 * self.sp_avg, self.dim)

    def _estimate(self, losses: Tensor, delta: Tensor, c_k: float) -> Tensor:
        """Mean over directions of the finite-difference slope divided element-wise by the direction."""
        if self.one_sided:
            slopes = (losses[1:] - losses[0]) / c_k
        else:
            pairs = losses.view(self.sp_avg, 2)
            slopes = (pairs[:, 0] - pairs[:, 1]) / (2.0 * c_k)
        return (slopes.unsqueeze(1) / delta).mean(dim=0)

    def _correct(self, grad: Tensor) -> Tensor:
        """Gradient correction: ``m = g`` on the first step, else ``moms*m + g``; the update is ``g + moms*m``."""
        if self.momentum is None:
            self.momentum = grad.clone()
        else:
            self.momentum = self.moms * self.momentum.to(grad.device) + grad
        return grad + self.moms * self.momentum

    def state_dict(self) -> dict[str, Any]:
        """Step counter, generator state and momentum buffer: everything needed to resume exactly."""
        momentum = None if self.momentum is None else self.momentum.clone()
        return {"k": self.k, "generator": self._generator.get_state(), "momentum": momentum}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        momentum = state["momentum"]
        if momentum is not None and momentum.shape != (self.dim,):
            raise ValueError(f"momentum of shape {tuple(momentum.shape)} does not match dim {self.dim}")
        self.k = int(state["k"])
        self._generator.set_state(state["generator"].cpu())
        self.momentum = None if momentum is None else momentum.clone()


class RGF(_ZOBase):
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
