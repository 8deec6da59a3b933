"""Name -> class registries that plugins fill by decorating their classes."""

from __future__ import annotations

import difflib
import sys
from typing import Any


class DuplicateRegistrationError(KeyError):
    """Two objects claim one name in a registry (e.g. a dropped-in trainer named like one of ours)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """Maps a class's ``__name__`` to the class; unknown names suggest the closest match."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any, force: bool = False) -> None:
        if name in self._obj_map and not force:
            raise DuplicateRegistrationError(
                f'"{name}" is already registered in "{self._name}" registry by {origin(self._obj_map[name])}; '
                f"{origin(obj)} registers it again. Rename one of them (the registered name is the class name "
                "unless register(name=...) gives one), or remove the module you do not want"
            )
        self._obj_map[name] = obj

    def register(self, obj: Any = None, force: bool = False, name: str | None = None) -> Any:
        """Use as ``@REG.register()`` (returns the class) or ``REG.register(cls)`` (returns None).

        ``name`` registers under another name than the class's ``__name__`` (e.g. a lower-case config value).
        """
        if obj is None:

            def wrapper(fn_or_class):
                self._do_register(name or fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class

            return wrapper
        self._do_register(name or obj.__name__, obj, force=force)
        return None

    def get(self, name: str) -> Any:
        if name not in self._obj_map:
            raise KeyError(
                f'Object name "{name}" does not exist in "{self._name}" registry. '
                f"{suggestion(name, self.registered_names())}"
            )
        return self._obj_map[name]

    def registered_names(self) -> list[str]:
        return list(self._obj_map.keys())

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a temporary plugin clean up with this)."""
        self._obj_map.pop(name, None)

    def items(self) -> list[tuple[str, Any]]:
        """(name, object) pairs in registration order."""
        return list(self._obj_map.items())

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map


def origin(obj: Any) -> str:
    """``module.QualName (file)`` of a registered object, so that a clash names both modules."""
    module = getattr(obj, "__module__", None) or "?"
    where = f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"
    path = getattr(sys.modules.get(module), "__file__", None)
    return f"{where} ({path})" if path else where


def suggestion(requested: str, available: list[str]) -> str:
    """A 'did you mean' hint naming the closest available name, plus the full list."""
    close = difflib.get_close_matches(requested, available, n=1, cutoff=0.0)
    hint = f'Did you mean "{close[0]}"? ' if close else ""
    return f"{hint}Available: {sorted(available)}"


def check_availability(requested: str, available: list[str]) -> None:
    """Raise a ValueError with a 'did you mean' hint when ``requested`` is not in ``available``."""
    if requested not in available:
        close = difflib.get_close_matches(requested, available, n=1, cutoff=0.0)
        mean = f" (do you mean [{close[0]}]?)" if close else ""
        raise ValueError(f"The requested one is expected to belong to {sorted(available)}, but got [{requested}]{mean}")
