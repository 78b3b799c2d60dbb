"""Excess-return performance of an enhanced-index portfolio (report tables 11, 23, 30, 33, 35).

Pure functions of a daily excess-return series ``e`` (DatetimeIndex, simple returns).  Conventions,
used in every table of ours (Qlib's ``PortAnaRecord`` instead annualises arithmetically,
``mean x 238``, and reports drawdowns of the *summed* returns):

* excess NAV ``N_t = prod_{s<=t} (1 + e_s)``, starting from 1 before the first day;
* annualised excess return = ``N_T^(252 / n) - 1`` (geometric, 252 sessions a year, n = days);
* tracking error (annualised volatility of e) = ``std(e) * sqrt(252)`` (sample std, ddof = 1);
* information ratio = ``mean(e) / std(e) * sqrt(252)`` (sample std, ddof = 1);
* max drawdown = ``max_t (1 - N_t / max_{s<=t} N_s)`` with the starting 1 included, a positive number;
* Calmar = annualised excess return / max drawdown;
* return of a calendar year or a window = ``prod (1 + e) - 1`` over its days; a window's drawdown
  is measured on the NAV rebased to 1 at the window's start;
* annual turnover (one-sided) = ``sum(two-sided daily traded value / account value) / 2 x 252 / n``.

:func:`excess_returns` derives ``e`` from Qlib's ``report_normal`` frame: ``e = return - bench - cost``
("difference", Qlib's "excess return with cost") or ``(1 + return - cost) / (1 + bench) - 1``
("ratio": N is then the portfolio NAV over the benchmark NAV).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

PERIODS = 252
DEFAULT_WINDOW = ("2024-01-01", "2024-03-29")
EXCESS_MODES = ("difference", "ratio")


def _clean(e: pd.Series) -> pd.Series:
    if not isinstance(e, pd.Series):
        raise TypeError(f"excess returns: expected a pandas Series, got {type(e).__name__}")
    if not isinstance(e.index, pd.DatetimeIndex):
        raise TypeError("excess returns: the index must be a DatetimeIndex")
    e = e.astype(float).sort_index()
    if e.isna().any():
        bad = [str(d.date()) for d in e.index[e.isna()][:3]]
        raise ValueError(f"excess returns: {int(e.isna().sum())} NaN values (first on {bad})")
    return e


def excess_returns(report: pd.DataFrame, with_cost: bool = True, mode: str = "difference") -> pd.Series:
    """Daily excess returns from Qlib's ``report_normal`` (columns return, bench, cost)."""
    missing = {"return", "bench", "cost"} - set(report.columns)
    if missing:
        raise KeyError(f"report_normal lacks columns {sorted(missing)} (have {list(report.columns)})")
    if mode not in EXCESS_MODES:
        raise ValueError(f"excess mode must be one of {EXCESS_MODES}, got {mode!r}")
    cost = report["cost"] if with_cost else 0.0
    if mode == "difference":
        e = report["return"] - report["bench"] - cost
    else:
        e = (1 + report["return"] - cost) / (1 + report["bench"]) - 1
    return e.astype(float).rename("excess")


def excess_nav(e: pd.Series) -> pd.Series:
    """``N_t = prod_{s<=t} (1 + e_s)``."""
    return (1 + _clean(e)).cumprod().rename("excess_nav")


def annualized_return(e: pd.Series, periods: int = PERIODS) -> float:
    """Geometric annualisation ``N_T^(periods / n) - 1``."""
    e = _clean(e)
    if e.empty:
        return float("nan")
    return float(np.prod(1 + e.to_numpy()) ** (periods / len(e)) - 1)


def information_ratio(e: pd.Series, periods: int = PERIODS) -> float:
    """``mean / std (ddof 1) * sqrt(periods)``; NaN with fewer than 2 days or zero dispersion."""
    e = _clean(e)
    sd = e.std(ddof=1) if len(e) > 1 else float("nan")
    if not np.isfinite(sd) or sd <= 1e-12 * float(e.abs().max()):  # constant up to rounding noise
        return float("nan")
    return float(e.mean() / sd * np.sqrt(periods))


def annualized_volatility(e: pd.Series, periods: int = PERIODS) -> float:
    """``std (ddof 1) * sqrt(periods)``; NaN with fewer than 2 days."""
    e = _clean(e)
    return float(e.std(ddof=1) * np.sqrt(periods)) if len(e) > 1 else float("nan")


