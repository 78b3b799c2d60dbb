"""Shared helpers of the reliability suite: file digests, leftovers beside a target, a tiny tushare-like source."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from qlib_ext.data.calendar import trading_days

CODES = ("600000.SH", "000001.SZ", "300750.SZ")
N_DAYS = 12


def digest(root: Path, under: str = "") -> dict[str, str]:
    """sha256 of every file below ``root / under``, keyed by the path relative to ``root``."""
    base = Path(root) / under
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def leftovers(parent: Path, name: str) -> list[str]:
    """Temp or backup entries a writer left beside ``parent / name`` (``.name.tmp-*``, ``.name.old-*``)."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.startswith(f".{name}."))


def disk_full(after: int, real: Callable, once: bool = False) -> Callable:
    """A stand-in for ``real`` that raises ENOSPC on its ``after + 1``-th call (earlier calls go through);
    with ``once`` only that call fails (a rename back, which needs no space, then succeeds)."""
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after and not (once and calls[0] > after + 1):
            raise OSError(errno.ENOSPC, "No space left on device (simulated)")
        return real(*args, **kwargs)

    return wrapped


def make_source(root: Path, fmt: str = "csv") -> pd.DatetimeIndex:
    """A valid tushare-like source: 3 stocks x 12 sessions of daily bars, adj_factor, shares, CSI300 weights.

    Prices in CNY, vol in shares (the fixture's units); every bar is consistent (low <= open, close <= high).
    Returns the sessions.
    """
    root.mkdir(parents=True, exist_ok=True)
    days = trading_days("2024-01-02", "2024-01-31")[:N_DAYS]
    dates = days.strftime("%Y%m%d")
    rng = np.random.default_rng(0)
    rows = []
    for k, code in enumerate(CODES):
        px = 10.0 * (k + 1)
        for d in dates:
            o, c = round(px, 2), round(px * (1 + rng.normal(0, 0.01)), 2)
            h, lo = round(max(o, c) * 1.01, 2), round(min(o, c) * 0.99, 2)
            vol = 1e6 * (k + 1)
            rows.append((code, d, o, h, lo, c, round(px, 2), vol, vol * (o + c) / 2))
            px = c
    tables = {
        "daily": pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "high", "low", "close", "pre_close",
                                             "vol", "amount"]),
        "adj_factor": pd.DataFrame([(c, d, 1.0) for c in CODES for d in dates],
                                   columns=["ts_code", "trade_date", "adj_factor"]),
        "shares": pd.DataFrame([(c, d, 1e9, 8e8) for c in CODES for d in dates],
                               columns=["ts_code", "trade_date", "total_share", "float_share"]),
        "index_weight": pd.DataFrame([("000300.SH", c, dates[0], w) for c, w in zip(CODES, (50.0, 30.0, 20.0))],
                                     columns=["index_code", "con_code", "trade_date", "weight"]),
    }
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(root / f"{name}.csv", index=False)
        else:
            df.to_parquet(root / f"{name}.parquet", index=False)
    return days


def edit_csv(root: Path, name: str, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite ``root/name`` (a CSV read as text) through ``fn``."""
    path = root / name
    fn(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


def set_cell(df: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    """Copy of ``df`` with one cell (0-based data row) replaced."""
    out = df.copy()
    out.loc[out.index[row], column] = value
    return out
