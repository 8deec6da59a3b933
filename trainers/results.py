"""The ``results.json`` schema that train.py writes at the end of a run, the one reader every tool uses, and what
a run folder holds before it has one.

Fields a run does not produce (a foreign tool's file, a trainer without a black box) read as None, zero or
empty, so readers can tell "not recorded" from a value; fields this reader does not know are ignored. A file that
is not such a JSON object raises ``ResultsError`` naming the file and what to do.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The files of a run folder that readers look at (trainers.run_folder writes run.json, .lock and results-eval.json).
RESULTS_FILE = "results.json"  # the run's result, written once training (or a fresh --eval-only run) ends
EVAL_RESULTS_FILE = "results-eval.json"  # --eval-only into a training run's folder: never the training result
LOG_FILE = "log.txt"
RUN_RECORD = "run.json"  # the run's identity, written when it starts
LOCK_FILE = ".lock"  # locked by the process that runs it
REWRITE_HINT = "delete it and run the script again to rewrite it"


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
    fingerprint: str | None = None
    stopped_by: str | None = None
    budget_images: int | None = None
    retries: int | None = None
    access: str | None = None
    """``black-box`` (the target is only queried) or ``white-box`` (its weights or gradients are read: VPWB, FT, LP)."""

    @classmethod
    def read(cls, path: str) -> RunResults:
        """The results in the file ``path``; ResultsError naming the file and what to do when it is missing or
        malformed."""
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as e:
            raise ResultsError(f"{path}: unreadable results.json ({e.strerror or e})") from e
        except ValueError as e:  # invalid JSON or text: truncated or damaged after train.py wrote it
            raise ResultsError(f"{path}: unreadable results.json, not valid JSON ({e}); {REWRITE_HINT}") from e
        try:
            return cls.from_dict(data, source=path)
        except ResultsError as e:
            raise ResultsError(f"{e}; {REWRITE_HINT}") from e

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
                fingerprint=_optional(data, "fingerprint", str),
                stopped_by=_optional(data, "stopped_by", str),
                budget_images=_optional(data, "budget_images", int),
                retries=_optional(data, "retries", int),
                access=_optional(data, "access", str),
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


@dataclass(frozen=True)
class RunFiles:
    """What one run folder holds besides its result: the names in it and the checkpoint each ``<model>/checkpoint``
    pointer names, so tools can tell a run that has not finished from a folder that is not a run."""

    path: str
    names: frozenset[str]
    checkpoints: tuple[str, ...]

    @classmethod
    def scan(cls, path: str) -> RunFiles:
        """The folder ``path`` as it is now (an unlistable folder reads as empty)."""
        try:
            names = sorted(os.listdir(path))
        except OSError:
            names = []
        pointers = [osp.join(path, n, "checkpoint") for n in names if not n.startswith(".")]
        return cls(path, frozenset(names), tuple(_pointer(p) for p in pointers if osp.isfile(p)))

    def has(self, name: str) -> bool:
        return name in self.names

    @property
    def is_run(self) -> bool:
        """Whether a run started here: it holds a result, a log, an identity record or a checkpoint."""
        return bool(self.checkpoints) or any(self.has(n) for n in (RESULTS_FILE, LOG_FILE, RUN_RECORD))

    def hints(self) -> list[str]:
        """Facts that qualify a missing result: the process that last locked the folder is alive; an evaluation is
        not the result."""
        holder = _live_holder(osp.join(self.path, LOCK_FILE)) if self.has(LOCK_FILE) else None
        hints = [f"{holder} may still be running it"] if holder else []
        if self.has(EVAL_RESULTS_FILE):
            hints.append(f"its {EVAL_RESULTS_FILE} is an --eval-only result, not the training result")
        return hints


def _pointer(path: str) -> str:
    """The checkpoint file a Dassl ``checkpoint`` pointer names ("?" when it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"


def _live_holder(lock_path: str) -> str | None:
    """The process a lock file names ("pid N on HOST, since T", left there after it ends) when it is alive on this
    host or runs on another host, which cannot be checked from here; None when it is gone or the file says nothing."""
    try:
        with open(lock_path, errors="replace") as f:
            match = re.fullmatch(r"pid (\d+) on (\S+), since (.+)", f.read().strip())
    except OSError:
        return None
    if match is None:
        return None
    pid, host, since = int(match[1]), match[2], match[3]
    if host != socket.gethostname():
        return f"pid {pid} on {host} (since {since})"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return f"pid {pid} (since {since})"
