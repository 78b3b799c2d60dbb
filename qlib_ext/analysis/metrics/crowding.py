"""Crowding of a signal (report figures 21-22): how much more its long leg trades than its short leg.

``ratio_t = mean(turn_10d over the top fraction by signal on t) / mean(turn_10d over the bottom
fraction)`` (legs of :mod:`.legs` among names with both a signal and a finite ``turn_10d``, the
10-session mean turnover of :mod:`qlib_ext.factors`).  The long-run percentile of a day is the share
of all days (of the whole series) whose ratio is <= that day's (``rank(pct=True, method="max")``).
Peaks: days whose ratio is the largest within ``separation`` sessions either side and whose
percentile is at least ``min_percentile``, largest first.  Pure pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .legs import leg_means


def crowding_ratio(signal: pd.Series, turnover: pd.Series, fraction: float = 0.05) -> pd.DataFrame:
    """datetime x [long, short, ratio, percentile] (long/short: the legs' mean turnover)."""
    legs = leg_means(signal, turnover, fraction)
    out = legs.assign(ratio=legs["long"] / legs["short"].where(legs["short"] > 0))
    out = out[np.isfinite(out["ratio"])]
    if out.empty:
        raise ValueError("crowding: no day with a finite turnover ratio (signal or turn_10d missing)")
    out["percentile"] = out["ratio"].rank(pct=True, method="max")
    return out


def crowding_peaks(ratio: pd.Series, separation: int = 20, min_percentile: float = 0.9,
                   n_peaks: int = 10) -> pd.DataFrame:
    """The peak dates of the ratio series (see module docstring): date x [ratio, percentile]."""
    r = ratio.dropna()
    local = r.rolling(2 * separation + 1, center=True, min_periods=1).max()
    pct = r.rank(pct=True, method="max")
    peaks = r[(r >= local) & (pct >= min_percentile)]
    out = pd.DataFrame({"ratio": peaks, "percentile": pct[peaks.index]})
    out = out.sort_values("ratio", ascending=False).head(n_peaks)
    out.index.name = "datetime"
    return out


def crowding_summary(table: pd.DataFrame) -> dict[str, float]:
    """Headline numbers: mean, median, last ratio and its long-run percentile, max ratio."""
    r = table["ratio"]
    return {"mean_ratio": float(r.mean()), "median_ratio": float(r.median()), "last_ratio": float(r.iloc[-1]),
            "last_percentile": float(table["percentile"].iloc[-1]), "max_ratio": float(r.max()),
            "n_days": float(r.size)}
