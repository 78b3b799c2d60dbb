"""Cross-sectional spreads of characteristic-sorted stocks (issue 21): one definition for the real fixture,
the synthetic datasets and the generator's calibration targets.

Convention.  On each session d, among the index members of d (CSI300/500/1000, point in time) with a
valid characteristic, a *group* (e.g. the decile of smallest market cap) is formed from data known at
the close of d; its spread on d is the group's mean next-session simple return (d -> d+1) minus the
mean of all members'.  A window's spread is the sum of the daily spreads whose return ends inside the
window (the session d+1 in [start, end]).  Characteristics:

* ``size``: total market cap (CNY) at d; the group is the lowest decile (smallest caps);
* ``reversal``: minus the 5-session return through d; the highest decile (most oversold);
* ``low_vol``: the 20-session std of daily returns through d; the lowest decile;
* ``low_turn``: the 20-session mean turnover (volume / float shares) through d; the lowest decile.

``size_path`` / ``liquidity_path`` use quintiles: smallest minus largest caps, lowest minus highest
20-day turnover (the size and liquidity factor returns, "small over large", "low over high turnover").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: (characteristic, which tail is the group: "low" = lowest decile, "high" = highest)
DECILES = {"size": "low", "reversal": "high", "low_vol": "low", "low_turn": "low"}
#: the crash and rebound windows of 2024 (return dates, inclusive)
CRASH_WINDOWS = {"crash": ("2024-02-01", "2024-02-07"), "rebound": ("2024-02-08", "2024-02-29")}
#: half-year windows of the size / liquidity factor paths (return dates, inclusive)
STYLE_WINDOWS = {
    "2021H1": ("2021-02-01", "2021-06-30"), "2021H2": ("2021-07-01", "2021-12-31"),
    "2022H1": ("2022-01-01", "2022-06-30"), "2022H2": ("2022-07-01", "2022-12-31"),
    "2023H1": ("2023-01-01", "2023-06-30"), "2023H2": ("2023-07-01", "2023-12-31"),
    "2024Q1": ("2024-01-01", "2024-03-31"),
}


def characteristics(close: pd.DataFrame, mcap: pd.DataFrame, turnover: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """(date x stock) panels of the sort characteristics from adjusted closes, market caps and turnover."""
    ret = close.pct_change(fill_method=None)
    return {
        "size": mcap,
        "reversal": -(close / close.shift(5) - 1),
        "low_vol": ret.rolling(20, min_periods=15).std(),
        "low_turn": turnover.rolling(20, min_periods=15).mean(),
    }


def _group_spread(char: pd.DataFrame, nxt: pd.DataFrame, members: pd.DataFrame, q: float, tail: str) -> pd.Series:
    """Daily spread (group mean next return - members' mean) of the ``q``-quantile ``tail`` of ``char``."""
    ok = members & char.notna() & nxt.notna()
    c = char.where(ok)
    pct = c.rank(axis=1, pct=True)
    grp = (pct <= q) if tail == "low" else (pct > 1 - q)
    r = nxt.where(ok)
    return (r.where(grp).mean(axis=1) - r.mean(axis=1)).where(ok.sum(axis=1) >= 10)


def daily_spreads(close: pd.DataFrame, mcap: pd.DataFrame, turnover: pd.DataFrame,
                  members: pd.DataFrame) -> pd.DataFrame:
    """Per return date: decile spreads (``DECILES``) and quintile factor spreads ``size_q`` (small - large)
    and ``liq_q`` (low - high turnover).  Indexed by the date the next-session return ends."""
    close = close.astype(float)
    chars = characteristics(close, mcap.astype(float), turnover.astype(float))
    nxt = close.shift(-1) / close - 1
    members = members.reindex_like(close).fillna(False).astype(bool)
    out = {k: _group_spread(chars[k], nxt, members, 0.1, tail) for k, tail in DECILES.items()}
    out["size_q"] = (_group_spread(chars["size"], nxt, members, 0.2, "low")
                     - _group_spread(chars["size"], nxt, members, 0.2, "high"))
    out["liq_q"] = (_group_spread(chars["low_turn"], nxt, members, 0.2, "low")
                    - _group_spread(chars["low_turn"], nxt, members, 0.2, "high"))
    df = pd.DataFrame(out)
    df.index = pd.DatetimeIndex(list(close.index[1:]) + [pd.NaT])  # labelled by the return's end date
    return df.iloc[:-1]


def window_sums(daily: pd.DataFrame, windows: dict[str, tuple[str, str]], columns) -> pd.DataFrame:
    """Sum of the daily spreads over each window (rows) for ``columns``; NaN where a window is not covered."""
    rows = {}
    for name, (a, b) in windows.items():
        w = daily.loc[a:b, list(columns)]
        covered = len(w) and daily.index[0] <= pd.Timestamp(a) and daily.index[-1] >= pd.Timestamp(b) - pd.Timedelta(days=3)
        rows[name] = w.sum() if covered else pd.Series(np.nan, index=list(columns))
    return pd.DataFrame(rows).T


def fixture_panels(root) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(adjusted close, total market cap, turnover, members) panels of the real fixture ``root``.

    Shares: each stock's latest row on or before the day, else its first row after it (the fixture's
    README); total shares are known on 2022-03-25 only, so mcap = close x float shares x (total / float
    on that date, 1 where unknown).
    """
    from pathlib import Path

    root = Path(root)
    d = pd.read_parquet(root / "daily.parquet", columns=["ts_code", "trade_date", "close", "vol", "adj_factor"])
    d["trade_date"] = pd.to_datetime(d["trade_date"])
    raw = d.pivot(index="trade_date", columns="ts_code", values="close")
    adj = raw * d.pivot(index="trade_date", columns="ts_code", values="adj_factor")
    vol = d.pivot(index="trade_date", columns="ts_code", values="vol")
    s = pd.read_parquet(root / "shares.parquet")
    s["trade_date"] = pd.to_datetime(s["trade_date"])
    flt = s.pivot_table(index="trade_date", columns="ts_code", values="float_share")
    flt = flt.reindex(flt.index.union(raw.index)).ffill().bfill().reindex(raw.index)
    tot = s.dropna(subset=["total_share"]).groupby("ts_code")["total_share"].last()
    ratio = (tot / flt.loc[:"2022-03-25"].iloc[-1].reindex(tot.index)).reindex(raw.columns).fillna(1.0).clip(lower=1.0)
    flt = flt.reindex(columns=raw.columns)
    mcap = raw * flt * ratio
    turnover = vol / flt
    m = pd.read_parquet(root / "index_member.parquet")
    members = pd.DataFrame(False, index=raw.index, columns=raw.columns)
    for code, a, b in zip(m["con_code"], m["in_date"], m["out_date"]):
        if code not in members.columns:
            continue
        b = pd.Timestamp(b) if isinstance(b, str) else members.index[-1]
        members.loc[pd.Timestamp(a):b, code] = True
    return adj, mcap, turnover, members


def dataset_panels(root) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(close, mcap, turnover, members) panels of a Qlib dataset with our fields (members: any ``w_csi*`` > 0)."""
    from ...schema import BENCHMARKS
    from ..panel import read_panel

    close = read_panel(root, "close").astype(float)
    mcap = read_panel(root, "mcap").reindex_like(close).astype(float)
    turnover = read_panel(root, "turnover").reindex_like(close).astype(float)
    members = pd.DataFrame(False, index=close.index, columns=close.columns)
    for info in BENCHMARKS.values():
        w = read_panel(root, info.weight_field).reindex_like(close)
        members |= w.fillna(0) > 0
    return close, mcap, turnover, members
