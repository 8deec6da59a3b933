"""Stopping on evidence: evaluate on the few-shot validation split every N steps and stop when it stops improving.

Every validation image is a query and is counted (under "val"), so the check has a price: ``EVERY`` steps apart
it costs ``len(val)`` images per ``EVERY x queries per step``. The best validation state of the prompter is kept
and deployed for the final test, whether training stops on the plateau or runs to the end of its schedule.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from trainers.config import NON_NEGATIVE, ConfigKey, Range, declare_keys

KEYS = declare_keys(
    "TRAIN",
    ConfigKey(
        "PLATEAU_EVERY",
        0,
        "black-box trainers: evaluate on the validation split every this many steps (its queries counted) and "
        "stop on a plateau, deploying the best validation state (0 = off)",
        valid=NON_NEGATIVE,
    ),
    ConfigKey(
        "PLATEAU_PATIENCE",
        4,
        "validation evaluations without an improvement of more than PLATEAU_MIN_DELTA before training stops",
        valid=Range(1),
    ),
    ConfigKey("PLATEAU_MIN_DELTA", 0.0, "accuracy points a validation result must gain to count", valid=NON_NEGATIVE),
)


class Plateau:
    """Tracks validation accuracy every ``every`` steps; ``update`` says whether to stop."""

    def __init__(self, every: int, patience: int, min_delta: float) -> None:
        self.every = int(every)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best = -1.0
        self.best_step = 0
        self.since_best = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped = False

    @classmethod
    def from_cfg(cls, cfg: Any) -> Plateau | None:
        every = int(cfg.TRAIN.get("PLATEAU_EVERY", 0) or 0)
        if every <= 0:
            return None
        return cls(every, int(cfg.TRAIN.PLATEAU_PATIENCE), float(cfg.TRAIN.PLATEAU_MIN_DELTA))

    def due(self, step: int) -> bool:
        return step > 0 and step % self.every == 0

    def update(self, step: int, accuracy: float, model: torch.nn.Module) -> bool:
        """Record a validation result at ``step``; keep the model's state when it is the best. True: stop now."""
        if accuracy > self.best + self.min_delta or self.best_state is None:
            self.best, self.best_step, self.since_best = accuracy, step, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            return False
        self.since_best += 1
        self.stopped = self.since_best >= self.patience
        return self.stopped

    def describe(self, step: int, accuracy: float) -> str:
        return (
            f"Validation at step {step}: {accuracy:.1f}% (best {self.best:.1f}% at step {self.best_step}; "
            f"{self.since_best} of {self.patience} evaluations without improvement)"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "since_best": self.since_best,
            "best_state": self.best_state,
            "stopped": self.stopped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_step = int(state["best_step"])
        self.since_best = int(state["since_best"])
        self.best_state = state["best_state"]
        self.stopped = bool(state["stopped"])
