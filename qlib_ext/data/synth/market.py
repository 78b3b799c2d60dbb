"""Builds the synthetic market into a Qlib dataset, streaming blocks of sessions to the writer."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from ..bin_io import DatasetWriter
from ..calendar import MINUTES_PER_DAY, minute_calendar, trading_days
from .config import load_market_config, validate_market_config
from .daily import ALPHA_COLUMNS, STYLE_COLUMNS, DailySimulator
from .indexes import BANDS, INDEX_CODES, INDEX_FIELDS, IndexBook
from .minute import MINUTE_FIELDS, day_draws, minute_bars
from .universe import BOARDS, SW_L1, build_universe

#: Daily fields written for every stock (SPEC 3.1).
STOCK_FIELDS = (
    "open", "high", "low", "close", "vwap", "volume", "amount", "factor", "change", "turnover",
    "total_shares", "float_shares", "mcap", "float_mcap", "industry", "up_limit", "down_limit", "paused",
    *(f"w_{b}" for b in BANDS),
)
MINUTE_FLUSH_DAYS = 20


def _minute_window(cfg: dict, n_days: int) -> int:
    """First calendar index that gets ``.1min.bin`` files."""
    win = cfg.get("minute_window", "all")
    if win in ("all", None):
        return 0
    return max(0, n_days - int(win))


class _Block:
    """Per-field buffers for a block of sessions, flushed to the writer as contiguous appends."""

    def __init__(self, fields, n_days: int, n: int, t0: int, width: int = 1, cal0: int = 0):
        self.t0, self.filled, self.cal0 = t0, 0, cal0
        shape = (n_days, n) if width == 1 else (n, n_days, width)
        self.buf = {f: np.full(shape, np.nan, dtype=np.float32) for f in fields}
        self.width = width

    def flush(self, writer: DatasetWriter, symbols, first: np.ndarray, last: np.ndarray, freq: str) -> None:
        """Append each instrument's rows that fall inside its listing span [first, last]."""
        if self.filled == 0:
            return
        t0, t1 = self.t0, self.t0 + self.filled
        for i in np.flatnonzero((first < t1) & (last >= t0)):
            a, b = max(t0, first[i]), min(t1, last[i] + 1)
            for f, arr in self.buf.items():
                vals = arr[a - t0 : b - t0, i] if self.width == 1 else arr[i, a - t0 : b - t0].ravel()
                start = (a - self.cal0) * self.width if self.width > 1 else a
                writer.append_feature(symbols[i], f, start, vals, freq)


def build_market(preset: str | Path | dict = "tiny", out: str | Path = "data/qlib_ext_tiny", seed: int | None = None,
                 progress: bool = True) -> Path:
    """Generate the market of a preset (or a resolved config dict) into the Qlib dataset ``out``.

    Deterministic for a given config and seed.  Memory is bounded by ``block_days`` sessions of daily
    fields plus ``MINUTE_FLUSH_DAYS`` sessions of minute bars, whatever the span and universe.
    """
    cfg = validate_market_config(dict(preset), "config dict") if isinstance(preset, dict) else load_market_config(preset)
    if seed is not None:
        cfg["seed"] = int(seed)
    seed = int(cfg["seed"])
    days = trading_days(cfg["start"], cfg["end"])
    T = len(days)
    universe = build_universe(cfg, days, np.random.default_rng([seed, 0]))
    sim = DailySimulator(cfg, universe, days, np.random.default_rng([seed, 2]))
    book = IndexBook(cfg, universe.n, days)
    m0 = _minute_window(cfg, T)
    syms, first, last = universe.symbols, universe.list_idx, universe.delist_idx
    icfg = cfg["intraday"]
    block_days = int(cfg.get("block_days", 250))

    with DatasetWriter(out) as writer, _MinuteEngine(seed, universe.n, icfg) as engine:
        writer.write_calendar(days, "day")
        writer.write_calendar(minute_calendar(days[m0:]), "1min")
        minute = None
        bar = tqdm(total=T, desc=f"synth {cfg.get('name', '')}", unit="day", disable=not progress)
        for b0 in range(0, T, block_days):
            b1 = min(T, b0 + block_days)
            daily = _Block(STOCK_FIELDS, b1 - b0, universe.n, b0)
            for t in range(b0, b1):
                rec = sim.step(t, book)
                day_amount, bars = engine.day(rec, t, keep_bars=t >= m0, prefetch=t + 1 < T)
                rec["amount"] = np.where(rec["_trading"], day_amount, np.where(rec["_listed"], 0.0, np.nan))
                rec["vwap"] = np.where(rec["_trading"], rec["amount"] / np.where(rec["_trading"], rec["volume"], 1.0), np.nan)
                book.update(t, rec)
                for f in STOCK_FIELDS:
                    daily.buf[f][t - b0] = rec[f]
                daily.filled += 1
                if t >= m0:
                    if minute is None:
                        minute = _Block(MINUTE_FIELDS, MINUTE_FLUSH_DAYS, universe.n, t, MINUTES_PER_DAY, cal0=m0)
                    for f in MINUTE_FIELDS:
                        minute.buf[f][:, t - minute.t0] = bars[f]
                    minute.filled += 1
                    if minute.filled == MINUTE_FLUSH_DAYS or t == T - 1:
                        minute.flush(writer, syms, first, last, "1min")
                        minute = None
                bar.update(1)
            daily.flush(writer, syms, first, last, "day")
        bar.close()

        for name, code in INDEX_CODES.items():
            for f in INDEX_FIELDS:
                writer.write_feature(code, f, 0, book.bars[name][f])
        _write_instruments(writer, universe, days, book)
        _write_meta(writer, cfg, universe, days)
        _write_alpha_style(writer, sim)
    return Path(out).expanduser().resolve()


