"""The ``results.json`` schema that train.py writes at the end of a run, and the one reader every tool uses.

Fields a run does not produce (a foreign tool's file, a trainer without a black box) read as None, zero or
empty, so readers can tell "not recorded" from a value; a file that is not such a JSON object raises
``ResultsError`` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RESULTS_FILE = "results.json"


class ResultsError(ValueError):
    """A results.json that cannot be read as the schema below; the message names the file."""


@dataclass(frozen=True)
class QueryCount:
    """Images sent to the black box and the calls that carried them."""

    images: int = 0
    calls: int = 0


@dataclass(frozen=True)
class Queries:
    """Query counts per split ("train", "test", ...), their total, and the cost at ``usd_per_1k`` per 1k images."""

    splits: dict[str, QueryCount] = field(default_factory=dict)
    total: QueryCount = QueryCount()
    usd_per_1k: float = 0.0
    usd: float = 0.0

    def images(self, split: str) -> int:
        """Images sent for ``split`` (0 when the run sent none)."""
        return self.splits.get(split, QueryCount()).images

    def calls(self, split: str) -> int:
        """Calls made for ``split`` (0 when the run made none)."""
        return self.splits.get(split, QueryCount()).calls


@dataclass(frozen=True)
class RunResults:
    """One run's ``results.json``: identity, metrics (percent), cost, the toolkit version that wrote it and the full
    config as nested dicts."""

    trainer: str | None = None
    dataset: str | None = None
    seed: int | None = None
    shots: int | None = None
    backbone: str = ""
    eval_only: bool = False
    accuracy: float | None = None
    error: float | None = None
    macro_f1: float | None = None
    wall_time_s: float | None = None
    toolkit_version: str | None = None
    learnable_parameters: int | None = None
    train_time_s: float | None = None
    queries: Queries = Queries()
    steps: int | None = None
    queries_per_step: int | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str) -> RunResults:
        """The results in the file ``path``; ResultsError naming the file when it is missing or malformed."""
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ResultsError(f"{path}: unreadable results.json ({e}); re-run the run to rewrite it") from e
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, data: Any, source: str = RESULTS_FILE) -> RunResults:
        """The results in ``data`` (e.g. what ``train.main`` returns); ``source`` names it in errors."""
        if not isinstance(data, Mapping):
            raise ResultsError(f"{source}: expected a JSON object, got {type(data).__name__}")
        try:
            return cls(
                trainer=_optional(data, "trainer", str),
                dataset=_optional(data, "dataset", str),
                seed=_optional(data, "seed", int),
                shots=_optional(data, "shots", int),
                backbone=str(data.get("backbone") or ""),
                eval_only=bool(data.get("eval_only", False)),
                accuracy=_optional(data, "accuracy", float),
                error=_optional(data, "error", float),
                macro_f1=_optional(data, "macro_f1", float),
                wall_time_s=_optional(data, "wall_time_s", float),
                toolkit_version=_optional(data, "toolkit_version", str),
                learnable_parameters=_optional(data, "learnable_parameters", int),
                train_time_s=_optional(data, "train_time_s", float),
                queries=_queries(_object(data, "queries")),
                steps=_optional(data, "steps", int),
                queries_per_step=_optional(data, "queries_per_step", int),
                config=dict(_object(data, "config")),
            )
        except (TypeError, ValueError) as e:
            raise ResultsError(f"{source}: {e}") from e


def _optional(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if kind is not str and isinstance(value, (str, bool)):
        raise ValueError(f'"{key}" must be a number, got {value!r}')
    if kind is int and float(value) != int(value):
        raise ValueError(f'"{key}" must be an integer, got {value!r}')
    return kind(value)


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f'"{key}" must be an object, got {value!r}')
    return value


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` as a mapping; absent or null reads as empty."""
    value = data.get(key)
    return {} if value is None else _mapping(value, key)


def _count(value: Any, key: str) -> QueryCount:
    value = _mapping(value, f"queries.{key}")
    return QueryCount(int(_optional(value, "images", int) or 0), int(_optional(value, "calls", int) or 0))


def _queries(value: Mapping[str, Any]) -> Queries:
    splits = {k: _count(v, k) for k, v in value.items() if k not in ("total", "usd_per_1k", "usd")}
    total = _count(value["total"], "total") if "total" in value else QueryCount()
    return Queries(
        splits=splits,
        total=total,
        usd_per_1k=float(_optional(value, "usd_per_1k", float) or 0.0),
        usd=float(_optional(value, "usd", float) or 0.0),
    )
