"""Export a Qlib dataset (e.g. the synthetic market) as tushare-like files: the importer's round trip.

Why: a known dataset written in tushare's shapes and units is the sharpest test of the importer (the
import must give the dataset back) and the benchmark's full-scale input.  Files: ``daily`` (traded
rows only, as tushare: ts_code, trade_date, open, high, low, close, pre_close, vol, amount),
``adj_factor`` (every listed day), ``daily_basic`` (total_share, float_share), ``industry`` (spans),
``index_daily``, ``index_member`` (spans, out_date null when open), ``index_weight`` (snapshots of
``w_<index>`` every ``weight_every`` sessions, percent) and ``minute_<code>`` files.  ``units``:
``tushare`` (lots, kCNY, 10^4 shares) or ``fixture`` (shares, CNY).  Streams blocks of stocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..panel import read_calendar, read_instruments, read_panel
from .daily import ts_code
from .derive import ffill
from .indexes import MARKETS

DAILY = ("open", "high", "low", "close", "volume", "amount", "factor", "paused", "float_shares", "total_shares",
         "industry")


class _Sink:
    """Appends frames to one Parquet (row groups) or CSV file."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self.writer, self.rows = path.with_suffix(f".{fmt}"), fmt, None, 0

    def add(self, df: pd.DataFrame) -> None:
        if df.empty:
            return
        if self.fmt == "csv":
            df.to_csv(self.path, mode="a", header=self.rows == 0, index=False)
        else:
            table = pa.Table.from_pandas(df, preserve_index=False)
            table = table.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_string(f.type) or
                                                   pa.types.is_large_string(f.type) else f.type) for f in table.schema]))
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self.writer.write_table(table)
        self.rows += len(df)

    def close(self) -> int:
        if self.writer is not None:
            self.writer.close()
        return self.rows


