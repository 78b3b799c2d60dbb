"""Read and check every source file into the panels the writers need (nothing is written here)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np
import pandas as pd

from .daily import DailyData, load_daily, load_keyed, ts_code
from .derive import float_cap, shares_panels, traded_mask
from .indexes import (
    float_cap_weights,
    load_index_daily,
    load_members,
    load_weights,
    market_of,
    mask_spans,
    member_mask,
    snapshot_panel,
    snapshot_weights,
)
from .industry import load_industry
from .report import ImportReport, ImportValidationError
from .sources import csv_encoding
from .units import SHARE_SCALES, detect_share_scale
from .validate import check_factor_steps

APPROXIMATED = "approximated: float-cap weights of members"


@dataclass
class Inputs:
    """Everything read from the source, on the daily grid."""

    daily: DailyData
    shares: dict[str, np.ndarray]
    extra: dict[str, np.ndarray] = dc_field(default_factory=dict)       # industry, w_<market>
    industries: dict[str, dict] = dc_field(default_factory=dict)
    index_bars: dict[str, tuple[int, dict[str, np.ndarray]]] = dc_field(default_factory=dict)
    member_spans: dict[str, pd.DataFrame] = dc_field(default_factory=dict)
    weight_notes: dict[str, str] = dc_field(default_factory=dict)
    minute_files: list[Path] = dc_field(default_factory=list)
    units: str = "auto"                                                 # as asked (minute files detect their own)
    has_shares: bool = True                                             # a shares file was given


def _adj_factor(files: dict, d: DailyData, report: ImportReport) -> None:
    name = files["daily"][0].name
    if "adj_factor" not in d.raw and "adj_factor" in files:
        panels, _ = load_keyed(files["adj_factor"][0], d.grid, report, ("adj_factor",))
        d.raw["adj_factor"] = panels["adj_factor"]
        name = files["adj_factor"][0].name
    if "adj_factor" not in d.raw:
        report.warn("no_adj_factor", files["daily"][0].name, "no adj_factor column or file: prices are not "
                    "adjusted (factor = 1)")
        return
    f = d.raw["adj_factor"]
    _per_stock_coverage(report, name, d, f, "no_adj_factor", "adj_factor", "their factor is 1 (prices not adjusted)")
    t, j = np.nonzero(f <= 0)
    if t.size:
        report.error("positive_factor", name, f"adj_factor {f[t[0], j[0]]:.6g} is not positive",
                     key=d.grid.key(t[0], j[0]), field="adj_factor", count=t.size)
    report.raise_if_failed()
    check_factor_steps(report, name, f, d.raw["open"], d.raw["close"], traded_mask(d),
                       d.raw.get("pre_close"), d.grid.days, [ts_code(s) for s in d.grid.stocks],
                       accept_jumps=bool(report.options.get("accept_factor_jumps")))
    report.raise_if_failed()


def _per_stock_coverage(report: ImportReport, name: str, d: DailyData, panel: np.ndarray, check: str, field: str,
                        consequence: str) -> None:
    """A warning (an error under ``strict``) counting the stocks with daily rows but no row in ``name``."""
    has_daily = d.has_row.any(axis=0)
    none = has_daily & ~np.isfinite(panel).any(axis=0)
    n = int(none.sum())
    report.stats[f"{name}: stocks without a row"] = n
    if n:
        codes = [ts_code(s) for s in np.asarray(d.grid.stocks)[none]]
        report.warn(check, name, f"{n} of {int(has_daily.sum())} stocks with daily rows have no {field} row: "
                    f"{consequence}", key=codes[0], field=field, count=n, examples=codes[1:6])


def _shares(path: Path, d: DailyData, units: str, report: ImportReport) -> dict[str, np.ndarray]:
    name = path.name
    panels, unknown = load_keyed(path, d.grid, report, (), ("float_share", "total_share"))
    if not panels:
        report.error("missing_column", name, "needs float_share and/or total_share", field="float_share")
    report.raise_if_failed()
    if unknown:
        codes = sorted(ts_code(c) for c in map(str, unknown))
        report.warn("unknown_code", name, f"{len(codes)} codes have no rows in the daily file; "
                    "their share rows are ignored", key=codes[0], count=len(codes), examples=codes[1:6])
        report.stats[f"{name}: codes without daily rows (ignored)"] = len(codes)
    ref = panels.get("float_share", panels.get("total_share"))
    _per_stock_coverage(report, name, d, ref, "no_shares", "float_share" if "float_share" in panels else "total_share",
                        "their turnover, mcap and float-cap weights are NaN")
    if units == "auto":
        scale = detect_share_scale(ref, d.raw["close"])
        how = "detected from the median float market cap"
    else:
        scale = 1.0 if units == "fixture" else 1e8 if path.name.lower().startswith("bak_basic") else 1e4
        how = "given"
    report.units[name] = f"share counts in {SHARE_SCALES[scale]} ({how})"
    for k, p in panels.items():
        t, j = np.nonzero(p <= 0)
        if t.size:
            report.error("positive_shares", name, f"{k} {p[t[0], j[0]]:.6g} is not positive", key=d.grid.key(t[0], j[0]),
                         field=k, count=t.size)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # stocks without any row
            ratio = np.nanmax(p, axis=0) / np.nanmin(p, axis=0)
        mixed = np.flatnonzero(ratio > 1e3)
        if mixed.size:
            report.error("mixed_units", name, f"{k} of {ts_code(d.grid.stocks[mixed[0]])} spans a factor of "
                         f"{ratio[mixed[0]]:.3g} (shares mixed with 10^4/10^8-share units?)", field=k, count=mixed.size)
        panels[k] = p * np.float32(scale)
    report.raise_if_failed()
    return panels


def _st(path: Path, d: DailyData, report: ImportReport) -> None:
    """ST flags: an ``is_st`` column (1/0), or else every (code, date) row of the file is an ST day."""
    panels, _ = load_keyed(path, d.grid, report, (), ("is_st",), presence=True)
    flag = panels.get("is_st", panels["_present"])
    on = np.where(np.isnan(flag), 0.0, flag)
    if "is_st" in d.raw:
        on = np.maximum(on, np.nan_to_num(d.raw["is_st"]))
    d.raw["is_st"] = on.astype(np.float32)


def _extend_listing(members: pd.DataFrame, d: DailyData, report: ImportReport) -> None:
    """A stock that is an index member before its first row was listed and suspended: start its listing there."""
    g = d.grid
    a = g.days.searchsorted(members["_in"].to_numpy(), "left")
    b = g.days.searchsorted(members["_out"].to_numpy(), "right")
    j = pd.Index(g.stocks).get_indexer(members["_code"])
    ok = (j >= 0) & (a < b)
    start = pd.Series(a[ok]).groupby(j[ok]).min()
    earlier = start[start.to_numpy() < g.first[start.index]]
    if len(earlier):
        g.first[earlier.index] = earlier.to_numpy()
        g.__dict__.pop("listed", None)                   # recompute the cached listing mask
        report.stats["stocks whose listing starts at an index membership before their first row (suspended)"] = [
            ts_code(g.stocks[k]) for k in earlier.index]


def _benchmarks(files: dict, inp: Inputs, members: pd.DataFrame | None, report: ImportReport) -> None:
    g = inp.daily.grid
    weights = load_weights(files["index_weight"][0], g, report) if "index_weight" in files else None
    codes = sorted(set(members["_index"].dropna() if members is not None else [])
                   | set(weights["_index"].dropna() if weights is not None else []))
    fcap = None
    for code in codes:
        market = market_of(code)
        snaps = weights[weights["_index"] == code] if weights is not None else None
        panel = snapshot_panel(snaps, g) if snaps is not None and len(snaps) else None
        if members is not None and (members["_index"] == code).any():
            member = member_mask(members[members["_index"] == code], g)
        else:
            member = np.nan_to_num(panel) > 0
        if panel is not None:
            w, filled = snapshot_weights(panel, member, g)
            inp.weight_notes[market] = (f"{files['index_weight'][0].name}: {snaps['_t'].nunique()} snapshots carried "
                                        f"forward, renormalised over the day's members")
            if filled:
                report.warn("weight_missing", files["index_weight"][0].name, f"{filled} member-days of {code} have no "
                            "weight in the latest snapshot; given the day's median member weight", count=filled)
        else:
            if fcap is None:
                fcap = float_cap(inp.daily, inp.shares["float_shares"])
            w, filled = float_cap_weights(fcap, member, g)
            inp.weight_notes[market] = APPROXIMATED
            report.stats[f"w_{market}: member-days without a float cap (median weight)"] = filled
        inp.extra[f"w_{market}"] = w
        inp.member_spans[market] = mask_spans(member, g)


def _has_rows(path: Path, report: ImportReport) -> bool:
    """Whether a CSV/Parquet source file holds at least one data row (a header alone is empty)."""
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows > 0
        return len(pd.read_csv(path, nrows=1, encoding=csv_encoding(path, report))) > 0
    except pd.errors.EmptyDataError:
        return False
    except ImportValidationError:                     # an encoding that is named with its fix
        raise
    except Exception:  # noqa: BLE001 - unreadable files are reported, with the reader's error, when read
        return True


def check_not_empty(files: dict[str, list[Path]], report: ImportReport) -> None:
    """A source file that is present but has no data rows is an error (it would silently mean factor = 1,
    NaN shares, no industry or no benchmark weights)."""
    for role, paths in files.items():
        for path in paths:
            if not _has_rows(path, report):
                report.error("empty", path.name, f"the file has no data rows (only a header?) for {role!r}: "
                             "give its rows or remove the file")
    report.raise_if_failed()


def load_inputs(files: dict[str, list[Path]], report: ImportReport, units: str = "auto", start=None, end=None,
                calendar: pd.DatetimeIndex | None = None) -> Inputs:
    """All source files -> :class:`Inputs`; raises :class:`ImportValidationError` on the first file with errors."""
    check_not_empty(files, report)
    d = load_daily(files["daily"][0], report, units, start, end, calendar)
    members = load_members(files["index_member"][0], d.grid, report) if "index_member" in files else None
    if members is not None:
        _extend_listing(members, d, report)
    report.lap("daily")
    _adj_factor(files, d, report)
    report.lap("adj_factor")
    shares = _shares(files["shares"][0], d, units, report) if "shares" in files else None
    if shares is None:
        report.warn("no_shares", files["daily"][0].name, "no shares file: turnover, mcap and float-cap weights are NaN")
    inp = Inputs(d, shares_panels(d, shares, report.stats), has_shares=shares is not None)
    del shares                                           # the raw share rows; the filled panels are kept
    report.lap("shares")
    if "st" in files:
        _st(files["st"][0], d, report)
    if "industry" in files:
        inp.extra["industry"], inp.industries = load_industry(files["industry"][0], d.grid, report)
    if "index_daily" in files:
        inp.index_bars = load_index_daily(files["index_daily"][0], d.grid.days, report, d.units)
    report.lap("industry, st, index bars")
    _benchmarks(files, inp, members, report)
    report.lap("index members, weights")
    inp.minute_files, inp.units = files.get("minute", []), units
    return inp
