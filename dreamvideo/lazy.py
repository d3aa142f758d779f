"""Names a package offers from its modules, imported only when first used (PEP 562).

``import dreamvideo`` or ``import dreamvideo.media.paths`` must stay cheap: the command line
prints its first line before torch is imported. So a package's ``__init__`` lists what it
offers and where it lives, and each name is imported from its module when first asked for::

    __all__, __getattr__ = lazy_exports(__name__, {"paths": ("check_output", "write_atomic")})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``: ``modules`` maps each submodule (relative
    name) to the names it offers."""
    home = {name: f"{package}.{module}" for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home[name]), name)

    return sorted(home), __getattr__
