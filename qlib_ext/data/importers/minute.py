"""1-minute bars -> Qlib's 1min layout: 240 bars a session (09:31..11:30, 13:01..15:00).

Bars are labelled by their end time, as tushare does.  The 09:30 bar (the opening call auction) is
merged into 09:31: open = the auction's open, high/low the extremes of both, close = 09:31's close,
volume and amount summed, so the day still aggregates to the daily bar.  Files labelled by bar
start (13:00 present, 15:00 absent) are shifted by one minute (reported).  Prices are adjusted with
the day's ``factor`` and volume divided by it, as the daily fields, and ``factor`` itself is written
per minute too (as Qlib's own 1min data has it).  The 1min calendar holds the
sessions found in the minute files; a stock-session without bars is NaN (suspended).  The days must
be sessions of the daily calendar.  Memory: dense (stocks with minutes x sessions x 241) arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .daily import DailyData, StockGrid, ts_code
from .derive import factor_panel
from .report import ImportReport
from .sources import LazyKeys, numeric, qlib_codes, read_table
from .units import TRADE_DESC, TRADE_SCALES, UnitVote
from .validate import check_bars, check_codes_dates, check_duplicates, flag_rows, off_calendar

FIELDS = ("open", "high", "low", "close", "volume", "amount")
#: Written per minute: the bars plus the day's ``factor`` (so ``$close / $factor`` works at 1min as at day).
OUT_FIELDS = (*FIELDS, "factor")
_SRC = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "vol", "amount": "amount"}


def _slot(minutes: np.ndarray) -> np.ndarray:
    """Minutes after midnight of a bar's end -> 0 (09:30 auction), 1..240 (standard bars), -1 otherwise."""
    am = (minutes >= 9 * 60 + 31) & (minutes <= 11 * 60 + 30)
    pm = (minutes >= 13 * 60 + 1) & (minutes <= 15 * 60)
    return np.select([minutes == 9 * 60 + 30, am, pm], [0, minutes - (9 * 60 + 30), minutes - (13 * 60) + 120], -1)


@dataclass
class MinuteBars:
    """Dense bars: ``data[f]`` is (stocks, sessions, 240); ``sessions`` are daily-calendar indices."""

    stocks: list[str]
    sessions: np.ndarray
    first: np.ndarray      # per stock: first/last session rank with any bar
    last: np.ndarray
    data: dict[str, np.ndarray]


def _read_one(path: Path, grid: StockGrid, units: str, report: ImportReport, daily_units: str = "fixture"
              ) -> pd.DataFrame:
    """One minute file -> rows (j, t, slot, fields in shares/CNY) after its checks."""
    name = path.name
    df = read_table(path, ("ts_code", "trade_time", "open", "high", "low", "close", "vol"), ("amount",), report)
    rows = df["_row"].to_numpy()
    codes = qlib_codes(df["ts_code"])
    tm = pd.to_datetime(df["trade_time"].astype("string"), errors="coerce", format="ISO8601")
    day = tm.dt.normalize().to_numpy(dtype="datetime64[ns]")
    check_codes_dates(report, name, codes, day, df["ts_code"], df["trade_time"], rows, "trade_time")
    numeric(df, ["open", "high", "low", "close", "vol", "amount"], name, report)
    minutes = (tm.dt.hour * 60 + tm.dt.minute).to_numpy(dtype=float, na_value=np.nan)
    if (minutes == 13 * 60).any() and not (minutes == 15 * 60).any():
        minutes = minutes + 1
        report.units[f"{name} labels"] = "bar start times (shifted +1 minute to end labels)"
    slot = _slot(np.nan_to_num(minutes, nan=-1).astype(int))

    def keys(i: int) -> str:
        return f"{df['ts_code'].iloc[i]} {df['trade_time'].iloc[i]}"

    flag_rows(report, "error", "minute_time", name, (slot < 0) & ~np.isnat(day), lambda i: f"bar time "
              f"{df['trade_time'].iloc[i]} is not a session minute (09:30 auction, 09:31..11:30, 13:01..15:00)",
              rows, keys, "trade_time")
    j = pd.Index(grid.stocks).get_indexer(pd.Index(codes, dtype=object))
    unknown = sorted(set(codes[(j < 0) & ~pd.isna(codes)]))
    if unknown:
        report.warn("unknown_code", name, f"{len(unknown)} stocks have minute bars but no daily rows; skipped",
                    key=unknown[0], count=len(unknown))
    t = off_calendar(report, name, day, grid.days, rows, keys)
    outside = ~np.isnat(day) & ((day < grid.days[0].to_datetime64()) | (day > grid.days[-1].to_datetime64()))
    flag_rows(report, "error", "calendar", name, outside, lambda i: f"{pd.Timestamp(day[i]).date()} is outside the "
              f"daily calendar {grid.days[0].date()}..{grid.days[-1].date()}", rows, keys, "trade_time")
    good = (j >= 0) & (t >= 0) & (slot >= 0)
    check_duplicates(report, name, np.where(good, (j * len(grid.days) + t) * 241 + slot, -1), rows, keys)
    check_bars(report, name, df, rows, keys)
    vote = UnitVote(name)
    if "amount" in df:
        vote.update(rows, df["amount"].to_numpy(float), df["vol"].to_numpy(float), df["low"].to_numpy(float),
                    df["high"].to_numpy(float), LazyKeys(keys))
    if units != "auto" or vote.n["fixture"] + vote.n["tushare"]:
        chosen = vote.decide(units, report)
    else:                                   # nothing to detect from: the daily file's units (detected or given)
        chosen = daily_units
        report.units[name] = f"{TRADE_DESC[chosen]} (as the daily file: no amount/vol to detect from)"
    report.raise_if_failed()
    vm, am = TRADE_SCALES[chosen]
    out = pd.DataFrame({"j": j, "t": t, "slot": slot})
    for f, src in _SRC.items():
        x = df[src].to_numpy(float) if src in df else np.full(len(df), np.nan)
        out[f] = x * (vm if f == "volume" else am if f == "amount" else 1.0)
    return out[good]


