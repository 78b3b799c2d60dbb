"""Lazy package exports: a public name resolves to its module on first use (PEP 562).

Keeps ``import qlib_ext.models`` free of torch and ``import qlib_ext.analysis`` free of matplotlib
until a class is actually used, while qrun's ``module_path: qlib_ext.models`` still finds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a public name to the module
    (relative to ``package``) that defines it."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
