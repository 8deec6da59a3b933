"""Zeroth-order optimisers over flat parameter vectors: SPSA, SPSA-GC (BlackVIP) and RGF (BAR).

Randomness comes from a private CPU generator, so CPU and GPU runs draw the same perturbations and a
run resumed from ``state_dict`` continues bit for bit. A new optimiser subclasses ``ZOOptimizer`` and
registers with ``@ZO_REGISTRY.register(name=...)``; the shared contract tests then run on it.
"""

from .base import ZO_REGISTRY, LossOracle, ZOOptimizer, ZOStep, build_zo, clip_grad_norm, zo_names
from .rgf import RGF, poly_decay_lr, unit_gaussian
from .spsa import SPSA, SPSA_KEYS, PlainSPSA, SPSAGains, segmented_uniform, spsa_gains

__all__ = [
    "RGF",
    "SPSA",
    "SPSA_KEYS",
    "ZO_REGISTRY",
    "LossOracle",
    "PlainSPSA",
    "SPSAGains",
    "ZOOptimizer",
    "ZOStep",
    "build_zo",
    "clip_grad_norm",
    "poly_decay_lr",
    "segmented_uniform",
    "spsa_gains",
    "unit_gaussian",
    "zo_names",
]
