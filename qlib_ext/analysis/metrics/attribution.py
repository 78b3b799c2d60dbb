"""Return attribution of an enhanced portfolio (report figures 25-26): style, industry, residual.

Pure functions of tidy frames; no Qlib.  Dating follows the risk store (:mod:`qlib_ext.risk.store`):
exposures ``X_{i,s}`` are known at the close of ``s``, factor returns ``f_t`` are realised on ``t``.
The active weights ``d_{i,s} = w_{i,s} - b_{i,s}`` are the end-of-day holdings of ``s`` (Qlib's
positions after the day's trades) minus the benchmark weights of ``s``; they earn the returns of the
next session ``t``.  For each realised day ``t`` (``s`` its previous session):

* active exposure to factor ``k``: ``x_{k,s} = sum_i d_{i,s} X_{i,k,s}`` (stocks without exposures on
  ``s`` -- e.g. just listed -- contribute nothing here; their weight is reported as ``unexposed``);
* style contribution ``c_{k,t} = x_{k,s} f_{k,t}``; ``style = sum_k c_{k,t}`` over the styles;
* industry contribution ``industry = sum_j x_{j,s} f_{j,t}`` over the ``ind_<code>`` factors;
* residual ``= a_t - style - industry``, where ``a_t`` is the active return of the backtest
  (``return - bench - cost``, Qlib's report_normal, "difference" convention), so the three parts add
  up to ``a_t`` exactly.  The residual is split further into ``country`` (``x_{country,s} f_{country,t}``,
  the net active weight times the market: cash and benchmark weight outside the store), ``specific``
  (``sum_i d_{i,s} u_{i,t}`` with the store's specific returns, when given) and ``other`` (the rest:
  trading at vwap instead of the close, costs, stocks outside the regression).

Per-period figures are additive: a component's cumulative contribution is the running *sum* of its
daily contributions (contributions do not compound separately), annualised as
``sum x periods / n`` (arithmetic, 252 sessions a year), like Barra's attribution reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

PERIODS = 252
COMPONENTS = ("active", "style", "industry", "residual")
RESIDUAL_PARTS = ("country", "specific", "other")
COUNTRY = "country"
INDUSTRY_PREFIX = "ind_"


def _check_index(obj: pd.Series | pd.DataFrame, what: str, levels: int) -> None:
    if levels == 2:
        if not isinstance(obj.index, pd.MultiIndex) or list(obj.index.names) != ["datetime", "instrument"]:
            raise TypeError(f"{what}: expected a (datetime, instrument) MultiIndex, got {list(obj.index.names)}")
    elif not isinstance(obj.index, pd.DatetimeIndex):
        raise TypeError(f"{what}: expected a DatetimeIndex, got {type(obj.index).__name__}")


def active_weights(weights: pd.Series, bench: pd.Series) -> pd.Series:
    """``d = w - b`` on the union of (datetime, instrument) rows (a missing weight is 0)."""
    _check_index(weights, "portfolio weights", 2)
    _check_index(bench, "benchmark weights", 2)
    w, b = weights.astype(float).align(bench.astype(float), join="outer", fill_value=0.0)
    return (w.fillna(0.0) - b.fillna(0.0)).rename("active_weight")


def active_exposures(active: pd.Series, exposures: pd.DataFrame, styles: Sequence[str]) -> pd.DataFrame:
    """Per date: ``sum_i d_i X_i`` for each style, ``ind_<code>`` (active industry weight), ``country``
    (net active weight of stocks with exposures) and ``unexposed`` (net active weight without them).

    exposures: (datetime, instrument) with the style columns and ``industry`` (integer code).
    """
    _check_index(active, "active weights", 2)
    _check_index(exposures, "exposures", 2)
    missing = [s for s in (*styles, "industry") if s not in exposures.columns]
    if missing:
        raise KeyError(f"exposures lack columns {missing} (have {list(exposures.columns)})")
    d = active.astype(float)
    x = exposures.reindex(d.index)
    has = x[list(styles)].notna().all(axis=1) & x["industry"].notna()
    dates = d.index.get_level_values("datetime")
    out = (x.loc[has, list(styles)].astype(float).mul(d[has], axis=0)).groupby(dates[has.to_numpy()]).sum()
    ind = d[has].groupby([dates[has.to_numpy()], x.loc[has, "industry"].astype(np.int64).to_numpy()]).sum()
    ind = ind.unstack(fill_value=0.0)
    ind.columns = [f"{INDUSTRY_PREFIX}{int(c)}" for c in ind.columns]
    every = pd.DatetimeIndex(sorted(set(dates)), name="datetime")
    out = out.reindex(every, fill_value=0.0)
    out = pd.concat([out, ind.reindex(every, fill_value=0.0)], axis=1)
    out[COUNTRY] = d[has].groupby(dates[has.to_numpy()]).sum().reindex(every, fill_value=0.0)
    out["unexposed"] = d[~has].groupby(dates[~has.to_numpy()]).sum().reindex(every, fill_value=0.0)
    return out.rename_axis("datetime")


def next_session(dates: pd.DatetimeIndex, calendar: pd.DatetimeIndex) -> pd.Series:
    """For each date of ``dates``: the next session of ``calendar`` (NaT after the last one)."""
    cal = pd.DatetimeIndex(calendar).sort_values().unique()
    pos = cal.searchsorted(dates, side="right")
    nxt = pd.DatetimeIndex([cal[p] if p < len(cal) else pd.NaT for p in pos])
    return pd.Series(nxt, index=dates)


def lag_to_realised(frame: pd.DataFrame, calendar: pd.DatetimeIndex) -> pd.DataFrame:
    """Re-date rows known at the close of ``s`` to the session after ``s`` in ``calendar``."""
    nxt = next_session(pd.DatetimeIndex(frame.index), calendar)
    out = frame.set_axis(pd.DatetimeIndex(nxt.to_numpy(), name="datetime"), axis=0)
    return out[out.index.notna()]


def specific_contribution(active: pd.Series, specific: pd.Series, calendar: pd.DatetimeIndex) -> pd.Series:
    """``sum_i d_{i,s} u_{i,t}`` per realised day ``t`` (``s`` its previous session); 0 without data."""
    _check_index(active, "active weights", 2)
    _check_index(specific, "specific returns", 2)
    dates = pd.DatetimeIndex(active.index.get_level_values("datetime"))
    uniq = dates.unique()
    nxt = next_session(uniq, calendar)
    realised = pd.DatetimeIndex(nxt.reindex(dates).to_numpy())
    d = pd.Series(active.to_numpy(float), index=pd.MultiIndex.from_arrays(
        [realised, active.index.get_level_values("instrument")], names=["datetime", "instrument"]))
    d = d[d.index.get_level_values("datetime").notna()]
    u = specific.astype(float).reindex(d.index)
    prod = (d * u).dropna()
    return prod.groupby(level="datetime").sum().rename("specific")


def attribute(active_return: pd.Series, exposure: pd.DataFrame, factor_returns: pd.DataFrame,
              styles: Sequence[str], specific: pd.Series | None = None) -> pd.DataFrame:
    """Daily attribution (see the module docstring) on the days of ``active_return``.

    exposure: :func:`active_exposures` (known at the close, by date); factor_returns: datetime x
    factor (realised dates; must cover every day that has a previous-session exposure); specific:
    :func:`specific_contribution` (optional).  Columns: ``active, style, industry, residual, country,
    specific, other`` and one per style.
    """
    _check_index(active_return, "active return", 1)
    _check_index(exposure, "active exposures", 1)
    _check_index(factor_returns, "factor returns", 1)
    a = active_return.astype(float).sort_index()
    if a.empty:
        raise ValueError("active return: no days to attribute (empty backtest window)")
    if a.isna().any():
        raise ValueError(f"active return: NaN on {[str(d.date()) for d in a.index[a.isna()][:3]]}")
    missing = [s for s in styles if s not in factor_returns.columns]
    if missing:
        raise KeyError(f"factor returns lack the styles {missing} (have {list(factor_returns.columns)[:12]} ...)")
    calendar = pd.DatetimeIndex(sorted(set(a.index) | set(exposure.index) | set(factor_returns.index)))
    lagged = lag_to_realised(exposure.sort_index(), calendar).reindex(a.index)
    held = lagged.notna().any(axis=1)
    uncovered = held & ~a.index.isin(factor_returns.index)
    if uncovered.any():
        days = [str(d.date()) for d in a.index[uncovered.to_numpy()][:3]]
        raise ValueError(f"factor returns: no row for {int(uncovered.sum())} backtest days (first {days}); "
                         f"the risk store spans {factor_returns.index.min().date()}..{factor_returns.index.max().date()}")
    lagged = lagged.fillna(0.0)
    f = factor_returns.reindex(a.index).fillna(0.0)
    inds = [c for c in lagged.columns if c.startswith(INDUSTRY_PREFIX)]
    for c in inds:
        if c not in f.columns:
            f[c] = 0.0  # an industry that never had regression stocks has no factor return
    per_style = lagged[list(styles)] * f[list(styles)]
    out = pd.DataFrame(index=a.index)
    out["active"] = a
    out["style"] = per_style.sum(axis=1)
    out["industry"] = (lagged[inds] * f[inds]).sum(axis=1) if inds else 0.0
    out["residual"] = a - out["style"] - out["industry"]
    out[COUNTRY] = lagged[COUNTRY] * f[COUNTRY] if COUNTRY in f and COUNTRY in lagged else 0.0
    out["specific"] = specific.reindex(a.index).fillna(0.0) if specific is not None else 0.0
    out["other"] = out["residual"] - out[COUNTRY] - out["specific"]
    return pd.concat([out, per_style], axis=1).rename_axis("datetime")


def cumulative(contrib: pd.DataFrame) -> pd.DataFrame:
    """Running sum of each daily contribution (additive; see the module docstring)."""
    return contrib.cumsum()


def default_periods(index: pd.DatetimeIndex, window: Sequence[Any] | None = None,
                    min_days: int = 20) -> dict[str, tuple]:
    """``full`` span, each calendar year with at least ``min_days`` sessions (an annualised stub of a few
    days, such as the backtest's first day 2016-12-30, says nothing), and ``window`` (when it overlaps)."""
    index = pd.DatetimeIndex(index)
    if index.empty:
        return {}
    out: dict[str, tuple] = {"full": (index.min(), index.max())}
    for y in sorted(set(index.year)):
        days = index[index.year == y]
        if len(days) >= min_days:
            out[str(y)] = (days.min(), days.max())
    if window is not None:
        w0, w1 = pd.Timestamp(window[0]), pd.Timestamp(window[1])
        if ((index >= w0) & (index <= w1)).any():
            out["window"] = (w0, w1)
    return out


def period_table(contrib: pd.DataFrame, periods: Mapping[str, Sequence[Any]], annualise: bool = True,
                 periods_per_year: int = PERIODS) -> pd.DataFrame:
    """Rows = periods, columns = components: ``sum`` of daily contributions, ``x periods_per_year / n``
    when ``annualise``; plus ``n_days``.  A period without days gives NaN."""
    rows = {}
    for name, (start, end) in periods.items():
        part = contrib.loc[pd.Timestamp(start):pd.Timestamp(end)]
        n = len(part)
        if n == 0:
            row = pd.Series(np.nan, index=contrib.columns)
        else:
            row = part.sum() * (periods_per_year / n if annualise else 1.0)
        rows[name] = pd.concat([row, pd.Series({"n_days": float(n)})])
    return pd.DataFrame(rows).T.rename_axis("period")


def summary(contrib: pd.DataFrame, styles: Sequence[str], window: Sequence[Any] | None = None,
            periods_per_year: int = PERIODS) -> dict[str, float]:
    """Headline numbers: annualised contribution of each component and style over the full span,
    the window's (not annualised) sums, and the largest identity error ``|active - style - industry - residual|``."""
    full = period_table(contrib, {"full": (contrib.index.min(), contrib.index.max())}, True, periods_per_year)
    out = {f"ann_{c}": float(full.loc["full", c]) for c in (*COMPONENTS, *RESIDUAL_PARTS, *styles)}
    if window is not None:
        w = contrib.loc[pd.Timestamp(window[0]):pd.Timestamp(window[1])]
        for c in (*COMPONENTS, *styles):
            out[f"window_{c}"] = float(w[c].sum()) if len(w) else float("nan")
    err = contrib["active"] - contrib["style"] - contrib["industry"] - contrib["residual"]
    out["identity_error"] = float(err.abs().max())
    return out
