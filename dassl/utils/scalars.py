"""Where training scalars go: TensorBoard (on by default) and Weights & Biases (``--use_wandb``).

Each write carries the trainer's step and, for runs that count queries, the cumulative image queries so far: every
metric is also written against that count under ``by_queries/<tag>``, because queries are the x-axis of
black-box prompting.
"""

from __future__ import annotations

from typing import Any, Protocol

BY_QUERIES = "by_queries/"
"""Tag prefix of the metrics written with the cumulative image queries as their step."""

QUERIES_TAG = "queries/images"
"""Cumulative images sent to the target (all splits), the x-axis of the ``by_queries/`` group."""

USD_TAG = "queries/usd"
"""Cumulative cost of those images at ``TARGET.USD_PER_1K`` (written only when it is set)."""


class ScalarSink(Protocol):
    """A destination for scalars: ``write`` one step's metrics, ``close`` at the end of the run."""

    def write(self, scalars: dict[str, float], step: int, queries: int | None) -> None: ...

    def close(self) -> None: ...


def by_queries(scalars: dict[str, float]) -> dict[str, float]:
    """The metrics to plot against queries: every tag except the query counts themselves, under ``by_queries/``."""
    return {BY_QUERIES + tag: value for tag, value in scalars.items() if not tag.startswith("queries/")}


class TensorBoardSink:
    """Scalars as TensorBoard events in ``log_dir``: each tag at ``step``, and its ``by_queries/`` copy at the
    cumulative query count."""

    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir)

    def write(self, scalars: dict[str, float], step: int, queries: int | None) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        if queries is not None:
            for tag, value in by_queries(scalars).items():
                self.writer.add_scalar(tag, value, queries)

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """Scalars logged to a Weights & Biases run at ``step``; the ``by_queries/`` copies use ``queries/images`` as
    their x-axis (wandb's ``define_metric``), since a wandb run has one step counter."""

    def __init__(self, run: Any) -> None:
        self.run = run
        run.define_metric(QUERIES_TAG)
        run.define_metric(BY_QUERIES + "*", step_metric=QUERIES_TAG)

    def write(self, scalars: dict[str, float], step: int, queries: int | None) -> None:
        row = dict(scalars)
        if queries is not None:
            row[QUERIES_TAG] = queries
            row.update(by_queries(scalars))
        self.run.log(row, step=step)

    def close(self) -> None:
        """The run is finished by whoever started it (train.py logs the final results first)."""


def query_scalars(images: int, usd_per_1k: float = 0.0) -> dict[str, float]:
    """The cumulative query counters: images sent so far, and their cost when a price per 1k images is set."""
    scalars = {QUERIES_TAG: float(images)}
    if usd_per_1k > 0:
        scalars[USD_TAG] = images / 1000.0 * usd_per_1k
    return scalars
