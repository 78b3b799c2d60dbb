"""Stock daily rows -> dense (day x stock) panels of the raw source values, on the XSHG calendar.

The daily file is read twice in row batches: first its keys (code, date) fix the universe, the
calendar (XSHG sessions spanning the data) and each row's cell; then its values are checked and
scattered into float32 panels.  Memory is O(days x stocks) whatever the file's row order (by stock
or by date), never O(rows x columns) of pandas objects.  Other (code, date) files (``adj_factor``,
``shares``, ``st``) are scattered onto the same grid in one pass (:func:`load_keyed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..calendar import trading_days
from ..codes import to_tushare as ts_code
from .report import ImportReport
from .sources import LazyKeys, iter_frames, numeric, parse_dates, qlib_codes, resolve_columns
from .units import TRADE_SCALES, UnitVote
from .validate import (
    RowNumbers,
    check_bars,
    check_codes_dates,
    check_duplicates,
    check_gaps,
    flag_rows,
    off_calendar,
)

VALUES = ("open", "high", "low", "close", "vol")
OPTIONAL = ("amount", "adj_factor", "pre_close", "is_st")
BATCH_ROWS = 1 << 18


@dataclass
class StockGrid:
    """The (calendar x stock) grid every stock field lives on; ``first``/``last`` = first/last row's index."""

    days: pd.DatetimeIndex
    stocks: list[str]
    first: np.ndarray
    last: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.days), len(self.stocks)

    def key(self, t: int, j: int) -> str:
        return f"{ts_code(self.stocks[j])} {self.days[t]:%Y%m%d}"

    @cached_property
    def listed(self) -> np.ndarray:
        """(T, N) bool: between a stock's first and last row (inclusive); computed once ``first``/``last`` are set."""
        t = np.arange(len(self.days))[:, None]
        return (t >= self.first[None, :]) & (t <= self.last[None, :])


@dataclass
class DailyData:
    """Raw daily panels (float32, NaN where no row) in shares/CNY, and which cells had a row."""

    grid: StockGrid
    raw: dict[str, np.ndarray]
    has_row: np.ndarray
    units: str


def _window(dates: np.ndarray, start, end) -> np.ndarray:
    ok = ~np.isnat(dates)
    if start is not None:
        ok &= dates >= np.datetime64(pd.Timestamp(start))
    if end is not None:
        ok &= dates <= np.datetime64(pd.Timestamp(end))
    return ok


