"""``import_dataset``: tushare-like files -> a new Qlib dataset (atomic) or new fields in an existing one.

A new dataset is built in a temp dir by :class:`~qlib_ext.data.bin_io.DatasetWriter` and renamed into
place only when complete, so any failure (a check, a corrupt minute file, a crash) leaves a previous
dataset at ``out`` untouched.  Stock fields are computed for blocks of stock columns at a time.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..bin_io import DatasetWriter
from ..calendar import MINUTES_PER_DAY, minute_calendar
from ..panel import read_calendar
from .daily import ts_code
from .derive import stock_fields
from .indexes import INDEX_FIELDS, MARKETS
from .inputs import Inputs, load_inputs
from .minute import OUT_FIELDS as MINUTE_FIELDS
from .minute import load_minutes
from .report import ImportReport
from .sources import discover

UNITS = ("auto", "fixture", "tushare")
#: Derived fields the read-back check counts, and the source files they come from.
READBACK_FIELDS = {"turnover": "shares", "mcap": "shares, daily", "float_mcap": "shares, daily",
                   "vwap": "daily", "factor": "adj_factor"}
#: Least share of listed stock-days on which a claimed derived field must be finite.
MIN_DERIVED_COVERAGE = 0.5
#: Size fields that need a shares file (not written nor claimed without one).
SIZE_FIELDS = ("turnover", "total_shares", "float_shares", "mcap", "float_mcap")
#: Stock columns per block when deriving fields (memory ~ 40 arrays x days x block x 8 bytes).
BLOCK = 128
CONVENTIONS = {
    "factor": "adj_factor / adj_factor on the stock's first row in the window; adjusted price = raw x factor, "
              "volume = raw shares / factor, amount raw CNY",
    "vwap": "amount / raw volume x factor; (open+high+low+close)/4 x factor where amount is missing or off the bar",
    "change": "adjusted close / previous traded adjusted close - 1 (pre_close on a stock's first row when given)",
    "limits": "board rule on the previous close (main 10%, ChiNext 20% from 2020-08-24, STAR 20%, BSE 30%, ST 5% "
              "where flagged), rounded half-up to the cent, x factor; NaN where the day's range exceeds them",
    "amount": "raw CNY; NaN where the source has none",
    "listing": "a stock's first to last daily row, started earlier where an index membership says it was listed",
    "paused": "1 on listed days without a traded row: prices NaN, volume/amount/turnover 0",
    "shares": "latest row on or before the day, else the first after it (look-ahead); total falls back to float",
    "turnover": "raw volume / float shares",
    "industry": "Shenwan L1 as one SW2021 scheme (shared SW2014 codes kept, others take the next SW2021 code)",
    "minute": "240 bars a session; the 09:30 auction bar merged into 09:31; prices x the day's factor",
    "suspended_days": "price fields NaN, volume 0, paused 1 (Qlib's convention)",
}


def import_dataset(source: str | Path, out: str | Path | None = None, *, augment: str | Path | None = None,
                   strict: bool = False, units: str = "auto", start=None, end=None, progress: bool = True,
                   encoding: str | None = None, accept_factor_jumps: bool = False) -> ImportReport:
    """Import tushare-like CSV/Parquet files from ``source`` into a Qlib dataset at ``out``.

    ``augment=QLIB_DIR`` instead adds only the fields that an existing dataset lacks (its existing
    files stay byte-identical).  ``units`` is ``auto`` (detected per file and reported), ``fixture``
    (shares, CNY) or ``tushare`` (lots, kCNY, 10^4 shares).  ``start``/``end`` clip the rows.
    Raises :class:`ImportValidationError` (with ``.report``) when a check fails; warnings are saved in
    ``meta/import_report.json`` and become errors with ``strict=True``.  ``encoding`` names the text
    encoding of CSV files (default: detected from a BOM, else UTF-8; e.g. ``gbk``).  An ``adj_factor`` jump
    that prices do not explain (:data:`~.validate.FACTOR_JUMP_TOL`) is an error unless
    ``accept_factor_jumps`` (then a warning, listed in ``meta/dataset.json``).
    """
    t0 = time.time()
    if units not in UNITS:
        raise ValueError(f"units={units!r}: expected one of {UNITS}")
    if (out is None) == (augment is None):
        raise ValueError("give exactly one of out= (a new dataset) or augment= (an existing Qlib directory)")
    target = Path(augment or out).expanduser().resolve()
    report = ImportReport(str(Path(source).expanduser()), str(target), "augment" if augment else "new")
    report.options.update(units=units, encoding=encoding, accept_factor_jumps=accept_factor_jumps, strict=strict)
    files = discover(source, report)
    calendar = read_calendar(target) if augment else None
    inp = load_inputs(files, report, units, start, end, calendar)
    report.raise_if_failed(strict)
    if augment:
        from .augment import augment_dataset

        augment_dataset(target, inp, report, strict, progress)
    else:
        write_dataset(target, inp, report, strict, progress, t0)
    report.seconds = round(time.time() - t0, 2)
    return report


def write_dataset(out: Path, inp: Inputs, report: ImportReport, strict: bool, progress: bool, t0: float) -> Path:
    """Write every field, instrument file, minute bar and side file; commit only when all succeeded."""
    d, g = inp.daily, inp.daily.grid
    T, N = g.shape
    with DatasetWriter(out) as w:
        w.write_calendar(g.days, "day")
        spans = pd.DataFrame({"symbol": g.stocks, "start": g.days[g.first], "end": g.days[g.last]})
        w.write_instruments("all", spans)
        w.write_instruments("csiall", spans)
        for market, sp in inp.member_spans.items():
            if market != "csiall":
                w.write_instruments(market, sp)
        stats: dict = {}
        skip = set() if inp.has_shares else set(SIZE_FIELDS)        # not claimed: no shares file
        finite = dict.fromkeys(READBACK_FIELDS, 0)
        n_listed = 0
        bar = tqdm(total=N, desc="import stocks", unit="stock", disable=not progress)
        for c0 in range(0, N, BLOCK):
            cols = slice(c0, min(N, c0 + BLOCK))
            fields = stock_fields(d, cols, inp.shares, inp.extra, stats)
            listed = g.listed[:, cols]
            n_listed += int(listed.sum())
            for f in finite:
                if f in fields:
                    finite[f] += int((np.isfinite(fields[f]) & listed).sum())
            for jj, j in enumerate(range(cols.start, cols.stop)):
                a, b = int(g.first[j]), int(g.last[j])
                for f, arr in fields.items():
                    if f not in skip:
                        w.write_feature(g.stocks[j], f, a, arr[a:b + 1, jj])
            bar.update(cols.stop - c0)
        bar.close()
        report.stats.update(stats)
        _readback(report, finite, n_listed, skip)
        report.lap("write stocks")
        for code, (a, bars) in inp.index_bars.items():
            for f in INDEX_FIELDS:
                w.write_feature(code, f, a, bars[f])
        mb = load_minutes(inp.minute_files, d, inp.units, report)
        if mb is not None:
            w.write_calendar(minute_calendar(g.days[mb.sessions]), "1min")
            for i, sym in enumerate(mb.stocks):
                a, b = int(mb.first[i]), int(mb.last[i])
                for f in MINUTE_FIELDS:
                    w.write_feature(sym, f, a * MINUTES_PER_DAY, mb.data[f][i, a:b + 1].ravel(), "1min")
        report.lap("minutes, indexes")
        report.raise_if_failed(strict)
        _write_meta(w, inp, report, mb is not None, t0)
    report.lap("verify, commit")
    return out


def _readback(report: ImportReport, finite: dict[str, int], n_listed: int, skip: set[str]) -> None:
    """Error when a claimed derived field is NaN on more than ``1 - MIN_DERIVED_COVERAGE`` of listed stock-days."""
    for f, k in finite.items():
        share = k / n_listed if n_listed else 1.0
        report.stats[f"{f}: finite on listed stock-days"] = f"{share:.1%}"
        if f not in skip and share < MIN_DERIVED_COVERAGE:
            report.error("readback", "dataset", f"derived field {f} is NaN on {1 - share:.1%} of the {n_listed} listed "
                         f"stock-days (at most {1 - MIN_DERIVED_COVERAGE:.0%} allowed): check the source files it "
                         f"comes from ({READBACK_FIELDS[f]})", field=f, count=n_listed - k)


def _write_meta(w: DatasetWriter, inp: Inputs, report: ImportReport, minutes: bool, t0: float) -> None:
    g = inp.daily.grid
    w.write_json("meta/industries.json", inp.industries)
    w.write_json("meta/indexes.json", {m: c for c, m in MARKETS.items() if c in inp.index_bars})
    fields = ["open", "high", "low", "close", "vwap", "volume", "amount", "factor", "change", "turnover",
              "total_shares", "float_shares", "mcap", "float_mcap", *inp.extra, "up_limit", "down_limit", "paused"]
    if not inp.has_shares:
        fields = [f for f in fields if f not in SIZE_FIELDS]
    w.write_json("meta/dataset.json", {
        "kind": "imported", "importer": "qlib_ext.data.importers", "source": report.source,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "start": str(g.days[0].date()), "end": str(g.days[-1].date()), "n_instruments": len(g.stocks),
        "index_instruments": sorted(inp.index_bars), "minute_bars": minutes, "fields": fields,
        "units": report.units, "weights": inp.weight_notes, "conventions": CONVENTIONS,
        "accepted_factor_jumps": report.stats.get("adj_factor jumps (accepted)", []),
    })
    pd.DataFrame({"instrument": g.stocks, "ts_code": [ts_code(s) for s in g.stocks],
                  "first_date": g.days[g.first].strftime("%Y-%m-%d"), "last_date": g.days[g.last].strftime("%Y-%m-%d")}
                 ).to_csv(w.root / "meta" / "instruments.csv", index=False)
    report.seconds = round(time.time() - t0, 2)
    report.write(w.root / "meta" / "import_report.json")     # timings up to here; the returned report has all
