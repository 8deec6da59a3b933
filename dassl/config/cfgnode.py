"""yacs CfgNode with the merge rules this project needs: int accepted for float keys, clear key errors."""

from __future__ import annotations

import copy
import difflib
from typing import Any

from yacs.config import CfgNode as _YacsNode

_VALID = (tuple, list, str, int, float, bool, type(None))


def _coerce(replacement: Any, original: Any, full_key: str) -> Any:
    """Return ``replacement`` converted to the type of ``original`` where that is unambiguous, else raise."""
    if type(replacement) is type(original) or original is None or replacement is None:
        return replacement
    if isinstance(original, float) and isinstance(replacement, int) and not isinstance(replacement, bool):
        return float(replacement)
    if isinstance(original, (list, tuple)) and isinstance(replacement, (list, tuple)):
        return type(original)(replacement)
    raise ValueError(
        f"Config key {full_key} expects a {type(original).__name__} (default: {original!r}) "
        f"but got a {type(replacement).__name__}: {replacement!r}. "
        f"Write it as a {type(original).__name__}, e.g. in a yaml file or as `{full_key} <value>` on the command line."
    )


class CfgNode(_YacsNode):
    """A yacs node whose merges accept an int for a float key and name the closest key on typos."""

    def merge_from_file(self, cfg_filename: str) -> None:
        with open(cfg_filename) as f:
            other = self.load_cfg(f)
        self._merge(other, self, [], source=cfg_filename)

    def merge_from_other_cfg(self, cfg_other: _YacsNode) -> None:
        self._merge(cfg_other, self, [], source="config")

    def merge_from_list(self, cfg_list: list) -> None:
        if len(cfg_list) % 2 != 0:
            raise ValueError(
                f"Override list has odd length: {cfg_list}; it must be KEY VALUE pairs, "
                f"e.g. `OPTIM.MAX_EPOCH 10 DATASET.NUM_SHOTS 16`."
            )
        for full_key, raw in zip(cfg_list[0::2], cfg_list[1::2]):
            node = self
            keys = full_key.split(".")
            for i, sub in enumerate(keys):
                if not isinstance(node, _YacsNode) or sub not in node:
                    raise KeyError(self._unknown_key_message(".".join(keys[: i + 1]), node, keys[:i], "command line"))
                if i < len(keys) - 1:
                    node = node[sub]
            value = self._decode_cfg_value(raw)
            node[keys[-1]] = _coerce(value, node[keys[-1]], full_key)

    @classmethod
    def _merge(cls, a: _YacsNode, b: _YacsNode, key_list: list[str], source: str) -> None:
        for k, v_raw in a.items():
            full_key = ".".join(key_list + [k])
            v = b._decode_cfg_value(copy.deepcopy(v_raw))
            if k not in b:
                if b.is_new_allowed():
                    b[k] = v
                    continue
                raise KeyError(cls._unknown_key_message(full_key, b, key_list, source))
            if isinstance(b[k], _YacsNode):
                if not isinstance(v, _YacsNode):
                    raise ValueError(f"Config key {full_key} is a group of keys, not a value (in {source}).")
                cls._merge(v, b[k], key_list + [k], source)
            else:
                b[k] = _coerce(v, b[k], full_key)

    @staticmethod
    def _unknown_key_message(full_key: str, node: Any, prefix: list[str], source: str) -> str:
        siblings = list(node.keys()) if isinstance(node, dict) else []
        close = difflib.get_close_matches(full_key.split(".")[-1], siblings, n=1)
        hint = f' Did you mean "{".".join(prefix + [close[0]])}"?' if close else ""
        return f"Non-existent config key: {full_key} (in {source}).{hint}"
