"""Per-image zeroth-order estimates in prompt space, carried to the prompter's parameters by the local chain rule.

Only the target is a black box; the prompter (BlackVIP's Coordinator) is ours and differentiable. So instead of
perturbing its d parameters, perturb each image's prompt: for image i with prompt ``p_i = f(w; x_i)`` draw q
directions ``v_ij`` in a small fixed basis of prompt space (the low-frequency DCT, or all pixels), query the target at
``p_i + c v_ij`` (and at ``p_i``, or at ``p_i - c v_ij``), and form ``G_i = mean_j slope_ij v_ij``, an estimate of
``dL/dp_i`` as seen through the basis (``E[v v^T]`` is the projector onto it). The loss of the batch is
``L = mean_i l_i(p_i)``, so ``dL/dw = sum_i (dp_i/dw)^T dL/dp_i``: one backward pass of ``f`` with ``G / N`` as the
output gradient turns the N per-image estimates into an estimate of ``dL/dw``. Every image contributes its own
directional derivative in an m-dimensional space (m = 3 f^2, 147 for f = 7) instead of K shared ones in d = 10^4
dimensions, for (q + 1) queries per image (one-sided) or 2q (two-sided).

The update is SPSA-GC's (gains ``a_k``, ``c_k``, momentum correction, optional clipping), so the optimiser's state and
resumption are SPSA's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
from torch import Tensor

from dassl.config import CfgNode
from trainers.config import AT_LEAST_ONE, NON_NEGATIVE, ConfigKey

from .base import ZO_REGISTRY, LossOracle, ZOStep, clip_grad_norm
from .spsa import SPSA

PromptsOf = Callable[[Tensor], Tensor]
"""Maps the flat parameter vector ``w`` (requires grad) to the batch's prompts (N, C, H, W), differentiably."""

ImageLossOracle = Callable[[Tensor], Tensor]
"""Maps Q sets of prompts for the batch, (Q, N, C, H, W), to each image's loss, (Q, N), in one request."""

BASES = ("dct", "pixel")

PROMPT_SPACE_KEYS = (
    ConfigKey(
        "PROMPT_BASIS",
        "dct",
        "prompt-spsa: directions per image in the low-frequency DCT basis (dct) or in all prompt pixels (pixel)",
        choices=BASES,
    ),
    ConfigKey(
        "PROMPT_FREQ",
        7,
        "prompt-spsa, dct basis: keep the PROMPT_FREQ x PROMPT_FREQ lowest frequencies of each channel",
        valid=AT_LEAST_ONE,
    ),
    ConfigKey(
        "PROMPT_FLOOR",
        0.0,
        "prompt-spsa, dct basis: variance given to every prompt value on top of the low frequencies (0 = none); "
        "above 0 the estimate sees the whole gradient (covariance P_low + PROMPT_FLOOR x I), so it has no bias",
        valid=NON_NEGATIVE,
    ),
)


@lru_cache(maxsize=16)
def dct_rows(n: int, f: int) -> Tensor:
    """The first ``f`` rows of the orthonormal DCT-II matrix of size n, shape (f, n)."""
    k = torch.arange(f, dtype=torch.float64).unsqueeze(1)
    x = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    rows = math.sqrt(2.0 / n) * torch.cos(math.pi * (x + 0.5) * k / n)
    rows[0] /= math.sqrt(2.0)
    return rows.float()


def prompt_directions(
    q: int,
    shape: tuple[int, ...],
    basis: str,
    freq: int,
    generator: torch.Generator,
    floor: float = 0.0,
    device: torch.device | str = "cpu",
) -> Tensor:
    """q directions for each of the N prompts of ``shape`` (N, C, H, W): shape (q, N, C, H, W), on ``device``.

    Every draw comes from the CPU ``generator`` (so any device gets the same directions); the ``dct`` basis draws
    only its q x N x C x freq^2 coefficients there and maps them to pixels on ``device``.

    ``pixel``: standard Gaussian in every prompt value (``torch.randn(q, N, C, H, W)``). ``dct``: a standard Gaussian
    over the ``freq x freq`` lowest 2-D DCT frequencies of each channel (``torch.randn(q, N, C, freq, freq)``),
    mapped to pixels by the orthonormal inverse DCT; its covariance is the projector onto those frequencies. With
    ``floor > 0`` a standard Gaussian over every prompt value times ``sqrt(floor)`` is added (drawn next), so the
    covariance is ``P_low + floor I``.
    """
    n, c, h, w = shape
    if basis == "pixel":
        return torch.randn(q, n, c, h, w, generator=generator).to(device)
    if basis != "dct":
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    fh, fw = min(freq, h), min(freq, w)
    coeffs = torch.randn(q, n, c, fh, fw, generator=generator).to(device)
    low = torch.einsum("kh,qnckl,lw->qnchw", dct_rows(h, fh).to(device), coeffs, dct_rows(w, fw).to(device))
    if floor <= 0:
        return low
    return low + math.sqrt(floor) * torch.randn(q, n, c, h, w, generator=generator).to(device)


