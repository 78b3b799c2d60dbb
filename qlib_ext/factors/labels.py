"""The prediction target: forward return traded at vwap (Huatai 2024, p.4 and figure 10: trades at vwap).

Convention: the signal is known after the close of day t; the position is bought at day t+1's vwap
and sold at day t+1+h's vwap, so the label of day t is

    y_t = vwap_{t+1+h} / vwap_{t+1} - 1      (Qlib: ``Ref($vwap, -(h+1)) / Ref($vwap, -1) - 1``)

a simple return over h sessions (h = 10 by default).  It is NaN when the stock is suspended on either
trading day (no vwap) and in the last h+1 sessions of the data.  Qlib's ``$vwap`` is adjusted like the
other prices, so splits and dividends do not show up as returns.
"""

from __future__ import annotations

import operator

__all__ = ["forward_return_label"]


def forward_return_label(horizon: int = 10, price: str = "$vwap") -> str:
    """Qlib expression of the h-session forward return bought at t+1 ``price`` and sold at t+1+h."""
    try:
        h = operator.index(horizon)
    except TypeError:
        h = 0
    if isinstance(horizon, bool) or h < 1:
        raise ValueError(f"label horizon must be a positive integer of sessions, got {horizon!r}")
    return f"Ref({price}, -{h + 1})/Ref({price}, -1) - 1"

