"""Style timing of an enhanced portfolio (report figure 27, table 28, figure 29).

Pure functions; no Qlib.  At each rebalance date ``s`` the portfolio's active exposure to style
``k`` is ``x_{k,s} = sum_i (w_{i,s} - b_{i,s}) X_{i,k,s}`` (end-of-day holdings, exposures known at
the close; :func:`qlib_ext.analysis.metrics.attribution.active_exposures`).  It is set against the style's
return over the next ``h`` sessions (default 5), compounded from the risk store's daily factor
returns: ``F_{k,s} = prod_{t = s+1..s+h} (1 + f_{k,t}) - 1`` (NaN when fewer than ``h`` sessions follow).

Correlation: Pearson over the rebalances where both are finite.  Outlier rule (documented, one
rule for every style): a rebalance is an outlier of style ``k`` when the robust z-score
``|F - median(F)| / (1.4826 MAD(F))`` of its forward factor return exceeds ``z`` (default 3;
MAD = median absolute deviation over the run's rebalances, 1.4826 MAD = the std of a normal
sample; zero MAD flags nothing).  Only the factor-return coordinate is screened: the report's
outliers are the weeks of extreme style moves (2024-01-29: large caps far ahead), while the active
exposure is bounded by the optimizer and often sits at its bound, where a screen on it would flag
ordinary rebalances.  The correlation "without outliers" drops them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

HORIZON = 5
OUTLIER_Z = 3.0
MAD_SCALE = 1.4826


def forward_returns(factor_returns: pd.DataFrame, dates: Sequence[Any], horizon: int = HORIZON) -> pd.DataFrame:
    """``prod_{t=s+1..s+h} (1 + f_t) - 1`` for each date ``s`` of ``dates`` (rows), each factor (columns).

    The sessions after ``s`` are the rows of ``factor_returns`` (realised dates) strictly after ``s``.
    """
    if int(horizon) < 1:
        raise ValueError(f"horizon must be >= 1 session, got {horizon}")
    f = factor_returns.sort_index().astype(float)
    if not isinstance(f.index, pd.DatetimeIndex):
        raise TypeError("factor returns: expected a DatetimeIndex")
    logs = np.log1p(f.fillna(0.0).to_numpy())
    cum = np.vstack([np.zeros((1, f.shape[1])), np.cumsum(logs, axis=0)])  # cum[p] = sum of rows < p
    dates = pd.DatetimeIndex(dates)
    start = f.index.searchsorted(dates, side="right")                      # first row after s
    stop = start + int(horizon)
    ok = stop <= len(f)
    out = np.full((len(dates), f.shape[1]), np.nan)
    out[ok] = np.expm1(cum[stop[ok]] - cum[start[ok]])
    return pd.DataFrame(out, index=dates.rename("datetime"), columns=f.columns)


def robust_z(v: pd.Series) -> pd.Series:
    """``|v - median| / (1.4826 MAD)``; 0 everywhere when the MAD is 0 (NaN stays NaN)."""
    med = v.median()
    mad = (v - med).abs().median()
    if not np.isfinite(mad) or mad <= 0:
        return v.where(v.isna(), 0.0)
    return (v - med).abs() / (MAD_SCALE * mad)


def timing_points(exposure: pd.DataFrame, forward: pd.DataFrame, styles: Sequence[str],
                  z: float = OUTLIER_Z) -> pd.DataFrame:
    """Long frame, one row per (rebalance date, style): ``exposure``, ``forward_return``, ``outlier``.

    exposure: rebalance dates x styles (active exposures); forward: :func:`forward_returns` on the
    same dates.  Rows where either value is missing are dropped.
    """
    missing = [s for s in styles if s not in exposure.columns or s not in forward.columns]
    if missing:
        raise KeyError(f"style timing: styles {missing} missing from the exposures or the factor returns")
    frames = []
    for s in styles:
        p = pd.DataFrame({"exposure": exposure[s].astype(float),
                          "forward_return": forward[s].reindex(exposure.index).astype(float)}).dropna()
        p["outlier"] = robust_z(p["forward_return"]) > z
        p.insert(0, "style", s)
        frames.append(p.rename_axis("datetime").reset_index())
    cols = ["datetime", "style", "exposure", "forward_return", "outlier"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _corr(x: pd.Series, y: pd.Series) -> float:
    def flat(v: pd.Series) -> bool:  # constant up to rounding (an exposure pinned at its bound)
        return not v.std(ddof=0) > 1e-12 * max(1.0, float(v.abs().max()))

    if len(x) < 3 or flat(x) or flat(y):
        return float("nan")
    return float(np.corrcoef(x.to_numpy(float), y.to_numpy(float))[0, 1])


def timing_table(points: pd.DataFrame, styles: Sequence[str]) -> pd.DataFrame:
    """Table 28: per style ``n``, ``corr``, ``n_outliers``, ``corr_ex_outliers``, ``mean_exposure``,
    ``outlier_dates`` (comma-separated)."""
    rows = {}
    for s in styles:
        p = points[points["style"] == s]
        keep = p[~p["outlier"].astype(bool)]
        rows[s] = {"n": float(len(p)), "corr": _corr(p["exposure"], p["forward_return"]),
                   "n_outliers": float(len(p) - len(keep)),
                   "corr_ex_outliers": _corr(keep["exposure"], keep["forward_return"]),
                   "mean_exposure": float(p["exposure"].mean()) if len(p) else float("nan"),
                   "outlier_dates": ", ".join(str(pd.Timestamp(d).date()) for d in p.loc[p["outlier"].astype(bool), "datetime"])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("style")