def _scan_keys(path: Path, cols: dict[str, str], report: ImportReport, start, end, batch_rows: int
               ) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Pass 1: stock id (by first appearance) and date per row; -1 / NaT outside the window or unparseable."""
    gid: dict[str, int] = {}
    sids, dates, n_out = [], [], 0
    for row0, f in iter_frames(path, {k: cols[k] for k in ("ts_code", "trade_date")}, report, batch_rows):
        codes, d = qlib_codes(f["ts_code"]), parse_dates(f["trade_date"])
        check_codes_dates(report, path.name, codes, d, f["ts_code"], f["trade_date"], np.arange(row0 + 1, row0 + len(f) + 1))
        keep = _window(d, start, end) & ~pd.isna(codes)
        n_out += int((~_window(d, start, end) & ~np.isnat(d)).sum())
        cat = pd.Categorical(np.where(keep, codes, None))
        ids = np.array([gid.setdefault(c, len(gid)) for c in cat.categories], dtype=np.int32)
        sids.append(np.where(cat.codes >= 0, ids[np.maximum(cat.codes, 0)] if ids.size else -1, -1).astype(np.int32))
        dates.append(np.where(keep, d, np.datetime64("NaT")))
    if n_out:
        report.stats["daily rows outside start..end (skipped)"] = n_out
    return np.concatenate(sids), np.concatenate(dates).astype("datetime64[ns]"), list(gid), n_out


def load_daily(path: Path, report: ImportReport, units: str = "auto", start=None, end=None,
               calendar: pd.DatetimeIndex | None = None, batch_rows: int = BATCH_ROWS) -> DailyData:
    """Read, check and grid the stock daily file (raises :class:`ImportValidationError` on errors).

    The calendar is the XSHG sessions spanning the rows, or the part of ``calendar`` (an existing
    dataset's, when augmenting) that the rows span; rows outside ``calendar`` are skipped (warning).
    """
    name = path.name
    cols = resolve_columns(path, ("ts_code", "trade_date", *VALUES), OPTIONAL, report)
    sid, dates, names, _ = _scan_keys(path, cols, report, start, end, batch_rows)
    report.raise_if_failed()
    if calendar is not None and len(calendar):
        outside = (sid >= 0) & ((dates < calendar[0].to_datetime64()) | (dates > calendar[-1].to_datetime64()))
        if outside.any():
            report.warn("outside_calendar", name, f"{int(outside.sum())} rows fall outside the target calendar "
                        f"{calendar[0].date()}..{calendar[-1].date()} and are skipped", count=int(outside.sum()))
            sid = np.where(outside, -1, sid)
    valid = sid >= 0
    if not valid.any():
        report.error("empty", name, "no daily rows inside the requested window")
        report.raise_if_failed()
    lo, hi = pd.Timestamp(dates[valid].min()), pd.Timestamp(dates[valid].max())
    days = trading_days(lo, hi) if calendar is None else calendar[(calendar >= lo) & (calendar <= hi)]
    order = np.argsort(names)
    rank = np.empty(len(names), np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    stocks = [names[i] for i in order]
    sid = np.where(valid, rank[np.maximum(sid, 0)], -1).astype(np.int32)
    rows = RowNumbers()
    grid = StockGrid(days, stocks, np.zeros(0), np.zeros(0))
    t = off_calendar(report, name, dates, days, rows,
                     lambda i, dates=dates: f"{ts_code(stocks[sid[i]])} {pd.Timestamp(dates[i]):%Y%m%d}",
                     consider=valid)
    t = t.astype(np.int32)
    del dates, valid
    T, N = len(days), len(stocks)
    check_gaps(report, name, t, days)
    ok = (t >= 0) & (sid >= 0)
    check_duplicates(report, name, np.where(ok, t.astype(np.int64) * N + sid, -1), rows,
                     lambda i: grid.key(int(t[i]), int(sid[i])), n_keys=T * N)
    report.raise_if_failed()
    first = np.full(N, T, dtype=np.int64)
    last = np.full(N, -1, dtype=np.int64)
    np.minimum.at(first, sid[ok], t[ok])
    np.maximum.at(last, sid[ok], t[ok])
    grid.first, grid.last = first, last

    fields = [k for k in (*VALUES, *OPTIONAL) if k in cols]
    raw = {k: np.full((T, N), np.nan, dtype=np.float32) for k in fields}
    has_row = np.zeros((T, N), dtype=bool)
    vote = UnitVote(name)
    value_cols = {k: cols[k] for k in fields}
    for row0, f in iter_frames(path, value_cols, report, batch_rows):
        sl = slice(row0, row0 + len(f))
        m = ok[sl]
        tt, jj, rr = t[sl][m], sid[sl][m], np.flatnonzero(m) + row0 + 1
        f = f.loc[m].reset_index(drop=True)
        if "is_st" in f and f["is_st"].dtype == object:
            f["is_st"] = f["is_st"].astype("string").str.lower().map({"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0})
        numeric(f, fields, name, report)

        def keys(i: int, tt=tt, jj=jj) -> str:
            return grid.key(int(tt[i]), int(jj[i]))

        check_bars(report, name, f, rr, keys)
        if "amount" in f:
            bad = vote.update(rr, f["amount"].to_numpy(float), f["vol"].to_numpy(float), f["low"].to_numpy(float),
                              f["high"].to_numpy(float), LazyKeys(keys))
            f.loc[bad, "amount"] = np.nan        # amount inconsistent with the bar: treated as unknown
        for k in fields:
            raw[k][tt, jj] = f[k].to_numpy(np.float32)
        has_row[tt, jj] = True
    chosen = vote.decide(units, report) if "amount" in cols else _no_amount(units, name, report)
    vm, am = TRADE_SCALES[chosen]
    raw["vol"] *= np.float32(vm)
    if "amount" in raw:
        raw["amount"] *= np.float32(am)
    report.stats.update({"daily rows": int(ok.sum()), "stocks": N, "sessions": T,
                         "calendar": f"{days[0].date()} .. {days[-1].date()}"})
    return DailyData(grid, raw, has_row, chosen)


def _no_amount(units: str, name: str, report: ImportReport) -> str:
    """Units of a daily file without ``amount``: only ``units`` can say (vol in shares and in lots look alike)."""
    if units == "auto":
        report.error("units_ambiguous", name, "vol units cannot be detected: the file has no amount column (amount/vol "
                     "is how shares are told from tushare's lots of 100); a wrong guess makes volume and turnover "
                     "100x off. Pass --units fixture (vol in shares) or --units tushare (vol in lots, amount in kCNY)",
                     field="vol")
        return "fixture"
    report.units[name] = f"vol in {'lots' if units == 'tushare' else 'shares'} (given)"
    return units


def load_keyed(path: Path, grid: StockGrid, report: ImportReport, wanted: Sequence[str], optional: Sequence[str] = (),
               presence: bool = False) -> tuple[dict[str, np.ndarray], set[str]]:
    """Scatter a (code, date)-keyed file onto the grid; returns its panels and the codes not in the grid.

    Rows before/after the calendar are ignored; dates inside it must be sessions; (code, date) unique.
    ``presence`` adds panel ``_present`` (1 where the file has a row, else NaN).
    """
    name = path.name
    cols = resolve_columns(path, ("ts_code", "trade_date", *wanted), optional, report)
    T, N = grid.shape
    fields = [k for k in (*wanted, *optional) if k in cols]
    panels = {k: np.full((T, N), np.nan, dtype=np.float32) for k in fields}
    row_of = np.zeros((T, N), dtype=np.int32)
    index = pd.Index(grid.stocks)
    unknown: set[str] = set()
    for row0, f in iter_frames(path, {k: cols[k] for k in ("ts_code", "trade_date", *fields)}, report):
        _scatter_batch(f, row0, grid, index, report, name, fields, panels, row_of, unknown)
    report.stats[f"{name} rows on the grid"] = int((row_of > 0).sum())
    if presence:
        panels["_present"] = np.where(row_of > 0, np.float32(1), np.float32(np.nan))
    return panels, unknown


def _scatter_batch(f: pd.DataFrame, row0: int, grid: StockGrid, index: pd.Index, report: ImportReport, name: str,
                   fields: list[str], panels: dict[str, np.ndarray], row_of: np.ndarray, unknown: set[str]) -> None:
    """One batch of a keyed file: check codes, dates and duplicates (also against earlier batches), scatter."""
    N = len(grid.stocks)
    rows = np.arange(row0 + 1, row0 + len(f) + 1)
    codes, d = qlib_codes(f["ts_code"]), parse_dates(f["trade_date"])
    check_codes_dates(report, name, codes, d, f["ts_code"], f["trade_date"], rows)
    j = index.get_indexer(pd.Index(codes, dtype=object))
    unknown.update(pd.unique(codes[(j < 0) & ~pd.isna(codes)]))

    def keys(i: int) -> str:
        return f"{f['ts_code'].iloc[i]} {f['trade_date'].iloc[i]}"

    t = off_calendar(report, name, d, grid.days, rows, keys, consider=j >= 0)
    m = t >= 0
    check_duplicates(report, name, np.where(m, t * N + j, -1), rows, keys)
    prev = np.zeros(len(f), dtype=np.int32)
    prev[m] = row_of[t[m], j[m]]
    flag_rows(report, "error", "duplicate", name, prev > 0, lambda i: f"duplicate key, also on row {prev[i]}", rows, keys)
    numeric(f, fields, name, report, key=f["ts_code"], row0=row0)
    row_of[t[m], j[m]] = rows[m]
    for k in fields:
        panels[k][t[m], j[m]] = f[k].to_numpy(np.float32)[m]
