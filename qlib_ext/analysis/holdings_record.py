"""Old import path, kept for callers outside ``analysis/``: see :mod:`qlib_ext.analysis.records.holdings`."""

from .records.holdings import HEADLINE, HoldingsProfileRecord

__all__ = ["HEADLINE", "HoldingsProfileRecord"]
