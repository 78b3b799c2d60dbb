"""Minute-factor operators (SPEC 4.2): one day's 240 one-minute bars -> one number per stock-day.

Two execution paths with the same numbers:

* Qlib operators (``MinSkew()``, ``MinCorrVR()``, ...) registered by ``qlib_ext.init`` through
  ``custom_ops`` (:data:`CUSTOM_OPS`), usable in any daily expression: ``Mean(MinSkew(), 20)``;
* the batch engine (:func:`compute_factors`, :func:`build_minute_factors`) that writes the library
  as daily fields ``mf_*`` of a dataset.

Modules: ``algebra`` (returns, masks, reductions), ``library`` (the named factors and formulas),
``grid`` (minute labels -> the [rows x 240] grid), ``sources`` (bins, synthetic stream, tushare files),
``batch`` (the chunked engine), ``build`` (writing ``mf_*`` fields), ``qlib_ops`` (Qlib operators, one
class generated per library entry), ``xp`` (NumPy / torch primitives).
"""

from .algebra import Minutes
from .batch import compute_factors
from .build import build_minute_factors
from .library import LIBRARY, MF_FIELDS, compute_library, mean_expressions

__all__ = [
    "CUSTOM_OPS", "LIBRARY", "MF_FIELDS", "Minutes", "build_minute_factors", "compute_factors",
    "compute_library", "mean_expressions",
]


def __getattr__(name: str):
    """``CUSTOM_OPS`` (the operator classes ``qlib_ext.init`` registers) imports Qlib's expression
    engine (~3 s, scipy): loaded on first use so the batch engine's imports stay light."""
    if name == "CUSTOM_OPS":
        from .qlib_ops import MINUTE_OPS

        return list(MINUTE_OPS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
