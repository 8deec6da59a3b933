"""The perturbed points of a zeroth-order step split over the processes of a ``torchrun`` run.

Every process holds the same parameters, optimiser state and mini-batch, so the optimiser draws the same points on
each. ``PointShards`` gives each process a contiguous share of them (sizes differ by at most one, the first ranks
take the larger shares); a process sends only its share's prompted images to the target, and one ``all_gather`` per
step brings back every loss and correct-prediction count in point order, with each process's query counts and its
outcome. Every process then applies the same update, keeps the same (summed) query counts, so budget checks decide
alike, and raises together when any of them failed, so none is left waiting in a collective.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from dassl.engine import ResumableError
from dassl.utils import distributed
from trainers.targets import QueryCounter

OK, RESUMABLE, FAILED = 0, 1, 2
"""What a process reports of its share: answered, a ``ResumableError`` (the run stops to resume), another error."""

HEADER = 3
"""Values before the losses in a process's row: outcome, images sent, calls made."""

LocalLosses = Callable[[range], tuple[torch.Tensor, torch.Tensor]]
"""A process's share of the points (their indices) -> their losses and correct counts, each of shape (len(share),)."""


class PointShards:
    """The split of ``num_points`` points per step over ``world_size`` processes, and the step's gather."""

    def __init__(self, num_points: int, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a group of {world_size}")
        self.num_points, self.rank, self.world_size = num_points, rank, world_size
        base, extra = divmod(num_points, world_size)
        sizes = [base + (r < extra) for r in range(world_size)]
        starts = [sum(sizes[:r]) for r in range(world_size)]
        self.ranges = [range(s, s + n) for s, n in zip(starts, sizes, strict=True)]
        self.width = max(sizes)

    @classmethod
    def for_this_process(cls, num_points: int) -> PointShards | None:
        """The split for this run's process group; None with one process (nothing to split)."""
        if distributed.world_size() == 1:
            return None
        return cls(num_points, distributed.rank(), distributed.world_size())

    @property
    def mine(self) -> range:
        return self.ranges[self.rank]

    def describe(self) -> str:
        """One log line: which process evaluates which points (1-based, in the optimiser's order)."""
        parts = [
            f"rank {r} points {rng.start + 1}-{rng.stop}" if len(rng) else f"rank {r} none"
            for r, rng in enumerate(self.ranges)
        ]
        backend = distributed.backend() or "no backend"
        return (
            f"Perturbations split over {self.world_size} processes ({backend}): {', '.join(parts)} "
            f"of {self.num_points} per step"
        )

    def evaluate(
        self, local: LocalLosses, counter: QueryCounter, split: str = "train"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Losses (float32) and correct counts (int64) of all points, on the CPU, in point order: this process
        computes its share with ``local``, one all-gather collects the rest; ``counter`` then also holds the other
        processes' queries."""
        images, calls = counter.images(split), counter.calls(split)
        row = torch.zeros(HEADER + 2 * self.width, dtype=torch.float64)
        error: Exception | None = None
        try:
            losses, correct = local(self.mine)  # even an empty share: the prompter renders every point
            row[HEADER : HEADER + len(self.mine)] = losses.detach().double().cpu()
            row[HEADER + self.width : HEADER + self.width + len(self.mine)] = correct.double().cpu()
        except Exception as e:  # every process must learn of it before any leaves the step
            error = e
            row[0] = RESUMABLE if isinstance(e, ResumableError) else FAILED
        row[1], row[2] = counter.images(split) - images, counter.calls(split) - calls
        rows = self._all_gather(row)
        self._add_others(counter, split, rows, row)
        outcome = int(rows[:, 0].max())
        if outcome != OK:
            self._raise_together(outcome, int(row[0]), error, rows)
        losses = torch.cat([rows[r, HEADER : HEADER + len(rng)] for r, rng in enumerate(self.ranges)])
        correct = torch.cat(
            [rows[r, HEADER + self.width : HEADER + self.width + len(rng)] for r, rng in enumerate(self.ranges)]
        )
        return losses.to(torch.float32), correct.to(torch.int64)

    def _all_gather(self, row: torch.Tensor) -> torch.Tensor:
        device = distributed.collective_device()
        parts = [torch.empty_like(row, device=device) for _ in range(self.world_size)]
        dist.all_gather(parts, row.to(device))
        return torch.stack(parts).cpu()

    @staticmethod
    def _add_others(counter: QueryCounter, split: str, rows: torch.Tensor, row: torch.Tensor) -> None:
        images = int(rows[:, 1].sum() - row[1])
        calls = int(rows[:, 2].sum() - row[2])
        if images or calls:
            counter.add(split, images, calls)

    def _raise_together(self, outcome: int, own: int, error: Exception | None, rows: torch.Tensor) -> None:
        """Every process raises: the failing ones their own error, the others one that names the first failure of
        the gravest kind (a ``ResumableError`` only when no process failed otherwise)."""
        messages: list[str | None] = [None] * self.world_size
        dist.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}")
        if own == outcome and error is not None:
            raise error
        first = next(r for r in range(self.world_size) if int(rows[r, 0]) == outcome)
        text = f"process {first} of {self.world_size} failed its share of the step: {messages[first]}"
        raise ResumableError(text) if outcome == RESUMABLE else RuntimeError(text)
