"""Query budgets: the most images a run may send to its target, in images or in USD, with a share reserved for
the final test.

The trainer plans with ``Budget.fits`` (it stops training before a step that would not fit, checkpoints and
evaluates); the target enforces ``Budget.check`` before every call, so no request that would exceed the budget is
ever sent, whatever the caller does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dassl.config import CfgNode

if TYPE_CHECKING:
    from .base import QueryCounter


class BudgetExceeded(RuntimeError):
    """A request would exceed the run's query budget; nothing was sent."""


class Budget:
    """At most ``images`` images over all splits; ``reserved[split]`` images are kept for that split alone.

    ``images`` is 0 for no limit. A split with a reservation may spend the reservation plus what the other
    splits left; other splits may spend only what is not reserved.
    """

    def __init__(self, images: int = 0, reserved: dict[str, int] | None = None, source: str = "") -> None:
        if images < 0:
            raise ValueError(f"a budget must be >= 0 images, got {images}")
        self.images = int(images)
        self.reserved = dict(reserved or {})
        self.source = source or f"{self.images} images"

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> Budget:
        """``TARGET.BUDGET_IMAGES`` and ``TARGET.BUDGET_USD`` (converted at ``TARGET.USD_PER_1K``), the tighter one."""
        t = cfg.TARGET
        limits = []
        if int(t.BUDGET_IMAGES) > 0:
            limits.append((int(t.BUDGET_IMAGES), f"TARGET.BUDGET_IMAGES {int(t.BUDGET_IMAGES)}"))
        if float(t.BUDGET_USD) > 0:
            rate = float(t.USD_PER_1K)
            if rate <= 0:
                raise ValueError(
                    f"TARGET.BUDGET_USD {t.BUDGET_USD} needs the price of the queries: set TARGET.USD_PER_1K (USD per "
                    f"1,000 images), or give the budget in images with TARGET.BUDGET_IMAGES."
                )
            images = math.floor(float(t.BUDGET_USD) * 1000 / rate + 1e-9)
            limits.append((images, f"TARGET.BUDGET_USD {t.BUDGET_USD} (= {images} images at {rate} per 1k)"))
        if not limits:
            return cls()
        images, source = min(limits)
        return cls(images, source=source)

    @property
    def limited(self) -> bool:
        return self.images > 0

    def available(self, counter: QueryCounter, split: str) -> int | None:
        """Images ``split`` may still send (None: no limit)."""
        if not self.limited:
            return None
        unspent_reserves = sum(max(0, amount - counter.images(s)) for s, amount in self.reserved.items() if s != split)
        return max(0, self.images - counter.images() - unspent_reserves)

    def fits(self, counter: QueryCounter, split: str, images: int) -> bool:
        """True if ``images`` more images for ``split`` stay within the budget."""
        left = self.available(counter, split)
        return left is None or images <= left

    def check(self, counter: QueryCounter, split: str, images: int) -> None:
        """BudgetExceeded (naming the budget and what is left) unless ``images`` more images fit."""
        if not self.fits(counter, split, images):
            raise BudgetExceeded(
                f"A request of {images} images ({split}) would exceed the query budget {self.source}: "
                f"{counter.images()} sent, {self.available(counter, split)} left for {split}"
                + (f", {self.reserved} reserved" if self.reserved else "")
                + ". Nothing was sent. Raise the budget and run the same command to continue."
            )
