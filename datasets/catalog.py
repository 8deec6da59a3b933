"""The dataset catalog: what each dataset module registers about its dataset, and every list derived from it.

A dataset module is the one place that describes its dataset. Its registered class carries
``info = DatasetInfo(...)``: registered name, config file stem, table label, CLIP prompt template, the files it
expects on disk, its table group and, for synthetic data, the paper's settings; the module also declares the
config keys it reads (``trainers.config.declare_keys``). ``datasets.prepare``, the prompt templates and the table
and launch scripts read this catalog, so adding a dataset is adding its module and ``configs/datasets/<stem>.yaml``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dassl.config import CfgNode, get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY
from trainers.config import extend_cfg
from trainers.plugins import load_plugins

from .layouts import Layout

GROUPS = ("transfer", "synthetic", "other")
"""Table groups: the transfer-learning benchmark, the synthetic-data table, neither."""

DEFAULT_TEMPLATE = "a photo of a {}."


@dataclass(frozen=True)
class Setting:
    """One of the paper's settings of a synthetic dataset: output-folder name and table column, label, overrides."""

    name: str
    label: str
    opts: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset module registers about its dataset, as the ``info`` attribute of its registered class.

    ``layout`` is the expected files, or a function ``(root, cfg) -> Layout`` when the folder depends on the config
    (generated data). ``describe_setting(cfg)`` names the table column of a run in none of ``settings``.
    ``paper_column`` is the dataset's position in the paper's tables (None: after those, in registration order).
    """

    name: str
    config: str
    label: str
    template: str
    group: str
    settings: tuple[Setting, ...] = ()
    layout: Layout | Callable[[str, CfgNode], Layout] | None = None
    describe_setting: Callable[[CfgNode], str] | None = None
    paper_column: int | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"DatasetInfo {self.name}: group must be one of {GROUPS}, got {self.group!r}")
        if "{}" not in self.template:
            raise ValueError(
                f"DatasetInfo {self.name}: the template needs a {{}} for the class name: {self.template!r}"
            )

    def layout_for(self, root: str, cfg: CfgNode) -> Layout | None:
        """The expected files under the data ``root`` for a run configured by ``cfg`` (None: none registered)."""
        return self.layout(root, cfg) if callable(self.layout) else self.layout

    def paper_layouts(self, root: str) -> list[Layout]:
        """The expected files of every paper setting (of the default config when there are no settings)."""
        if not callable(self.layout):
            return [self.layout] if self.layout else []
        configs = [config_with(setting.opts) for setting in self.settings] or [config_with()]
        layouts = (self.layout_for(root, cfg) for cfg in configs)
        return list(dict.fromkeys(layout for layout in layouts if layout is not None))


def config_with(opts: Iterable[tuple[str, Any]] = (), base: Mapping[str, Any] | None = None) -> CfgNode:
    """The default config with every plugin's keys, overlaid with ``base`` (nested dicts such as a results.json
    ``config``; keys the defaults lack are ignored) and then with ``opts`` (dotted name, value)."""
    cfg = extend_cfg(get_cfg_default())
    if base:
        _overlay(cfg, base)
    for name, value in opts:
        *groups, leaf = name.split(".")
        node = cfg
        for group in groups:
            if group not in node:
                node[group] = CfgNode()
            node = node[group]
        node[leaf] = value
    return cfg


def _overlay(node: CfgNode, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key not in node:
            continue
        if isinstance(node[key], CfgNode):
            if isinstance(value, Mapping):
                _overlay(node[key], value)
        else:
            node[key] = value


_ABSENT = object()


def _value(cfg: Mapping[str, Any], name: str) -> Any:
    node: Any = cfg
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def datasets() -> list[DatasetInfo]:
    """Every registered dataset that has an info (built-ins and user plugins), in the paper's column order first."""
    load_plugins()
    infos = []
    for name, obj in DATASET_REGISTRY.items():
        info = getattr(obj, "__dict__", {}).get("info")
        if not isinstance(info, DatasetInfo):
            continue
        if info.name != name:
            raise ValueError(f'Dataset "{name}" is registered under another name than its DatasetInfo ("{info.name}")')
        infos.append(info)
    return sorted(infos, key=lambda info: (info.paper_column is None, info.paper_column or 0))


def dataset_info(name: str) -> DatasetInfo:
    """The dataset registered as ``name`` or with config stem ``name``, ignoring case."""
    infos = datasets()
    key = name.lower()
    for info in infos:
        if key in (info.name.lower(), info.config.lower()):
            return info
    known = ", ".join(f"{info.name} ({info.config})" for info in infos)
    raise ValueError(f'Unknown dataset "{name}". Known (name and config stem): {known}')


def transfer_datasets() -> list[DatasetInfo]:
    """The transfer-learning benchmark's datasets, in the paper's column order (others after them)."""
    return [info for info in datasets() if info.group == "transfer"]


def synthetic_settings() -> list[tuple[DatasetInfo, Setting]]:
    """Every paper setting of the synthetic datasets, in the synthetic table's column order."""
    return [(info, setting) for info in datasets() if info.group == "synthetic" for setting in info.settings]


def setting_of(dataset_name: str, config: Mapping[str, Any]) -> str:
    """The table column of a finished run from its results.json ``dataset`` and ``config``.

    The config stem; for a dataset with settings, the paper setting whose overrides the config matches, else the
    dataset's description of the setting (e.g. ``locmnist_r1_f2``). An unknown dataset gives its lower-cased name.
    """
    try:
        info = dataset_info(dataset_name)
    except ValueError:
        return str(dataset_name).lower()
    if not info.settings and info.describe_setting is None:
        return info.config
    cfg = config_with(base=config)
    for setting in info.settings:
        if all(_value(cfg, name) == value for name, value in setting.opts):
            return setting.name
    return info.describe_setting(cfg) if info.describe_setting else info.config


def template_for(dataset_name: str) -> str:
    """The dataset's CLIP prompt template; an unknown dataset gets ``DEFAULT_TEMPLATE`` with a warning."""
    try:
        return dataset_info(dataset_name).template
    except ValueError:
        warnings.warn(f"No prompt template for dataset {dataset_name!r}; using {DEFAULT_TEMPLATE!r}", stacklevel=2)
        return DEFAULT_TEMPLATE