def drawdown(e: pd.Series) -> pd.Series:
    """Drawdown ``1 - N_t / max(1, max_{s<=t} N_s)`` of each day (>= 0)."""
    nav = excess_nav(e)
    peak = np.maximum.accumulate(np.r_[1.0, nav.to_numpy()])[1:]
    return pd.Series(1 - nav.to_numpy() / peak, index=nav.index, name="drawdown")


def max_drawdown(e: pd.Series) -> float:
    """Largest drawdown of the excess NAV (a positive fraction; 0 when it never falls)."""
    dd = drawdown(e)
    return float(dd.max()) if len(dd) else float("nan")


def calmar(e: pd.Series, periods: int = PERIODS) -> float:
    """Annualised excess return / max drawdown (NaN when there is no drawdown)."""
    mdd = max_drawdown(e)
    return annualized_return(e, periods) / mdd if mdd > 0 else float("nan")


def period_return(e: pd.Series) -> float:
    """Compounded return over the series: ``prod (1 + e) - 1``."""
    return float(np.prod(1 + _clean(e).to_numpy()) - 1)


def yearly_returns(e: pd.Series) -> pd.Series:
    """Compounded excess return of each calendar year present in ``e``."""
    e = _clean(e)
    return (1 + e).groupby(e.index.year).prod().sub(1).rename("excess_return").rename_axis("year")


def window(e: pd.Series, start: Any, end: Any) -> pd.Series:
    """The days of ``e`` inside ``[start, end]``."""
    e = _clean(e)
    return e.loc[pd.Timestamp(start):pd.Timestamp(end)]


def annual_turnover(turnover: pd.Series, periods: int = PERIODS) -> float:
    """One-sided annual turnover from Qlib's daily two-sided ``turnover`` (traded value / account value)."""
    t = turnover.astype(float).fillna(0.0)
    return float(t.sum() / 2 * periods / len(t)) if len(t) else float("nan")


def performance_summary(e: pd.Series, window_range: Sequence = DEFAULT_WINDOW, periods: int = PERIODS,
                        turnover: pd.Series | None = None, years: Sequence[int] | None = None,
                        constituent_weight: float | None = None) -> pd.Series:
    """One row of the report's performance tables (fractions, not percent).

    Keys: ``annualized_excess``, ``information_ratio``, ``tracking_error``, ``excess_max_drawdown``, ``calmar``,
    ``excess_<year>`` (each year of ``years``, default all years in ``e``), ``window_excess``,
    ``window_max_drawdown`` (inside ``window_range``), and when given ``annual_turnover`` and
    ``constituent_weight`` (the mean realised weight in benchmark members, table 23).
    """
    e = _clean(e)
    out: dict[str, float] = {
        "annualized_excess": annualized_return(e, periods),
        "information_ratio": information_ratio(e, periods),
        "tracking_error": annualized_volatility(e, periods),
        "excess_max_drawdown": max_drawdown(e),
        "calmar": calmar(e, periods),
    }
    yearly = yearly_returns(e)
    for y in (yearly.index if years is None else years):
        out[f"excess_{int(y)}"] = float(yearly.get(int(y), np.nan))
    w = window(e, *window_range)
    out["window_excess"] = period_return(w) if len(w) else float("nan")
    out["window_max_drawdown"] = max_drawdown(w) if len(w) else float("nan")
    if turnover is not None:
        out["annual_turnover"] = annual_turnover(turnover.reindex(e.index), periods)
    if constituent_weight is not None:
        out["constituent_weight"] = float(constituent_weight)
    return pd.Series(out, name="performance")


def nav_frame(returns: pd.Series | Mapping[str, pd.Series], start: Any = None, end: Any = None) -> pd.DataFrame:
    """Excess NAVs (columns) of one or several excess-return series, each rebased to 1 at ``start``.

    A leading row of 1.0 is added on the day before the first return, so every curve starts at 1.
    """
    series = {"excess": returns} if isinstance(returns, pd.Series) else dict(returns)
    cols = {}
    for name, e in series.items():
        e = window(e, start or e.index.min(), end or e.index.max())
        if e.empty:
            continue
        nav = excess_nav(e)
        first = e.index[0] - pd.Timedelta(days=1)
        cols[name] = pd.concat([pd.Series([1.0], index=[first]), nav])
    return pd.DataFrame(cols).sort_index()
