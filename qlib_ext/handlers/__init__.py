"""Qlib ``DataHandlerLP`` subclasses that turn our datasets into model inputs (SPEC section 5).

Use them from any qrun YAML with ``module_path: qlib_ext.handlers``.  Names resolve lazily, so
importing the package costs nothing until a handler is used.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "PriceVolume": ".price_volume",
    "DailyKline": ".kline",
    "WeeklyKline": ".kline",
    "MinuteFactors": ".minute",
    "SequenceDataset": ".sequence",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