class _MinuteEngine:
    """Minute bars of every instrument, one session at a time, on a small thread pool.

    Bars are computed for every session (the daily vwap and amount are their aggregate, also where no
    ``.1min.bin`` is written) and are most of a build's time.  NumPy releases the GIL in the array
    work, so the rows (stocks, independent in :func:`minute_bars`) go out in halves and the next
    session's random draws are made ahead; every value is the one a serial build gives.
    """

    MIN_ROWS = 400  # below this, threads cost more than they save

    def __init__(self, seed: int, n: int, icfg: dict, threads: int | None = None):
        self.seed, self.n, self.icfg = seed, n, icfg
        threads = min(2, os.cpu_count() or 1) if threads is None else threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._draws: dict[int, Future] = {}

    def __enter__(self) -> _MinuteEngine:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _draws_of(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        future = self._draws.pop(t, None)
        return future.result() if future is not None else day_draws(self.seed, t, self.n)

    def day(self, rec: dict, t: int, keep_bars: bool = True,
            prefetch: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """(daily amount = sum of the minute amounts, the minute bars or None) of session t.

        ``keep_bars``: return the bars (NaN rows where not trading); sessions before the minute window
        need only the amount.  ``prefetch``: draw session t+1's random numbers now.
        """
        z, g = self._draws_of(t)
        args = [rec[f].astype(np.float32) for f in ("open", "high", "low", "close", "volume")] + [rec["_q"], z, g]
        if self.pool is None or self.n < self.MIN_ROWS:
            parts = [self._rows(args, slice(None), keep_bars)]
        else:
            halves = (slice(0, self.n // 2), slice(self.n // 2, None))
            parts = [f.result() for f in [self.pool.submit(self._rows, args, rows, keep_bars) for rows in halves]]
        if prefetch and self.pool is not None:  # drawn while this thread simulates the next session
            self._draws[t + 1] = self.pool.submit(day_draws, self.seed, t + 1, self.n)
        amount = np.concatenate([a for a, _ in parts])
        if not keep_bars:
            return amount, None
        if len(parts) == 1:
            return amount, parts[0][1]
        return amount, {f: np.concatenate([b[f] for _, b in parts]) for f in MINUTE_FIELDS}

    def _rows(self, args: list, rows: slice, keep_bars: bool) -> tuple[np.ndarray, dict | None]:
        bars = minute_bars(*(a[rows] for a in args), self.icfg)
        return bars["amount"].sum(axis=1), bars if keep_bars else None


def _write_instruments(writer: DatasetWriter, universe, days: pd.DatetimeIndex, book: IndexBook) -> None:
    spans = [(s, days[a], days[b]) for s, a, b in zip(universe.symbols, universe.list_idx, universe.delist_idx)]
    writer.write_instruments("all", spans)
    writer.write_instruments("csiall", spans)
    for band, rows in book.close_spans(len(days) - 1).items():
        writer.write_instruments(band, [(universe.symbols[i], days[a], days[b]) for i, a, b in rows])


def _write_alpha_style(writer: DatasetWriter, sim: DailySimulator) -> None:
    """``meta/planted_alpha_style.csv``: daily rank correlations of the planted composite with styles."""
    table = pd.DataFrame(sim.style_rows, columns=["date", *STYLE_COLUMNS])
    table["date"] = pd.to_datetime(table["date"]).dt.strftime("%Y-%m-%d")
    table.round(5).to_csv(writer.root / "meta" / "planted_alpha_style.csv", index=False)
    if sim.mech is not None:  # issue 21's factor-level facts (only with the mechanisms: older markets keep their files)
        daily = pd.DataFrame(sim.alpha_rows, columns=["date", *ALPHA_COLUMNS])
        daily["date"] = pd.to_datetime(daily["date"]).dt.strftime("%Y-%m-%d")
        daily.round(6).to_csv(writer.root / "meta" / "planted_alpha_daily.csv", index=False)


def _write_meta(writer: DatasetWriter, cfg: dict, universe, days: pd.DatetimeIndex) -> None:
    meta = writer.root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "market.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    writer.write_json("meta/industries.json", {str(k): {"name": v[0], "name_en": v[1]} for k, v in SW_L1.items()})
    writer.write_json("meta/indexes.json", INDEX_CODES)
    table = pd.DataFrame({
        "instrument": universe.symbols, "board": [BOARDS[b] for b in universe.board], "industry": universe.industry,
        "list_date": days[universe.list_idx].strftime("%Y-%m-%d"),
        "delist_date": np.where(universe.delist_idx < len(days) - 1, days[universe.delist_idx].strftime("%Y-%m-%d"), ""),
        "total_shares": universe.total_shares, "float_shares": universe.float_shares,
    })
    table.to_csv(meta / "instruments.csv", index=False)
    writer.write_json("meta/dataset.json", {
        "kind": "synthetic", "generator": "qlib_ext.data.synth", "preset": cfg.get("name"), "seed": cfg["seed"],
        "start": str(days[0].date()), "end": str(days[-1].date()), "n_instruments": int(universe.n),
        "minute_window_start": str(days[_minute_window(cfg, len(days))].date()),
        "fields": list(STOCK_FIELDS), "suspended_days": "price fields NaN, volume 0, paused 1 (Qlib's convention)",
        "factor": "1.0 (no corporate actions are simulated)",
    })