class PromptSpaceSPSA(SPSA):
    """SPSA-GC whose estimate is built from per-image prompt-space slopes and the prompter's own backward pass.

    ``sp_avg`` is q, the directions per image per step. It is stepped with ``step_prompts``; the parameter-space
    ``step`` does not apply (the trainer checks ``per_image``).
    """

    per_image = True

    def __init__(self, dim: int, *args, basis: str = "dct", freq: int = 7, floor: float = 0.0, **kwargs) -> None:
        super().__init__(dim, *args, **kwargs)
        if basis not in BASES:
            raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
        if freq < 1:
            raise ValueError(f"freq must be at least 1, got {freq}")
        if self.directions != "segmented":
            raise ValueError("prompt-space SPSA draws its own directions per image; leave DIRECTIONS at segmented")
        if floor < 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.basis = basis
        self.freq = int(freq)
        self.floor = float(floor)

    def step(self, w: Tensor, oracle: LossOracle) -> ZOStep:
        raise TypeError(
            "prompt-space SPSA needs the prompts and per-image losses: call step_prompts (the black-box trainers do)"
        )

    def step_prompts(self, w: Tensor, prompts_of: PromptsOf, oracle: ImageLossOracle) -> ZOStep:
        """One step from ``w``: prompts by ``prompts_of``, every perturbed prompt set in one oracle call, update.

        ``ZOStep.losses`` holds the mean loss over images of each queried prompt set (q + 1 or 2q of them).
        """
        w = self._as_vector(w)
        k = self.k + 1
        a_k, c_k = self.gains.at(k)
        leaf = w.clone().requires_grad_(True)
        with torch.enable_grad():
            prompts = prompts_of(leaf)
        base = prompts.detach()
        shape = tuple(base.shape)
        V = prompt_directions(self.sp_avg, shape, self.basis, self.freq, self._generator, self.floor, base.device)
        V = V.to(base.dtype)
        shift = c_k * V
        if self.one_sided:
            points = torch.cat([base.unsqueeze(0), base + shift])
        else:
            points = torch.stack([base + shift, base - shift], dim=1).flatten(0, 1)
        losses = oracle(points)
        if losses.shape != points.shape[:2]:
            raise ValueError(
                f"the per-image loss oracle must return shape {tuple(points.shape[:2])} for {points.shape[0]} prompt "
                f"sets of {points.shape[1]} images, got {tuple(losses.shape)}"
            )
        losses = losses.detach().to(device=base.device, dtype=torch.float32)
        set_losses = losses.mean(dim=1)
        if not torch.isfinite(losses).all():
            return self._skipped(w, set_losses, a_k)
        if self.one_sided:
            slopes = (losses[1:] - losses[0]) / c_k
        else:
            pairs = losses.view(self.sp_avg, 2, -1)
            slopes = (pairs[:, 0] - pairs[:, 1]) / (2.0 * c_k)
        per_image = (slopes.view(*slopes.shape, 1, 1, 1).to(V.dtype) * V).mean(dim=0)
        (grad,) = torch.autograd.grad(prompts, leaf, per_image / base.shape[0])
        grad = clip_grad_norm(grad.detach().to(torch.float32), self.clip_norm)
        return self._update(w, set_losses, grad, a_k, k)

    @classmethod
    def example(cls, dim: int, seed: int = 0) -> PromptSpaceSPSA:
        return cls(dim, [1.0, 0.01, 0.05, 0.602, 0.101], sp_avg=1, one_sided=True, basis="pixel", seed=seed)

    @classmethod
    def from_cfg(cls, node: CfgNode, dim: int, seed: int, total_steps: int) -> PromptSpaceSPSA:
        """SPSA's keys (``SP_AVG`` is q, directions per image) plus ``PROMPT_BASIS``, ``PROMPT_FREQ`` and
        ``PROMPT_FLOOR``."""
        if int(node.get("SUBSPACE_DIM", 0) or 0):
            raise ValueError("SUBSPACE_DIM applies to parameter-space SPSA; prompt-space SPSA searches prompt space")
        return cls(
            dim,
            **cls.node_kwargs(node, seed),
            basis=node.get("PROMPT_BASIS", "dct"),
            freq=int(node.get("PROMPT_FREQ", 7)),
            floor=float(node.get("PROMPT_FLOOR", 0.0)),
        )


ZO_REGISTRY.register(PromptSpaceSPSA, name="prompt-spsa-gc")


@ZO_REGISTRY.register(name="prompt-spsa")
class PlainPromptSpaceSPSA(PromptSpaceSPSA):
    """Prompt-space SPSA without gradient correction (``OPT_TYPE prompt-spsa``)."""

    gradient_correction = False
