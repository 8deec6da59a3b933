"""Config keys declared by the plugins that read them, and ``extend_cfg``, which adds them all to Dassl's defaults.

Each plugin module (a method, target, prompter, dataset) declares its keys next to the code that reads them,
with their meaning, unit, allowed values and default::

    KEYS = declare_keys(
        "TRAINER.VPOUR",
        ConfigKey("MOMS", 0.9, "SPSA-GC momentum (0 = plain SPSA step)"),
        ConfigKey("OPT_TYPE", "spsa-gc", "zeroth-order optimiser", choices=zo_names),
    )

``extend_cfg`` imports every plugin (so every declaration is seen) and adds the keys with their defaults;
``validate_cfg`` checks the allowed values and ranges once the yaml files and the command line are merged.
A key whose value cannot change a run's result (a path, a print frequency, a memory limit) says so with
``result=False``; every other key is part of the run's identity (see ``trainers.run_folder``).
Reference keys keep their names and defaults so published hyper-parameter tables and yaml files merge
unchanged; keys that the reference defines but nothing here reads are declared with ``compat=True``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dassl.config import CfgNode as CN

Choices = Sequence[Any] | Callable[[], Sequence[Any]]


@dataclass(frozen=True)
class Range:
    """Allowed numbers: ``low <= v`` (``low < v`` when ``low_open``), likewise ``high``, or one of ``also``.

    Applied to every element when the value is a list.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[float, ...] = ()

    def __call__(self, value: Any) -> bool:
        values = value if isinstance(value, (list, tuple)) else [value]
        return all(self._one(v) for v in values)

    def _one(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if v in self.also:
            return True
        if v != v:  # NaN
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open else v > self.high))

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        text = " and ".join(parts) or "a number"
        if self.also:
            text = " or ".join([*(f"{a:g}" for a in self.also), text])
        return text


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the key, the value and what is allowed."""


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)


@dataclass(frozen=True, eq=False)
class ConfigKey:
    """One config key: its dotted name, default, a one-line meaning (with the unit), allowed values.

    ``choices`` is a sequence, or a function returning one (for values read from a registry, which fills
    as plugins import). ``compat`` marks a reference key that no code here reads: it exists so that the
    reference's yaml files merge. ``valid`` is the allowed range of a number (or of each number in a list).
    ``result=False`` marks a key that cannot change the run's result, so a resumed run may change it.
    """

    name: str
    default: Any
    help: str
    choices: Choices = field(default=())
    compat: bool = False
    valid: Range | None = None
    result: bool = True

    def allowed(self) -> tuple[Any, ...]:
        """The allowed values (empty: any value of the default's type)."""
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def same_as(self, other: ConfigKey) -> bool:
        return (self.name, repr(self.default), self.help, self.compat, self.valid, self.result) == (
            other.name,
            repr(other.default),
            other.help,
            other.compat,
            other.valid,
            other.result,
        )


_DECLARED: dict[str, ConfigKey] = {}


def declare_keys(group: str, *keys: ConfigKey) -> tuple[ConfigKey, ...]:
    """Declare ``keys`` under ``group`` (e.g. ``"TRAINER.VPOUR"``); returns them with their full names.

    Declaring the same key twice with the same default and meaning is allowed (a module imported twice);
    a conflicting declaration is an error naming both.
    """
    full = []
    for key in keys:
        key = replace(key, name=f"{group}.{key.name}" if group else key.name)
        known = _DECLARED.get(key.name)
        if known is not None and not known.same_as(key):
            raise KeyError(
                f"Config key {key.name} is declared twice with different defaults or meanings: "
                f"{known.default!r} ({known.help}) and {key.default!r} ({key.help})"
            )
        _DECLARED[key.name] = key
        full.append(key)
    return tuple(full)


def declared_keys(prefix: str = "") -> list[ConfigKey]:
    """Every declared key whose name starts with ``prefix``, sorted by name."""
    return sorted((k for name, k in _DECLARED.items() if name.startswith(prefix)), key=lambda k: k.name)


def forget_keys(names: Iterable[str]) -> None:
    """Remove declarations (tests that declare a temporary plugin's keys clean up with this)."""
    for name in names:
        _DECLARED.pop(name, None)


def _set(cfg: CN, name: str, value: Any) -> None:
    node = cfg
    *groups, leaf = name.split(".")
    for group in groups:
        if group not in node:
            node[group] = CN()
        node = node[group]
    if leaf not in node:
        node[leaf] = copy.deepcopy(value)


def _get(cfg: CN, name: str) -> Any:
    node = cfg
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(name)
        node = node[part]
    return node


def extend_cfg(cfg: CN, randomize: bool = True) -> CN:
    """Add every plugin's declared keys to ``cfg`` in place (before any yaml or command-line merge); returns it.

    ``randomize`` is train.py's ``--randomize`` flag (Colour-Biased MNIST: shuffle which digits get the biased
    colour), applied here as the reference does, so a yaml file can still override it.
    """
    from trainers.plugins import load_plugins

    load_plugins()
    for key in declared_keys():
        _set(cfg, key.name, key.default)
    if "COLOUR_BIASED_MNIST" in cfg.DATASET:
        cfg.DATASET.COLOUR_BIASED_MNIST.RANDOMIZE = bool(randomize)
    return cfg


def validate_cfg(cfg: CN, prefix: str = "") -> None:
    """Check every declared key under ``prefix`` against its choices and range; ValueError names the key, the value
    and what is allowed."""
    for key in declared_keys(prefix):
        allowed = key.allowed()
        if not allowed and key.valid is None:
            continue
        try:
            value = _get(cfg, key.name)
        except KeyError:
            continue
        if allowed and value not in allowed:
            raise ConfigError(f"{key.name} must be one of {allowed}, got {value!r} ({key.help})")
        if key.valid is not None and not key.valid(value):
            raise ConfigError(
                f"{key.name} must be {key.valid}, got {value!r} ({key.help}). "
                f"Set it in the config file or on the command line, e.g. {key.name} {key.default!r}."
            )


def result_neutral_keys() -> set[str]:
    """Declared keys that cannot change a run's result (``result=False``)."""
    return {name for name, key in _DECLARED.items() if not key.result}


def describe_keys(prefix: str = "") -> str:
    """A listing of the declared keys under ``prefix``: name, default, allowed values and meaning."""
    lines = []
    for key in declared_keys(prefix):
        allowed = key.allowed()
        choices = f"  one of {', '.join(map(str, allowed))}" if allowed else ""
        if key.valid is not None:
            choices += f"  {key.valid}"
        compat = "  [reference compatibility: read by nothing here]" if key.compat else ""
        if not key.result:
            compat += "  [cannot change the result: may differ on resume]"
        lines.append(f"{key.name} = {key.default!r}{choices}{compat}\n    {key.help}")
    return "\n".join(lines)