def load_minutes(paths: list[Path], daily: DailyData, units: str, report: ImportReport) -> MinuteBars | None:
    """Read, check, merge the auction bar, adjust; compare each stock-session with its daily bar (warning)."""
    if not paths:
        return None
    grid, daily_raw = daily.grid, daily.raw
    rows = pd.concat([_read_one(p, grid, units, report, daily.units) for p in paths], ignore_index=True)
    if rows.empty:
        return None
    cross = rows["j"].to_numpy() * len(grid.days) + rows["t"].to_numpy()
    dup = pd.Series(cross * 241 + rows["slot"].to_numpy()).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        report.error("duplicate", "minute files", "the same stock-minute appears in two minute files",
                     key=f"{ts_code(grid.stocks[rows['j'].iloc[i]])} {grid.days[rows['t'].iloc[i]]:%Y%m%d}",
                     count=int(dup.sum()))
        report.raise_if_failed()
    sj, js = np.unique(rows["j"].to_numpy(), return_inverse=True)
    sessions, ts = np.unique(rows["t"].to_numpy(), return_inverse=True)
    n_s, n_t = len(sj), len(sessions)
    dense = {f: np.full((n_s, n_t, 241), np.nan) for f in FIELDS}
    for f in FIELDS:
        dense[f][js, ts, rows["slot"].to_numpy()] = rows[f].to_numpy()
    a = {f: dense[f][:, :, 0] for f in FIELDS}
    b = {f: dense[f][:, :, 1:] for f in FIELDS}
    has_auction = np.isfinite(a["close"])
    b["open"][:, :, 0] = np.where(has_auction, a["open"], b["open"][:, :, 0])
    b["high"][:, :, 0] = np.fmax(a["high"], b["high"][:, :, 0])
    b["low"][:, :, 0] = np.fmin(a["low"], b["low"][:, :, 0])
    b["close"][:, :, 0] = np.where(np.isfinite(b["close"][:, :, 0]), b["close"][:, :, 0], a["close"])
    for f in ("volume", "amount"):
        both = np.isfinite(a[f]) | np.isfinite(b[f][:, :, 0])
        b[f][:, :, 0] = np.where(both, np.nansum([a[f], b[f][:, :, 0]], axis=0), np.nan)
    report.stats["minute: auction bars merged into 09:31"] = int(has_auction.sum())
    _compare_daily(b, grid, sj, sessions, daily_raw, report)
    fac = factor_panel(daily, sj)[sessions].T[:, :, None]          # only the stocks that have minutes
    for f in ("open", "high", "low", "close"):
        b[f] = (b[f] * fac).astype(np.float32)
    b["volume"] = (b["volume"] / fac).astype(np.float32)
    b["amount"] = b["amount"].astype(np.float32)
    b["factor"] = np.where(np.isfinite(b["close"]), fac, np.nan).astype(np.float32)   # Qlib's 1min data carries it
    present = np.isfinite(b["close"]).any(axis=2)
    first, last = present.argmax(axis=1), n_t - 1 - present[:, ::-1].argmax(axis=1)
    report.stats["minute bars"] = f"{len(rows)} rows, {n_s} stocks, {n_t} sessions"
    return MinuteBars([grid.stocks[j] for j in sj], sessions, first, last, b)


def _compare_daily(b: dict[str, np.ndarray], grid: StockGrid, sj: np.ndarray, sessions: np.ndarray,
                   daily_raw: dict[str, np.ndarray], report: ImportReport) -> None:
    """Aggregated minute bars vs the raw daily bar (open, high, low, close, volume): warning on mismatch."""
    has = np.isfinite(b["close"]).any(axis=2)
    idx_first = np.isfinite(b["open"]).argmax(axis=2)
    idx_last = b["close"].shape[2] - 1 - np.isfinite(b["close"])[:, :, ::-1].argmax(axis=2)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # sessions without bars
        agg = {"open": np.take_along_axis(b["open"], idx_first[..., None], 2)[..., 0],
               "close": np.take_along_axis(b["close"], idx_last[..., None], 2)[..., 0],
               "high": np.nanmax(b["high"], axis=2), "low": np.nanmin(b["low"], axis=2),
               "vol": np.nansum(b["volume"], axis=2)}
        for k, x in agg.items():
            d = daily_raw[k][sessions[None, :], sj[:, None]].astype(np.float64)
            bad = has & np.isfinite(d) & (np.abs(x - d) > 1e-6 * np.abs(d) + (0.5 if k == "vol" else 5e-4))
            s, t = np.nonzero(bad)
            if s.size:
                report.warn("minute_vs_daily", "minute files", f"aggregated minute {k} {x[s[0], t[0]]:.6g} != daily "
                            f"{k} {d[s[0], t[0]]:.6g}", key=f"{ts_code(grid.stocks[sj[s[0]]])} "
                            f"{grid.days[sessions[t[0]]]:%Y%m%d}", field=k, count=s.size)
