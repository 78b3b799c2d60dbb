"""Models on Qlib's ``Model`` contract (``fit(dataset)``, ``predict(dataset, segment)``): SPEC section 5.

Use them from any qrun YAML with ``module_path: qlib_ext.models``.  Names resolve lazily (torch is
imported only when a torch model is used).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "GRUModel": ".gru",
    "Ensemble": ".ensemble",
    "Rolling": ".rolling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
