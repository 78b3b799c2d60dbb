"""Quantile backtests of a factor (report figures 19-20): k groups, rebalanced every ``hold``
sessions, no cost, each group equal-weighted and bought and held between rebalances.

Convention (one definition, tested against a direct pandas loop):

* rebalance signal days: every ``hold``-th day of the factor's own (sorted) days, from the first;
* entry: ``lag`` sessions after the signal day (default 1: the factor is known at the close), at the
  ``prices`` of that session; a name without a price there is left out of that period;
* a group's value between entries: ``V(t) = V(entry) * mean_i P_i(t) / P_i(entry)`` (prices carried
  forward over suspensions and after delisting); the next entry is the exit; the last period ends
  ``hold`` sessions after its entry or at the last price;
* groups: :func:`.legs.quantile_groups` among the names with a factor and an entry price (group k =
  highest factor); the universe is all of them, equal-weighted the same way;
* relative NAV of a group: ``V_g / V_universe`` (the report's "long leg relative to the universe");
* annualised return: ``V_T^(252 / n) - 1`` over the n sessions after the first entry;
* monotonicity: Spearman correlation of group number with the groups' annualised returns (+1: each
  higher group earns more); long-short spread: annualised return of group k minus that of group 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .legs import quantile_groups

PERIODS = 252
UNIVERSE_COL = "universe"


def quantile_navs(factor: pd.Series, prices: pd.DataFrame, n_groups: int = 10, hold: int = 10,
                  lag: int = 1) -> pd.DataFrame:
    """session x [1..n_groups, "universe"]: value of each group (1.0 at the first entry); see module docstring."""
    if hold < 1 or lag < 0:
        raise ValueError(f"hold must be >= 1 and lag >= 0, got hold={hold}, lag={lag}")
    f = factor.dropna()
    if f.empty:
        raise ValueError("quantile backtest: the factor has no finite value")
    cal = prices.index
    raw = prices.to_numpy(dtype=np.float64)
    filled = prices.ffill().to_numpy(dtype=np.float64)
    cols = {c: j for j, c in enumerate(prices.columns)}
    days = f.index.get_level_values("datetime").unique().sort_values()
    pos = cal.get_indexer(days[::hold])
    starts = [(d, p + lag) for d, p in zip(days[::hold], pos) if p >= 0 and p + lag < len(cal)]
    if not starts:
        raise ValueError("quantile backtest: no rebalance day with a later price session")
    values = np.full((len(cal), n_groups + 1), np.nan)
    level = np.ones(n_groups + 1)
    for i, (d, e) in enumerate(starts):
        x = starts[i + 1][1] if i + 1 < len(starts) else min(e + hold, len(cal) - 1)
        day = f.xs(d, level="datetime")
        j = np.array([cols.get(inst, -1) for inst in day.index])
        ok = j >= 0
        ok[ok] = np.isfinite(raw[e, j[ok]]) & (raw[e, j[ok]] > 0)
        if ok.sum() < n_groups:
            continue
        day, j = day[ok], j[ok]
        g = quantile_groups(pd.Series(day.to_numpy(), index=pd.MultiIndex.from_arrays(
            [np.repeat(d, len(day)), day.index], names=["datetime", "instrument"])), n_groups).to_numpy()
        rel = filled[e : x + 1, j] / raw[e, j]  # (sessions, names)
        for k in range(n_groups):
            values[e : x + 1, k] = level[k] * rel[:, g == k + 1].mean(axis=1)
        values[e : x + 1, n_groups] = level[n_groups] * rel.mean(axis=1)
        level = values[x].copy()
    out = pd.DataFrame(values, index=cal, columns=[*range(1, n_groups + 1), UNIVERSE_COL])
    first = starts[0][1]
    return out.iloc[first:].dropna(how="all")


def relative_navs(navs: pd.DataFrame) -> pd.DataFrame:
    """Each group's value over the universe's."""
    return navs.drop(columns=UNIVERSE_COL).div(navs[UNIVERSE_COL], axis=0)


def annualized(nav: pd.Series, periods: int = PERIODS) -> float:
    """``(V_T / V_0)^(periods / n) - 1`` with n = sessions after the first."""
    v = nav.dropna()
    return float((v.iloc[-1] / v.iloc[0]) ** (periods / (len(v) - 1)) - 1) if len(v) > 1 else float("nan")


def rebase(navs: pd.DataFrame, start: Any = None, end: Any = None) -> pd.DataFrame:
    """The NAVs inside [start, end], rebased to 1 on the first session of the window."""
    w = navs.loc[pd.Timestamp(start) if start is not None else None: pd.Timestamp(end) if end is not None else None]
    return w / w.iloc[0] if len(w) else w


def quantile_summary(navs: pd.DataFrame, periods: int = PERIODS) -> dict[str, float]:
    """annualised return per group, ``long_excess`` (annualised relative NAV of the top group),
    ``monotonicity`` and ``long_short`` (see module docstring)."""
    groups = [c for c in navs.columns if c != UNIVERSE_COL]
    ann = pd.Series({g: annualized(navs[g], periods) for g in groups})
    top, bottom = groups[-1], groups[0]
    mono = float(pd.Series(np.arange(len(groups)), index=groups).corr(ann, method="spearman"))
    return {**{f"group_{g}": float(v) for g, v in ann.items()},
            "universe": annualized(navs[UNIVERSE_COL], periods),
            "long_excess": annualized(navs[top] / navs[UNIVERSE_COL], periods),
            "monotonicity": mono, "long_short": float(ann[top] - ann[bottom])}
