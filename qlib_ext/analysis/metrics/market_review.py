"""Market review (report figures 1-4): index NAVs relative to a base date, the size factor's
cumulative return, and the annualised futures basis.

Pure functions; no Qlib, no file I/O (the futures file is read by
:func:`qlib_ext.analysis.inputs.read_futures`).  Conventions:

* relative NAV of index ``j``: ``close_{j,t} / close_{j,base}`` with ``base`` the last session on or
  before the base date (report: 2023-12-29);
* size factor NAV: ``prod_{base < t' <= t} (1 + f_{t'})`` compounded daily from the risk store's
  realised factor returns (the report: "Barra size factor, compounded daily"), 1 on the base date;
* annualised basis of a futures contract: ``(F_t / S_t - 1) x 365 / (expiry - t in calendar days)``
  with ``S`` the index close (negative = discount); days with fewer than ``min_days`` to expiry are
  dropped (the ratio explodes near expiry).

Futures price file (optional, CSV or Parquet), one row per date per index, the contract the user
tracks (e.g. the current-quarter IC / IM): columns ``date``, ``index`` (``csi500``, ``csi1000``, ...
or the index instrument, e.g. ``SH000905``), ``close``, ``expiry`` (the contract's last trading day).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

BASE_DATE = "2023-12-29"
FUTURES_COLUMNS = ("date", "index", "close", "expiry")
MIN_DAYS_TO_EXPIRY = 5


def _base_session(index: pd.DatetimeIndex, base_date: Any, what: str) -> pd.Timestamp:
    base = pd.Timestamp(base_date)
    before = index[index <= base]
    if before.empty:
        raise ValueError(f"{what}: no session on or before the base date {base.date()} "
                         f"(data start {index.min().date() if len(index) else 'none'})")
    return before.max()


def relative_nav(closes: pd.DataFrame, base_date: Any = BASE_DATE) -> pd.DataFrame:
    """``close_t / close_base`` for each column (index), from the base session on."""
    c = closes.sort_index().astype(float)
    if c.empty:
        raise ValueError("index closes: no data")
    base = _base_session(c.index, base_date, "index closes")
    level = c.loc[base]
    bad = [k for k, v in level.items() if not np.isfinite(v) or v <= 0]
    if bad:
        raise ValueError(f"index closes: no positive close on the base session {base.date()} for {bad}")
    return (c.loc[base:] / level).rename_axis("datetime")


def factor_nav(factor_return: pd.Series, base_date: Any = BASE_DATE) -> pd.Series:
    """Daily-compounded NAV of a factor, 1 on the base session, from the base session on."""
    f = factor_return.sort_index().astype(float)
    if f.dropna().empty:
        raise ValueError(f"factor return {factor_return.name!r}: no data")
    base = _base_session(f.index, base_date, f"factor return {factor_return.name!r}")
    after = f.loc[base:].iloc[1:].fillna(0.0)
    nav = pd.concat([pd.Series([1.0], index=[base]), (1 + after).cumprod()])
    return nav.rename(factor_return.name).rename_axis("datetime")


def nav_summary(navs: pd.DataFrame) -> pd.DataFrame:
    """Per column: return since the base (``last - 1``), max drawdown of the NAV and its trough date."""
    rows = {}
    for c in navs.columns:
        v = navs[c].dropna()
        if v.empty:
            rows[c] = {"return": np.nan, "max_drawdown": np.nan, "trough": ""}
            continue
        dd = 1 - v / v.cummax()
        rows[c] = {"return": float(v.iloc[-1] - 1), "max_drawdown": float(dd.max()),
                   "trough": str(dd.idxmax().date()) if dd.max() > 0 else ""}
    return pd.DataFrame.from_dict(rows, orient="index")


def check_futures(df: pd.DataFrame, source: str = "futures prices") -> pd.DataFrame:
    """Validate a futures price table (module docstring); errors name ``source`` and the column or row.

    Returns ``date``, ``index``, ``close``, ``expiry`` with dates parsed and closes as floats.
    """
    path = source
    missing = [c for c in FUTURES_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (need {list(FUTURES_COLUMNS)})")
    df = df[list(FUTURES_COLUMNS)].copy()
    for col in ("date", "expiry"):
        parsed = pd.to_datetime(df[col], errors="coerce")
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise ValueError(f"{path}, row {row + 2}: {col}={str(df[col].iloc[row])!r} is not a date")
        df[col] = parsed
    close = pd.to_numeric(df["close"], errors="coerce")
    if (~(close > 0)).any():
        row = int(np.flatnonzero((~(close > 0)).to_numpy())[0])
        raise ValueError(f"{path}, row {row + 2}: close={str(df['close'].iloc[row])!r} is not a positive price")
    df["close"] = close.astype(float)
    df["index"] = df["index"].astype(str)
    dup = df.duplicated(["date", "index"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{path}, row {row + 2}: duplicate (date, index) "
                         f"{df['date'].iloc[row].date()} {df['index'].iloc[row]}")
    return df


def annualised_basis(futures: pd.DataFrame, spot: pd.DataFrame, names: Mapping[str, str] | None = None,
                     min_days: int = MIN_DAYS_TO_EXPIRY) -> pd.DataFrame:
    """Dates x index: ``(F / S - 1) x 365 / days to expiry`` (module docstring).

    futures: :func:`check_futures` (or :func:`~qlib_ext.analysis.inputs.read_futures`); spot: dates x index closes; names: maps the file's ``index`` values
    to spot columns (default: identity).  Raises naming an index with no spot column.
    """
    names = dict(names or {})
    out = {}
    for key, part in futures.groupby("index"):
        col = names.get(key, key)
        if col not in spot.columns:
            raise KeyError(f"futures index {key!r}: no index close for it (have {list(spot.columns)})")
        p = part.set_index("date").sort_index()
        s = spot[col].reindex(p.index)
        days = (p["expiry"] - p.index.to_series()).dt.days
        ok = (days >= min_days) & s.notna()
        out[col] = ((p["close"] / s - 1) * 365 / days)[ok]
    return pd.DataFrame(out).sort_index().rename_axis("datetime")
