"""Qlib ``DataHandlerLP`` subclasses that turn our datasets into model inputs (SPEC section 5).

Use them from any qrun YAML with ``module_path: qlib_ext.handlers``.  Names resolve lazily, so
importing the package costs nothing until a handler is used.
"""

from __future__ import annotations

from ..lazy import lazy_exports

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "PriceVolume": ".price_volume",
    "DailyKline": ".kline",
    "WeeklyKline": ".kline",
    "MinuteFactors": ".minute",
    "SequenceDataset": ".sequence",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
