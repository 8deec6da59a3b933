"""SPSA with segmented-uniform perturbations, and BlackVIP's gradient-corrected SPSA-GC."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

import torch
from torch import Tensor

from dassl.config import CfgNode
from trainers.config import AT_LEAST_ONE, NON_NEGATIVE, ConfigKey, Range

from .base import ZO_REGISTRY, LossOracle, ZOOptimizer, ZOStep, clip_grad_norm


@dataclass(frozen=True)
class SPSAGains:
    """SPSA's gain sequences ``a_k = a / (k + o)**alpha`` (step size) and ``c_k = c / k**gamma`` (perturbation).

    Configs keep the reference's positional ``SPSA_PARAMS = [o, c, a, alpha, gamma]``; ``from_list`` reads it.
    """

    o: float
    c: float
    a: float
    alpha: float
    gamma: float

    @classmethod
    def from_list(cls, values: Sequence[float]) -> SPSAGains:
        if len(values) != 5:
            raise ValueError(f"spsa_params must be [o, c, a, alpha, gamma], got {list(values)}")
        gains = cls(*(float(v) for v in values))
        if gains.c <= 0 or gains.a <= 0:
            raise ValueError(
                f"SPSA_PARAMS [o, c, a, alpha, gamma] = {list(values)}: the perturbation scale c and the gain a must "
                f"be > 0 (with c = 0 or a = 0 nothing is learned); the reference uses [0.0, 0.001, 40.0, 0.6, 0.1]"
            )
        return gains

    def at(self, k: int) -> tuple[float, float]:
        """``(a_k, c_k)`` at step k >= 1."""
        return self.a / (k + self.o) ** self.alpha, self.c / k**self.gamma


DIRECTION_KINDS = ("segmented", "gaussian", "orthogonal", "guided")
UPDATE_RULES = ("sgd", "adam")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
"""Perturbation direction families of ``SPSA`` (``DIRECTIONS``)."""

SPSA_KEYS = (
    ConfigKey(
        "SPSA_PARAMS",
        [0.0, 0.001, 40.0, 0.6, 0.1],
        "SPSA gains [o, c, a, alpha, gamma]: a_k=a/(k+o)^alpha, c_k=c/k^gamma",
        valid=NON_NEGATIVE,
    ),
    ConfigKey(
        "OPT_TYPE",
        "spsa-gc",
        "zeroth-order optimiser (a registered one)",
        choices=lambda: list(ZO_REGISTRY.registered_names()),
    ),
    ConfigKey("MOMS", 0.9, "SPSA-GC momentum coefficient", valid=Range(0, 1, high_open=True)),
    ConfigKey(
        "SP_AVG", 5, "perturbation directions averaged per step (2 x SP_AVG queries per image)", valid=AT_LEAST_ONE
    ),
    ConfigKey("ONE_SIDED", False, "one-sided SPSA: SP_AVG + 1 queries per image instead of 2 x SP_AVG"),
    ConfigKey(
        "CLIP_NORM",
        0.0,
        "clip the gradient estimate to this L2 norm (0 = off, -1 = sqrt of the dimension searched)",
        valid=Range(0, also=(-1.0,)),
    ),
    ConfigKey(
        "DIRECTIONS",
        "segmented",
        "perturbation directions: segmented (the reference's +-U[0.5, 1)), gaussian, orthogonal (Gaussian, "
        "orthogonalised when SP_AVG > 1) or guided (Gaussian, partly along the last estimate; HISTORY_ALPHA)",
        choices=DIRECTION_KINDS,
    ),
    ConfigKey(
        "HISTORY_ALPHA",
        0.5,
        "guided directions: share of the search covariance that is isotropic; the rest lies along the last estimate",
        valid=Range(0, 1, low_open=True),
    ),
    ConfigKey(
        "UPDATE",
        "sgd",
        "how the estimate moves the parameters: sgd (a_k x the estimate, with the gradient correction for the -gc "
        "OPT_TYPEs: the reference) or adam (a_k x Adam's bias-corrected moments, betas 0.9/0.999, in place of the "
        "correction)",
        choices=UPDATE_RULES,
    ),
    ConfigKey(
        "SUBSPACE_DIM",
        0,
        "search a random subspace of this dimension, w = w0 + P z, P seeded by the run seed (0 = off)",
        valid=NON_NEGATIVE,
    ),
)
"""The keys ``SPSA.from_cfg`` reads, for a method that trains with SPSA to declare under its own node."""


def spsa_gains(k: int, spsa_params: Sequence[float]) -> tuple[float, float]:
    """SPSA gain sequences at step k >= 1 from the positional ``[o, c, a, alpha, gamma]``."""
    return SPSAGains.from_list(spsa_params).at(k)


def segmented_uniform(num: int, dim: int, generator: torch.Generator) -> Tensor:
    """``num`` SPSA directions ``s * u`` with ``u ~ U[0.5, 1)`` and ``s`` uniform in {-1, +1}, shape (num, dim).

    Draw order (reproduce it to recompute the directions): ``torch.rand(num, dim)`` for the magnitudes,
    then ``torch.randint(0, 2, (num, dim))`` for the signs, both from ``generator``.
    """
    magnitude = torch.rand(num, dim, generator=generator) * 0.5 + 0.5
    sign = torch.randint(0, 2, (num, dim), generator=generator).to(torch.float32) * 2.0 - 1.0
    return sign * magnitude


def orthogonal_gaussian(num: int, dim: int, generator: torch.Generator) -> Tensor:
    """``num`` mutually orthogonal directions of norm ``sqrt(dim)``, uniformly oriented, shape (num, dim).

    Draw order: one ``torch.randn(dim, num)``, orthonormalised by QR (signs fixed by R's diagonal, so the result is
    Haar-distributed). ``E[u u^T] = I``, as for a standard Gaussian, so the same estimator applies.
    """
    if num > dim:
        raise ValueError(f"cannot draw {num} orthogonal directions in {dim} dimensions (SP_AVG must be <= {dim})")
    q, r = torch.linalg.qr(torch.randn(dim, num, generator=generator))
    q = q * torch.sign(torch.diagonal(r)).masked_fill(torch.diagonal(r) == 0, 1.0)
    return q.T.contiguous() * math.sqrt(dim)


def guided_gaussian(num: int, dim: int, alpha: float, previous: Tensor | None, generator: torch.Generator) -> Tensor:
    """Guided-ES directions ``sqrt(alpha) xi + sqrt((1 - alpha) dim) zeta u``, with ``u`` the unit last estimate.

    Their covariance is ``alpha I + (1 - alpha) dim u u^T`` (trace ``dim``, as a standard Gaussian's), so the estimate
    ``mean_j slope_j e_j`` is the gradient seen through that covariance: more of the budget along the last estimate.
    Draw order: ``torch.randn(num, dim)`` then ``torch.randn(num)``, drawn even before there is a last estimate
    (then the directions are plain Gaussian).
    """
    xi = torch.randn(num, dim, generator=generator)
    zeta = torch.randn(num, generator=generator)
    if previous is None or not torch.isfinite(previous).all() or previous.norm() == 0:
        return xi
    u = (previous / previous.norm()).to(xi)
    return math.sqrt(alpha) * xi + math.sqrt((1.0 - alpha) * dim) * zeta.unsqueeze(1) * u


class SPSA(ZOOptimizer):
    """SPSA with segmented-uniform perturbations, optionally with BlackVIP's gradient correction (SPSA-GC).

    Two-sided (default) queries ``[w+c_k D_1, w-c_k D_1, w+c_k D_2, ...]`` (2K points); one-sided queries
    ``[w, w+c_k D_1, ..., w+c_k D_K]`` (K+1 points). A step whose losses are not all finite returns ``w``
    unchanged and does not advance ``k`` or the momentum; its perturbations are still consumed from the
    generator, so the next step draws fresh ones.

    The reference's directions (``directions="segmented"``) give the estimate ``mean_j slope_j / D_j`` (element-wise);
    the Gaussian families (``gaussian``, ``orthogonal``, ``guided``) give ``mean_j slope_j D_j``. ``clip_norm`` caps
    the estimate's L2 norm before the gradient correction; ``-1`` caps it at ``sqrt(dim)`` (intrinsic-dimensional
    clipping).
    """

    gradient_correction = True

    def __init__(
        self,
        dim: int,
        spsa_params: Sequence[float],
        sp_avg: int = 5,
        gc: bool | None = None,
        moms: float = 0.9,
        one_sided: bool = False,
        clip_norm: float = 0.0,
        seed: int = 0,
        directions: str = "segmented",
        history_alpha: float = 0.5,
        update: str = "sgd",
    ) -> None:
        super().__init__(dim, seed)
        gains = SPSAGains.from_list(spsa_params)
        if sp_avg < 1:
            raise ValueError(f"sp_avg must be at least 1, got {sp_avg}")
        if directions not in DIRECTION_KINDS:
            raise ValueError(f"directions must be one of {DIRECTION_KINDS}, got {directions!r}")
        if directions == "orthogonal" and sp_avg > dim:
            raise ValueError(f"cannot draw SP_AVG {sp_avg} orthogonal directions in {dim} dimensions")
        if not 0.0 < history_alpha <= 1.0:
            raise ValueError(f"history_alpha must be in (0, 1], got {history_alpha}")
        if update not in UPDATE_RULES:
            raise ValueError(f"update must be one of {UPDATE_RULES}, got {update!r}")
        if clip_norm < 0 and clip_norm != -1:
            raise ValueError(f"clip_norm must be >= 0 or -1 (sqrt of the dimension), got {clip_norm}")
        self.gains = gains
        self.spsa_params = astuple(gains)
        self.sp_avg = sp_avg
        self.gc = self.gradient_correction if gc is None else gc
        self.moms = float(moms)
        self.one_sided = one_sided
        self.clip_norm = math.sqrt(dim) if clip_norm == -1 else float(clip_norm)
        self.directions = directions
        self.history_alpha = float(history_alpha)
        self.queries_per_step = sp_avg + 1 if one_sided else 2 * sp_avg
        self.update = update
        self.momentum: Tensor | None = None
        self.previous: Tensor | None = None
        self.second: Tensor | None = None
        """Adam's second moment (``update="adam"``; its first moment is ``momentum``)."""

    def draw(self) -> Tensor:
        """This step's K directions (K, dim) on the CPU, from the private generator."""
        if self.directions == "segmented":
            return segmented_uniform(self.sp_avg, self.dim, self._generator)
        if self.directions == "gaussian":
            return torch.randn(self.sp_avg, self.dim, generator=self._generator)
        if self.directions == "orthogonal":
            return orthogonal_gaussian(self.sp_avg, self.dim, self._generator)
        previous = None if self.previous is None else self.previous.cpu()
        return guided_gaussian(self.sp_avg, self.dim, self.history_alpha, previous, self._generator)

    def step(self, w: Tensor, oracle: LossOracle) -> ZOStep:
        """One SPSA(-GC) step from ``w``: draw K directions, query the oracle once, update."""
        w = self._as_vector(w)
        k = self.k + 1
        a_k, c_k = self.gains.at(k)
        delta = self.draw().to(w.device)
        losses = self._ask(oracle, self._points(w, delta, c_k))
        if not torch.isfinite(losses).all():
            return self._skipped(w, losses, a_k)
        grad = clip_grad_norm(self._estimate(losses, delta, c_k), self.clip_norm)
        return self._update(w, losses, grad, a_k, k)

    def _update(self, w: Tensor, losses: Tensor, grad: Tensor, a_k: float, k: int) -> ZOStep:
        """Apply the (clipped) estimate: gradient correction if enabled, step ``a_k``, advance ``k``."""
        if self.update == "adam":
            direction = self._adam(grad, k)
        else:
            direction = self._correct(grad) if self.gc else grad
        if self.directions == "guided":
            self.previous = grad.detach().clone()
        self.k = k
        return ZOStep(w=w - a_k * direction, losses=losses, grad=grad, gain=a_k, skipped=False)

    def _points(self, w: Tensor, delta: Tensor, c_k: float) -> Tensor:
        shift = c_k * delta
        if self.one_sided:
            return torch.cat([w.unsqueeze(0), w + shift])
        return torch.stack([w + shift, w - shift], dim=1).reshape(2 * self.sp_avg, self.dim)

    def _estimate(self, losses: Tensor, delta: Tensor, c_k: float) -> Tensor:
        """Mean over directions of the finite-difference slope divided element-wise by the direction (segmented),
        or times the direction (Gaussian families)."""
        if self.one_sided:
            slopes = (losses[1:] - losses[0]) / c_k
        else:
            pairs = losses.view(self.sp_avg, 2)
            slopes = (pairs[:, 0] - pairs[:, 1]) / (2.0 * c_k)
        if self.directions == "segmented":
            return (slopes.unsqueeze(1) / delta).mean(dim=0)
        return (slopes.unsqueeze(1) * delta).mean(dim=0)

    def _correct(self, grad: Tensor) -> Tensor:
        """Gradient correction: ``m = g`` on the first step, else ``moms*m + g``; the update is ``g + moms*m``."""
        if self.momentum is None:
            self.momentum = grad.clone()
        else:
            self.momentum = self.moms * self.momentum.to(grad.device) + grad
        return grad + self.moms * self.momentum

    def _adam(self, grad: Tensor, k: int) -> Tensor:
        """Adam's direction at step k: bias-corrected first moment over the root of the second, element-wise."""
        b1, b2 = ADAM_BETAS
        m = torch.zeros_like(grad) if self.momentum is None else self.momentum.to(grad.device)
        v = torch.zeros_like(grad) if self.second is None else self.second.to(grad.device)
        self.momentum = b1 * m + (1.0 - b1) * grad
        self.second = b2 * v + (1.0 - b2) * grad * grad
        m_hat = self.momentum / (1.0 - b1**k)
        v_hat = self.second / (1.0 - b2**k)
        return m_hat / (v_hat.sqrt() + ADAM_EPS)

    def state_dict(self) -> dict[str, Any]:
        """Step counter, generator state, moments and last estimate: everything needed to resume exactly."""
        momentum = None if self.momentum is None else self.momentum.clone()
        state = {"k": self.k, "generator": self._generator.get_state(), "momentum": momentum}
        if self.directions == "guided":
            state["previous"] = None if self.previous is None else self.previous.clone()
        if self.update == "adam":
            state["second"] = None if self.second is None else self.second.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        momentum = state["momentum"]
        if momentum is not None and momentum.shape != (self.dim,):
            raise ValueError(f"momentum of shape {tuple(momentum.shape)} does not match dim {self.dim}")
        self.k = int(state["k"])
        self._generator.set_state(state["generator"].cpu())
        self.momentum = None if momentum is None else momentum.clone()
        previous = state.get("previous")
        self.previous = None if previous is None else previous.clone()
        second = state.get("second")
        self.second = None if second is None else second.clone()

    @classmethod
    def example(cls, dim: int, seed: int = 0) -> SPSA:
        return cls(dim, [1.0, 0.01, 0.05, 0.602, 0.101], sp_avg=4, seed=seed)

    @classmethod
    def from_cfg(cls, node: CfgNode, dim: int, seed: int, total_steps: int) -> ZOOptimizer:
        """From a method node with ``SPSA_PARAMS``, ``SP_AVG``, ``MOMS``, ``ONE_SIDED``, ``CLIP_NORM``, ``DIRECTIONS``,
        ``HISTORY_ALPHA`` and ``SUBSPACE_DIM`` (> 0: the optimiser searches that many dimensions, see ``Subspace``)."""
        from .subspace import Subspace

        m = int(node.get("SUBSPACE_DIM", 0) or 0)
        if m >= dim:
            raise ValueError(
                f"SUBSPACE_DIM {m} is not smaller than the {dim} learnable values it should compress; "
                f"set it below {dim} (e.g. 256), or to 0 to search all of them"
            )
        opt = cls(m or dim, **cls.node_kwargs(node, seed), history_alpha=float(node.get("HISTORY_ALPHA", 0.5)))
        return Subspace(opt, dim, seed) if m else opt

    @classmethod
    def node_kwargs(cls, node: CfgNode, seed: int) -> dict[str, Any]:
        """The constructor arguments every SPSA variant reads from a method node (gains, directions, update)."""
        return {
            "spsa_params": [float(v) for v in node.SPSA_PARAMS],
            "sp_avg": node.SP_AVG,
            "gc": cls.gradient_correction,
            "moms": node.MOMS,
            "one_sided": node.ONE_SIDED,
            "clip_norm": node.CLIP_NORM,
            "seed": seed,
            "directions": node.get("DIRECTIONS", "segmented"),
            "update": node.get("UPDATE", "sgd"),
        }


@ZO_REGISTRY.register(name="spsa")
class PlainSPSA(SPSA):
    """SPSA without gradient correction (``OPT_TYPE spsa``)."""

    gradient_correction = False


ZO_REGISTRY.register(SPSA, name="spsa-gc")
