"""``my_dassl``, the name BlackVIP's code imports Dassl under, as an alias of this project's ``dassl``.

Every ``dassl`` module is imported and also entered in ``sys.modules`` as ``my_dassl.<same path>``, so
``from my_dassl.engine import TRAINER_REGISTRY`` returns the very objects ``dassl.engine`` holds (one
registry, not a copy). ``import my_dassl`` itself gives the ``dassl`` package.
"""

import importlib
import pkgutil
import sys

import dassl


def _alias_all(source: str = "dassl", alias: str = __name__) -> None:
    """Import every module of ``source`` and register it under ``alias`` in ``sys.modules``."""
    package = importlib.import_module(source)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{source}."):
        importlib.import_module(info.name)
    for name, module in list(sys.modules.items()):
        if name == source or name.startswith(source + "."):
            sys.modules[alias + name[len(source) :]] = module


_alias_all()