def _long(mask: np.ndarray, codes: np.ndarray, dates: np.ndarray, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """(T, n) panels -> rows where ``mask``, sorted by code then date."""
    j, t = np.nonzero(mask.T)
    return pd.DataFrame({"ts_code": codes[j], "trade_date": dates[t], **{k: v.T[j, t] for k, v in cols.items()}})


def _runs(values: np.ndarray, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of a constant finite value down axis 0 per column: (column, first t, last t)."""
    v = np.where(listed & np.isfinite(values), values, np.nan)
    pad = np.vstack([np.full((1, v.shape[1]), np.nan), v, np.full((1, v.shape[1]), np.nan)])
    change = ~((pad[1:] == pad[:-1]) | (np.isnan(pad[1:]) & np.isnan(pad[:-1])))
    jb, tb = np.nonzero(change[:-1].T & np.isfinite(v.T))
    je, te = np.nonzero(change[1:].T & np.isfinite(v.T))
    return jb, tb, te


def export_tushare(qlib_dir: str | Path, out: str | Path, *, units: str = "tushare", fmt: str = "parquet",
                   weight_every: int = 21, weight_indexes: Sequence[str] = ("csi300",), minute_stocks: int = 3,
                   block: int = 500) -> dict[str, int]:
    """Write the tushare-like files of ``qlib_dir`` into ``out``; returns rows written per file."""
    root, out = Path(qlib_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vm, am, sm = (100.0, 1000.0, 1e4) if units == "tushare" else (1.0, 1.0, 1.0)
    cal = read_calendar(root)
    dates = np.asarray(cal.strftime("%Y%m%d"), dtype=object)
    spans = read_instruments(root, "all")
    stocks = sorted(spans["instrument"].unique())
    names = json.loads((root / "meta" / "industries.json").read_text()) if (root / "meta" / "industries.json").exists() else {}
    sinks = {k: _Sink(out / k, fmt) for k in ("daily", "adj_factor", "daily_basic", "industry")}
    for b0 in range(0, len(stocks), block):
        syms = stocks[b0:b0 + block]
        codes = np.array([ts_code(s) for s in syms], dtype=object)
        p = {f: read_panel(root, f, syms).to_numpy(np.float64) for f in DAILY}
        listed = np.isfinite(p["paused"])
        traded = listed & (p["paused"] == 0) & np.isfinite(p["close"])
        raw = {k: p[k] / p["factor"] for k in ("open", "high", "low", "close")}
        prev = np.vstack([np.full((1, len(syms)), np.nan), ffill(np.where(traded, p["close"], np.nan))[:-1]])
        sinks["daily"].add(_long(traded, codes, dates, {
            **{k: np.round(v, 2) for k, v in raw.items()}, "pre_close": np.round(prev / p["factor"], 2),
            "vol": p["volume"] * p["factor"] / vm, "amount": p["amount"] / am}))
        sinks["adj_factor"].add(_long(listed, codes, dates, {"adj_factor": p["factor"]}))
        sinks["daily_basic"].add(_long(traded, codes, dates, {"total_share": p["total_shares"] / sm,
                                                              "float_share": p["float_shares"] / sm}))
        j, ta, tb = _runs(p["industry"], listed)
        code = p["industry"][ta, j].astype(int).astype(str)
        sinks["industry"].add(pd.DataFrame({"ts_code": codes[j], "in_date": dates[ta],
                                            "out_date": np.where(tb == len(cal) - 1, None, dates[tb]),
                                            "l1_code": code, "l1_name": [names.get(c, {}).get("name", "") for c in code]}))
    rows = {k: s.close() for k, s in sinks.items()}
    rows.update(_export_indexes(root, out, fmt, cal, dates, stocks, vm, am, weight_every, weight_indexes))
    with_minutes = [s for s in stocks if (root / "features" / s.lower() / "close.1min.bin").exists()]
    rows.update(_export_minutes(root, out, fmt, with_minutes[:minute_stocks]))
    return rows


def _export_indexes(root: Path, out: Path, fmt: str, cal: pd.DatetimeIndex, dates: np.ndarray, stocks: list[str],
                    vm: float, am: float, weight_every: int, weight_indexes: Sequence[str]) -> dict[str, int]:
    rows: dict[str, int] = {}
    bars, members, weights = _Sink(out / "index_daily", fmt), _Sink(out / "index_member", fmt), _Sink(out / "index_weight", fmt)
    for code, market in MARKETS.items():
        if not (root / "features" / code.lower()).is_dir():
            continue
        p = {f: read_panel(root, f, [code]).to_numpy(np.float64)[:, 0] for f in ("open", "high", "low", "close",
                                                                                 "volume", "amount")}
        ok = np.isfinite(p["close"])
        pre = np.concatenate([[np.nan], p["close"][:-1]])
        px = {k: np.round(p[k][ok], 3) for k in ("open", "high", "low", "close")}
        bars.add(pd.DataFrame({"ts_code": ts_code(code), "trade_date": dates[ok], **px,
                               "pre_close": np.round(pre[ok], 3), "vol": p["volume"][ok] / vm, "amount": p["amount"][ok] / am}))
        if market == "csiall" or not (root / "instruments" / f"{market}.txt").exists():
            continue
        sp = read_instruments(root, market)
        members.add(pd.DataFrame({"index_code": ts_code(code), "con_code": [ts_code(s) for s in sp["instrument"]],
                                  "in_date": sp["start"].dt.strftime("%Y%m%d"),
                                  "out_date": np.where(sp["end"] == cal[-1], None, sp["end"].dt.strftime("%Y%m%d"))}))
        if market in weight_indexes:
            w = read_panel(root, f"w_{market}", stocks).to_numpy(np.float64)
            snap = np.unique(np.r_[np.arange(0, len(cal), weight_every), len(cal) - 1])
            t, j = np.nonzero(np.nan_to_num(w[snap]) > 0)
            weights.add(pd.DataFrame({"index_code": ts_code(code), "con_code": [ts_code(stocks[k]) for k in j],
                                      "trade_date": dates[snap[t]], "weight": w[snap[t], j] * 100}))
    rows.update({"index_daily": bars.close(), "index_member": members.close(), "index_weight": weights.close()})
    return rows


def _export_minutes(root: Path, out: Path, fmt: str, stocks: list[str]) -> dict[str, int]:
    """``minute_<code>`` files (tushare 1-minute bars: shares, CNY, end-labelled) for the first few stocks."""
    if not (root / "calendars" / "1min.txt").exists():
        return {}
    mcal = read_calendar(root, "1min")
    labels = np.asarray(mcal.strftime("%Y-%m-%d %H:%M:%S"), dtype=object)
    rows = {}
    for sym in stocks:
        p = {f: read_panel(root, f, [sym], freq="1min").to_numpy(np.float64)[:, 0]
             for f in ("open", "high", "low", "close", "volume", "amount")}
        fac = read_panel(root, "factor", [sym]).reindex(mcal.normalize()).to_numpy()[:, 0]
        ok = np.isfinite(p["close"])
        sink = _Sink(out / f"minute_{sym[2:]}", fmt)
        sink.add(pd.DataFrame({"ts_code": ts_code(sym), "trade_time": labels[ok],
                               **{k: np.round(p[k][ok] / fac[ok], 2) for k in ("open", "high", "low", "close")},
                               "vol": p["volume"][ok] * fac[ok], "amount": p["amount"][ok]}))
        rows[f"minute_{sym[2:]}"] = sink.close()
    return rows
