"""Zeroth-order optimisers over flat parameter vectors: SPSA, SPSA-GC (BlackVIP), RGF (BAR), their query-saving
variants (Gaussian, orthogonal and guided directions, random subspaces) and per-image prompt-space SPSA.

Randomness comes from a private CPU generator, so CPU and GPU runs draw the same perturbations and a
run resumed from ``state_dict`` continues bit for bit. A new optimiser subclasses ``ZOOptimizer`` and
registers with ``@ZO_REGISTRY.register(name=...)``; the shared contract tests then run on it.
"""

from .base import ZO_REGISTRY, LossOracle, ZOOptimizer, ZOStep, build_zo, clip_grad_norm, zo_names
from .prompt_space import PROMPT_SPACE_KEYS, PromptSpaceSPSA, prompt_directions
from .rgf import RGF, poly_decay_lr, unit_gaussian
from .spsa import (
    SPSA,
    SPSA_KEYS,
    PlainSPSA,
    SPSAGains,
    guided_gaussian,
    orthogonal_gaussian,
    segmented_uniform,
    spsa_gains,
)
from .subspace import Subspace, random_projection

__all__ = [
    "PROMPT_SPACE_KEYS",
    "RGF",
    "SPSA",
    "SPSA_KEYS",
    "ZO_REGISTRY",
    "LossOracle",
    "PlainSPSA",
    "PromptSpaceSPSA",
    "SPSAGains",
    "Subspace",
    "ZOOptimizer",
    "ZOStep",
    "build_zo",
    "clip_grad_norm",
    "guided_gaussian",
    "orthogonal_gaussian",
    "poly_decay_lr",
    "prompt_directions",
    "random_projection",
    "segmented_uniform",
    "spsa_gains",
    "unit_gaussian",
    "zo_names",
]
