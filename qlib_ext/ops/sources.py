"""Where the batch engine gets one-minute bars: a dataset's ``.1min.bin`` files, the synthetic
market's :class:`~qlib_ext.data.synth.MinuteStream` (the whole span, nothing stored), or a directory
of tushare-like minute files.  Every source answers ``bars(symbols, d0, d1)`` with float32 arrays
``[len(symbols), d1 - d0, 240]`` (NaN = no bar) for sessions [d0, d1) of the dataset's daily calendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.bin_io import bin_path, read_bin_into
from ..data.codes import qlib_codes, to_qlib
from ..data.panel import read_calendar, read_instruments
from .algebra import FIELDS, N_MINUTES
from .grid import MinuteLayout, minute_slots, to_grid

TUSHARE_COLUMNS = {"open": "open", "high": "high", "low": "low", "close": "close", "vol": "volume", "amount": "amount"}


class MinuteSource:
    """Base: the dataset's sessions and, per instrument, the sessions [first, last] that may have bars."""

    kind = "base"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.days = read_calendar(self.root, "day")
        self.spans = pd.DataFrame(columns=["first", "last"], dtype=np.int64)

    @property
    def instruments(self) -> list[str]:
        return list(self.spans.index)

    def _listing_spans(self, lo: int = 0, hi: int | None = None) -> pd.DataFrame:
        """Listing spans of ``instruments/all.txt`` as session indices, clipped to [lo, hi]."""
        hi = len(self.days) - 1 if hi is None else hi
        inst = read_instruments(self.root, "all")
        g = inst.groupby("instrument").agg(start=("start", "min"), end=("end", "max"))
        first = np.maximum(self.days.searchsorted(g["start"].to_numpy()), lo)
        last = np.minimum(self.days.searchsorted(g["end"].to_numpy(), side="right") - 1, hi)
        out = pd.DataFrame({"first": first, "last": last}, index=g.index)
        return out[out["first"] <= out["last"]]

    def bars(self, symbols: Sequence[str], d0: int, d1: int) -> dict[str, np.ndarray]:
        raise NotImplementedError


class StreamSource(MinuteSource):
    """The synthetic market's minute bars regenerated on the fly by :class:`MinuteStream`
    (bit-identical to its bins; daily bars read once per block for the whole market, float32 out)."""

    kind = "stream"

    def __init__(self, root: str | Path):
        from ..data.synth import MinuteStream

        super().__init__(root)
        self.stream = MinuteStream(self.root)
        self.spans = self._listing_spans()

    def bars(self, symbols: Sequence[str], d0: int, d1: int) -> dict[str, np.ndarray]:
        return self.stream.bars(symbols, d0, d1, dtype=np.float32)


class BinSource(MinuteSource):
    """The dataset's ``features/<inst>/<field>.1min.bin`` files, read directly (no Qlib init)."""

    kind = "bins"

    def __init__(self, root: str | Path):
        super().__init__(root)
        path = self.root / "calendars" / "1min.txt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: the dataset has no 1-minute calendar (no minute bars to read)")
        self.layout = MinuteLayout(self.days, read_calendar(self.root, "1min"))
        covered = self.layout.covered()
        if not covered.size:
            raise ValueError(f"{path}: no minute falls on a session of calendars/day.txt")
        spans = self._listing_spans(int(covered[0]), int(covered[-1]))
        has = [bin_path(self.root, s, "close", "1min").exists() for s in spans.index]
        self.spans = spans[np.asarray(has, dtype=bool)]

    def bars(self, symbols: Sequence[str], d0: int, d1: int) -> dict[str, np.ndarray]:
        i0, i1 = self.layout.span(d0, d1)
        n_days, n_sym = d1 - d0, len(symbols)
        if i1 <= i0:
            return {f: np.full((n_sym, n_days, N_MINUTES), np.nan, dtype=np.float32) for f in FIELDS}
        values = {f: np.full((n_sym, i1 - i0), np.nan, dtype=np.float32) for f in FIELDS}
        for f in FIELDS:
            for k, s in enumerate(symbols):
                read_bin_into(values[f][k], bin_path(self.root, s, f, "1min"), i0)
        if self.layout.dense(d0, d1):
            return {f: v.reshape(n_sym, n_days, N_MINUTES) for f, v in values.items()}
        day = self.layout.day_of_minute[i0:i1] - d0
        rows = (np.arange(n_sym)[:, None] * n_days + day[None, :]).ravel()
        slots = np.broadcast_to(self.layout.slot[i0:i1], (n_sym, i1 - i0)).ravel()
        grid = to_grid(rows, slots, {f: v.ravel() for f, v in values.items()}, n_sym * n_days)
        return {f: g.reshape(n_sym, n_days, N_MINUTES) for f, g in grid.items()}


