"""Benchmark indexes: their daily bars, point-in-time membership spans and daily constituent weights.

Weights (``w_<market>``, summing to 1 over the day's members):

* from ``index_weight`` snapshots: each day takes the latest snapshot on or before it (the first
  snapshot before that, a documented look-ahead), keeps the day's members (from ``index_member``
  when given, else the snapshot's names), gives members absent from the snapshot the median
  member weight (counted), and renormalises to 1;
* from membership only (no snapshots for that index): float-cap weights of the day's members,
  ``float_mcap / sum(float_mcap)``; members without a float cap get the day's median (counted).
  Flagged in ``meta/dataset.json`` as ``"approximated: float-cap weights of members"``.

Listed non-members get weight 0, unlisted days NaN.  Membership spans are inclusive, snapped to
sessions, clipped to the calendar and to each stock's listing span.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...schema import INDEX_FIELDS, INDEX_MARKETS  # noqa: F401  (INDEX_FIELDS: re-exported to build, augment)
from .daily import StockGrid
from .report import ImportReport
from .sources import numeric, parse_dates, qlib_codes, read_table
from .units import TRADE_SCALES
from .validate import (
    check_bars,
    check_codes_dates,
    check_duplicates,
    check_gaps,
    check_spans,
    check_unknown,
    check_weight_sums,
    flag_rows,
    off_calendar,
)

#: Qlib index symbol -> market name (instrument file and ``w_<market>`` field): :data:`qlib_ext.schema.INDEX_MARKETS`.
MARKETS = INDEX_MARKETS


def market_of(code: str) -> str:
    """Market name of an index symbol (unknown indexes use their lower-case symbol)."""
    return MARKETS.get(code, code.lower())


def load_index_daily(path: Path, days: pd.DatetimeIndex, report: ImportReport, units: str
                     ) -> dict[str, tuple[int, dict[str, np.ndarray]]]:
    """Index bars -> {symbol: (first calendar index, {field: values from there to its last row})}."""
    name = path.name
    df = read_table(path, ("ts_code", "trade_date", "open", "high", "low", "close"),
                    ("vol", "amount", "pre_close"), report)
    rows = df["_row"].to_numpy()
    codes, d = qlib_codes(df["ts_code"]), parse_dates(df["trade_date"])

    def keys(i: int) -> str:
        return f"{df['ts_code'].iloc[i]} {df['trade_date'].iloc[i]}"

    check_codes_dates(report, name, codes, d, df["ts_code"], df["trade_date"], rows)
    numeric(df, [c for c in ("open", "high", "low", "close", "vol", "amount", "pre_close") if c in df], name, report)
    t = off_calendar(report, name, d, days, rows, keys)
    check_bars(report, name, df, rows, keys)
    sym = pd.Categorical(codes)
    check_duplicates(report, name, np.where(t >= 0, sym.codes.astype(np.int64) * len(days) + t, -1), rows, keys)
    check_gaps(report, name, t, days, what="index")
    report.raise_if_failed()
    vm, am = TRADE_SCALES[units]
    report.units[name] = f"as the daily file: vol x{vm:g}, amount x{am:g}"
    out = {}
    for j, code in enumerate(sym.categories):
        m = (sym.codes == j) & (t >= 0)
        if not m.any():
            continue
        tt = t[m]
        a, b = int(tt.min()), int(tt.max())
        full = {k: np.full(b - a + 1, np.nan) for k in ("open", "high", "low", "close", "volume", "amount", "pre")}
        for k, src in (("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                       ("volume", "vol"), ("amount", "amount"), ("pre", "pre_close")):
            if src in df:
                full[k][tt - a] = df[src].to_numpy(float)[m] * (vm if k == "volume" else am if k == "amount" else 1)
        c = full["close"]
        prev = np.concatenate([[np.nan], pd.Series(c).ffill().to_numpy()[:-1]])
        full["change"] = np.where(np.isfinite(full["pre"]), c / full["pre"] - 1, c / prev - 1)
        full["factor"] = np.where(np.isfinite(c), 1.0, np.nan)
        del full["pre"]
        out[code] = (a, full)
    report.stats["index instruments"] = sorted(out)
    return out


def _spans_frame(df: pd.DataFrame, name: str, report: ImportReport, code_col: str) -> pd.DataFrame:
    """Parse in/out dates (out null = open-ended) and codes; flag bad ones."""
    df = df.copy()
    df["_in"] = pd.DatetimeIndex(parse_dates(df["in_date"]))
    # as text first: a nullable Int64/float column (20240329, <NA>) cannot be filled with a string
    out = df["out_date"].astype("string") if "out_date" in df else pd.Series([None] * len(df), dtype="string")
    df["_out"] = pd.DatetimeIndex(parse_dates(out.fillna("21001231")))
    bad = np.isnat(df["_in"].to_numpy()) | (np.isnat(df["_out"].to_numpy()) & out.notna().to_numpy())
    flag_rows(report, "error", "date_format", name, bad, lambda i: f"in_date/out_date {df['in_date'].iloc[i]!r}/"
              f"{out.iloc[i]!r} is not a date (YYYYMMDD)", df["_row"].to_numpy(), lambda i: str(df[code_col].iloc[i]))
    df["_code"] = qlib_codes(df[code_col])
    return df


def load_members(path: Path, grid: StockGrid, report: ImportReport) -> pd.DataFrame:
    """Membership spans -> frame (index, symbol, _in, _out) of known stocks; unknown codes are warned."""
    name = path.name
    df = read_table(path, ("index_code", "con_code", "in_date"), ("out_date",), report)
    df = _spans_frame(df, name, report, "con_code")
    df["_index"] = qlib_codes(df["index_code"])
    check_spans(report, name, df, ["index_code", "con_code"], "membership")
    report.raise_if_failed()
    check_unknown(report, name, df["_code"], set(grid.stocks), "index members")
    return df[df["_code"].isin(set(grid.stocks))].reset_index(drop=True)


def load_weights(path: Path, grid: StockGrid, report: ImportReport) -> pd.DataFrame:
    """Weight snapshots -> frame (index, symbol, calendar index t, weight as a fraction)."""
    name = path.name
    df = read_table(path, ("index_code", "con_code", "trade_date", "weight"), (), report)
    numeric(df, ["weight"], name, report)
    rows = df["_row"].to_numpy()
    d = parse_dates(df["trade_date"])
    df["_index"], df["_code"] = qlib_codes(df["index_code"]), qlib_codes(df["con_code"])

    def keys(i: int) -> str:
        return f"{df['index_code'].iloc[i]} {df['trade_date'].iloc[i]} {df['con_code'].iloc[i]}"

    df["_t"] = t = off_calendar(report, name, d, grid.days, rows, keys)
    cell = pd.factorize(df["_index"].astype(str) + " " + df["_code"].astype(str))[0]
    check_duplicates(report, name, np.where(t >= 0, cell.astype(np.int64) * len(grid.days) + t, -1), rows, keys)
    scale = check_weight_sums(report, name, df)
    report.raise_if_failed()
    check_unknown(report, name, df["_code"], set(grid.stocks), "weighted constituents")
    df["weight"] = df["weight"] / scale
    return df[(df["_t"] >= 0)].reset_index(drop=True)


def member_mask(spans: pd.DataFrame, grid: StockGrid) -> np.ndarray:
    """(T, N) bool: in force (inclusive spans snapped to sessions), listed, inside the calendar."""
    T, N = grid.shape
    diff = np.zeros((T + 1, N), dtype=np.int32)
    j = pd.Index(grid.stocks).get_indexer(spans["_code"])
    a = grid.days.searchsorted(spans["_in"].to_numpy(), "left")
    b = grid.days.searchsorted(spans["_out"].to_numpy(), "right")
    ok = (j >= 0) & (a < b)
    np.add.at(diff, (a[ok], j[ok]), 1)
    np.add.at(diff, (b[ok], j[ok]), -1)
    return (np.cumsum(diff, axis=0, dtype=np.int32)[:-1] > 0) & grid.listed


def mask_spans(mask: np.ndarray, grid: StockGrid) -> pd.DataFrame:
    """Contiguous runs of True per stock -> instrument-file rows (symbol, start, end)."""
    pad = np.vstack([np.zeros((1, mask.shape[1]), bool), mask, np.zeros((1, mask.shape[1]), bool)]).astype(np.int8)
    step = np.diff(pad, axis=0)
    ts, js = np.nonzero(step.T == 1)
    te, je = np.nonzero(step.T == -1)
    return pd.DataFrame({"symbol": np.asarray(grid.stocks, dtype=object)[ts], "start": grid.days[js],
                         "end": grid.days[je - 1]})


def _normalise(w: np.ndarray, member: np.ndarray, listed: np.ndarray) -> tuple[np.ndarray, int]:
    """Members without a weight get the day's median member weight; rows renormalised; 0 for non-members."""
    w = np.where(member, w, np.nan).astype(np.float32)
    w[w <= 0] = np.nan
    with warnings.catch_warnings():             # days without members: all-NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(w, axis=1, keepdims=True)
    missing = member & np.isnan(w)
    w = np.where(missing, np.where(np.isfinite(med), med, 1.0), np.nan_to_num(w, nan=0.0))
    tot = w.sum(axis=1, keepdims=True, dtype=np.float64)
    w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
    w[~listed] = np.nan
    return w, int(missing.sum())


def snapshot_panel(snaps: pd.DataFrame, grid: StockGrid) -> np.ndarray:
    """(T, N) weights of the latest snapshot on or before each day (the first snapshot before it); NaN = absent."""
    T, N = grid.shape
    dates = np.sort(snaps["_t"].unique())
    S = np.full((len(dates), N), np.nan, dtype=np.float32)
    j = pd.Index(grid.stocks).get_indexer(snaps["_code"])
    k = np.searchsorted(dates, snaps["_t"].to_numpy())
    ok = j >= 0
    S[k[ok], j[ok]] = snaps["weight"].to_numpy()[ok]
    return S[np.clip(np.searchsorted(dates, np.arange(T), side="right") - 1, 0, len(dates) - 1)]


def snapshot_weights(panel: np.ndarray, member: np.ndarray, grid: StockGrid) -> tuple[np.ndarray, int]:
    """Daily weights from a :func:`snapshot_panel`, restricted to ``member`` and renormalised."""
    return _normalise(panel, member, grid.listed)


def float_cap_weights(float_mcap: np.ndarray, member: np.ndarray, grid: StockGrid) -> tuple[np.ndarray, int]:
    """Approximate weights: members' float market caps, normalised per day."""
    return _normalise(float_mcap, member, grid.listed)
