"""Configuration: ``get_cfg_default()`` returns a fresh copy of Dassl's defaults."""

from .cfgnode import CfgNode
from .defaults import _C as cfg_default


def get_cfg_default() -> CfgNode:
    return cfg_default.clone()


def clean_cfg(cfg: CfgNode, trainer: str) -> None:
    """Drop every ``TRAINER.*`` group except ``NAME`` and the one of ``trainer``."""
    keep = {"NAME", trainer.upper()}
    for key in [k for k in cfg.TRAINER.keys() if k not in keep]:
        cfg.TRAINER.pop(key)
