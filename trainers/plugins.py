"""Plugin discovery: import every module of ``datasets/`` and ``trainers/``, plus the user's own plugin modules.

Importing a module runs its registrations (``@TRAINER_REGISTRY.register()``, ``declare_keys``, ...), so a new
method, target, prompter, optimiser or dataset needs nothing but its module. Modules outside the tree are named
in the ``BBVP_PLUGINS`` environment variable (``os.pathsep``-separated module names or ``.py`` file paths) or
with ``train.py --plugin``; every entry point (train.py, ``datasets.prepare``, the table and launch scripts)
loads the same set.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path

from dassl.utils.registry import DuplicateRegistrationError

BUILTIN_PACKAGES = ("datasets", "trainers")
ENV_VAR = "BBVP_PLUGINS"

_failures: dict[str, str] = {}
_loaded: set[str] = set()


def import_plugin(spec: str) -> None:
    """Import one plugin given as a module name (``my_pkg.my_method``) or a path to a ``.py`` file."""
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"Plugin file {path} does not exist (from {ENV_VAR} or --plugin)")
        name = f"bbvp_plugin_{path.stem}"
        if name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return
    importlib.import_module(spec)


def user_plugins(extra: list[str] | None = None) -> list[str]:
    """Plugin specs from ``BBVP_PLUGINS`` followed by ``extra`` (e.g. ``--plugin`` flags)."""
    specs = [s for s in os.environ.get(ENV_VAR, "").split(os.pathsep) if s.strip()]
    return specs + list(extra or [])


def load_plugins(extra: list[str] | None = None) -> dict[str, str]:
    """Import the built-in plugin packages and the user's plugins; returns the modules that failed (name -> error).

    A built-in module that fails to import does not stop the others (a missing optional dependency only
    affects the plugins that need it), except for a name clash: a module dropped into ``trainers/`` or
    ``datasets/`` that registers a name already taken raises, naming both modules, instead of leaving whichever
    imported first. A user plugin that fails raises: it was asked for by name.
    """
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name in _loaded or info.name in _failures:
                continue
            try:
                importlib.import_module(info.name)
                _loaded.add(info.name)
            except DuplicateRegistrationError:
                raise
            except Exception as e:  # noqa: BLE001 - reported to the user by train.py
                _failures[info.name] = f"{type(e).__name__}: {e}"
    for spec in user_plugins(extra):
        if spec not in _loaded:
            import_plugin(spec)
            _loaded.add(spec)
    return dict(_failures)
