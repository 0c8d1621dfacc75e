"""A package's public names, imported from their modules when first used (PEP 562).

``calflow`` and ``calflow.replay`` re-export names from modules that are costly to
import (the engine, httpx, aiohttp); importing one of their submodules, or running a
command that needs none of those names, should not pay for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` comes from ``where[name]``."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups do not come here
        return value

    return __getattr__
