"""Methods: the Dassl trainers that wire a target, a prompter and an optimiser, and what users see of them.

A method is a class registered with ``@TRAINER_REGISTRY.register()`` that sets ``label`` (its name in
tables, the quickstart and the benchmarks), ``script_family`` (its folder under ``scripts/``, None when it
has no reproduction scripts) and ``table_order`` (its row among the paper's methods). Every list of methods
that users see is read from the registry through ``registered_methods``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dassl.config import CfgNode
from dassl.engine import TRAINER_REGISTRY
from trainers.prompters import PROMPTER_REGISTRY

from .blackbox import BlackBoxTrainer, perturbed_losses
from .prompted import DEFAULT_TABLE_ORDER, PromptedTargetTrainer

__all__ = [
    "BlackBoxTrainer",
    "MethodInfo",
    "check_prompt_fits_input",
    "DEFAULT_TABLE_ORDER",
    "PromptedTargetTrainer",
    "method_label",
    "perturbed_losses",
    "registered_methods",
]


def check_prompt_fits_input(cfg: CfgNode, node: str) -> None:
    """A prompt added to the input must have its size (``<node>.IMAGE_SIZE`` equals ``INPUT.SIZE``), and the
    chosen design (``<node>.METHOD``) must fit in it (its prompter's ``check_cfg``), before any data loads."""
    c = cfg.TRAINER[node.split(".")[-1]]
    if tuple(cfg.INPUT.SIZE) != (c.IMAGE_SIZE, c.IMAGE_SIZE):
        raise ValueError(
            f"{node}.IMAGE_SIZE {c.IMAGE_SIZE} must equal INPUT.SIZE {tuple(cfg.INPUT.SIZE)}: the prompt is added to "
            f"the input images. Set both to the same side."
        )
    PROMPTER_REGISTRY.get(c.METHOD).check_cfg(cfg, node)


@dataclass(frozen=True)
class MethodInfo:
    """A registered trainer as users see it: registered name, display label, scripts folder, row order."""

    name: str
    label: str
    script_family: str | None
    table_order: int


def _info(name: str, cls: type) -> MethodInfo:
    return MethodInfo(
        name=name,
        label=getattr(cls, "label", "") or name,
        script_family=getattr(cls, "script_family", None),
        table_order=int(getattr(cls, "table_order", DEFAULT_TABLE_ORDER)),
    )


def registered_methods() -> list[MethodInfo]:
    """Every registered trainer (built-in and user plugins), in table order then registration order."""
    from trainers.plugins import load_plugins

    load_plugins()
    infos = [_info(name, cls) for name, cls in TRAINER_REGISTRY.items()]
    return sorted(infos, key=lambda m: m.table_order)


def method_label(name: str) -> str:
    """The display label of trainer ``name`` (the name itself for a trainer that is not registered)."""
    from trainers.plugins import load_plugins

    load_plugins()
    return _info(name, TRAINER_REGISTRY.get(name)).label if name in TRAINER_REGISTRY else name