def qlib_code(ts_code: str) -> str:
    """``000001.SZ`` -> ``SZ000001`` by the one rule of :func:`qlib_ext.data.codes.to_qlib`; ValueError otherwise."""
    sym = to_qlib(ts_code)
    if sym is None:
        raise ValueError(f"ts_code {ts_code!r}: expected a stock code such as 000001.SZ, SZ000001 or 000001")
    return sym


class TushareSource(MinuteSource):
    """A directory (or one file) of tushare-like minute bars in CSV or Parquet.

    Columns ``ts_code, trade_time, open, high, low, close, vol, amount`` (extra columns ignored);
    ``trade_time`` like ``2022-03-01 09:31:00``; the 09:30 call-auction bar is merged into 09:31
    (see ``grid.py``).  Days are placed on the dataset's daily calendar; bars of other days are ignored.
    """

    kind = "tushare"

    def __init__(self, path: str | Path, root: str | Path):
        super().__init__(root)
        self.path = path = Path(path)
        files = [path] if path.is_file() else sorted([*path.glob("*.parquet"), *path.glob("*.csv")])
        if not files:
            raise FileNotFoundError(f"{path}: no .parquet or .csv minute files")
        self.files_of: dict[str, list[Path]] = {}
        self.code_of: dict[str, str] = {}
        first, last = {}, {}
        for f in files:
            idx = self._read(f, None, ["ts_code", "trade_time"])
            day = self.days.get_indexer(pd.to_datetime(idx["trade_time"]).dt.normalize())
            idx = idx.assign(day=day)[day >= 0]
            for code, g in idx.groupby("ts_code"):
                sym = qlib_code(code)
                self.code_of[sym] = code
                self.files_of.setdefault(sym, []).append(f)
                first[sym] = min(first.get(sym, 1 << 30), int(g["day"].min()))
                last[sym] = max(last.get(sym, -1), int(g["day"].max()))
        self.spans = pd.DataFrame({"first": first, "last": last}, dtype=np.int64).sort_index()

    @staticmethod
    def _read(path: Path, codes: list[str] | None, columns: list[str]) -> pd.DataFrame:
        missing_msg = f"{path}: minute file lacks column(s) %s; expected ts_code, trade_time, open, high, low, close, vol, amount"
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            have = set(pq.read_schema(path).names)
            miss = [c for c in columns if c not in have]
            if miss:
                raise ValueError(missing_msg % miss)
            filters = [("ts_code", "in", codes)] if codes else None
            return pd.read_parquet(path, columns=columns, filters=filters)
        df = pd.read_csv(path, dtype={"ts_code": str, "trade_time": str})
        miss = [c for c in columns if c not in df.columns]
        if miss:
            raise ValueError(missing_msg % miss)
        df = df[columns]
        return df[df["ts_code"].isin(codes)] if codes else df

    def bars(self, symbols: Sequence[str], d0: int, d1: int) -> dict[str, np.ndarray]:
        n_days = d1 - d0
        pos = {s: i for i, s in enumerate(symbols)}
        files = sorted({f for s in symbols for f in self.files_of.get(s, [])})
        codes = [self.code_of[s] for s in symbols if s in self.code_of]
        frames = [self._read(f, codes, ["ts_code", "trade_time", *TUSHARE_COLUMNS]) for f in files]
        if not frames:
            return {f: np.full((len(symbols), n_days, N_MINUTES), np.nan, dtype=np.float32) for f in FIELDS}
        df = pd.concat(frames, ignore_index=True)
        times = pd.to_datetime(df["trade_time"])
        day = self.days.get_indexer(times.dt.normalize()) - d0
        inst = pd.Series(qlib_codes(df["ts_code"], fold_aliases=False)).map(pos).fillna(-1).to_numpy(np.int64)
        keep = (day >= 0) & (day < n_days) & (inst >= 0)
        rows = np.where(keep, inst * n_days + day, -1)
        values = {TUSHARE_COLUMNS[c]: df[c].to_numpy(np.float64) for c in TUSHARE_COLUMNS}
        grid = to_grid(rows, minute_slots(times), values, len(symbols) * n_days)
        return {f: g.reshape(len(symbols), n_days, N_MINUTES) for f, g in grid.items()}


def open_source(root: str | Path, source: str = "auto") -> MinuteSource:
    """``auto``: the synthetic stream when ``meta/market.yaml`` exists, else the 1-minute bins;
    ``stream`` | ``bins``; or a path to tushare-like minute files."""
    root = Path(root)
    if source == "auto":
        source = "stream" if (root / "meta" / "market.yaml").exists() else "bins"
    if source == "stream":
        return StreamSource(root)
    if source == "bins":
        return BinSource(root)
    if Path(source).exists():
        return TushareSource(source, root)
    raise ValueError(f"source={source!r}: expected auto, stream, bins or an existing minute file/directory")
