"""One-minute bars of the synthetic market, consistent with the daily bar, regenerable on demand.

A session's 240 bars of one stock are a pure function of its stored (float32) daily bar, the
latent intraday trait ``q`` and random draws keyed by (seed, session index).  So any
(stock, day) path can be regenerated from the seed without storing it: :class:`MinuteStream`
does that in chunks for code that needs minute data over the whole span.

Path: a Brownian bridge from the open to the close with U-shaped minute variance, mapped
piecewise-linearly (in log price) so that its maximum is the day's high and its minimum the low,
rounded to cents.  Volume: U-shaped over the session, higher on big minutes, and tilted by ``q``
towards up-minutes (q > 0) or down-minutes (q < 0) -- the planted intraday signal, invisible in
the daily OHLCV.  Amount = minute volume x the bar's mean of OHLC, so daily vwap = sum / volume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..bin_io import bin_path, read_bin_into
from ..calendar import MINUTES_PER_DAY

MINUTE_FIELDS = ("open", "high", "low", "close", "volume", "amount")


@lru_cache(maxsize=8)
def intraday_shapes(open_spike: tuple, afternoon_spike: tuple, close_spike: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(volume shape summing to 1, variance shape summing to 1) over the 240 minutes: a U shape."""
    k = np.arange(MINUTES_PER_DAY, dtype=float)
    shape = 1.0 + open_spike[0] * np.exp(-k / open_spike[1])
    shape += afternoon_spike[0] * np.exp(-(k - 120) / afternoon_spike[1]) * (k >= 120)
    shape += close_spike[0] * np.exp(-(239 - k) / close_spike[1])
    var = shape**1.5
    return shape / shape.sum(), var / var.sum()


def day_draws(seed: int, day_index: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The two (n, 240) standard-normal draws of one session for all n instruments."""
    rng = np.random.default_rng([int(seed), 7, int(day_index)])
    z = rng.standard_normal((n, MINUTES_PER_DAY), dtype=np.float32)
    g = rng.standard_normal((n, MINUTES_PER_DAY), dtype=np.float32)
    return z, g


def day_q(seed: int, day_index: int, q_stock: np.ndarray, persistence: float) -> np.ndarray:
    """Latent intraday trait of every instrument on one session."""
    rng = np.random.default_rng([int(seed), 1, int(day_index)])
    return persistence * q_stock + np.sqrt(1 - persistence**2) * rng.standard_normal(q_stock.size)


def minute_bars(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray, q: np.ndarray,
    z: np.ndarray, g: np.ndarray, icfg: dict,
) -> dict[str, np.ndarray]:
    """240 bars per row from daily (open, high, low, close, volume) and latent q; rows are stock-days.

    Inputs are the stored float32 daily values; outputs are float64 (n, 240) arrays.  Rows with a
    non-finite close (suspended) come back NaN with zero volume.
    """
    vshape, vvar = intraday_shapes(tuple(icfg["open_spike"]), tuple(icfg["afternoon_spike"]), tuple(icfg["close_spike"]))
    o, h, low, c, v = (np.asarray(x, dtype=np.float64)[:, None] for x in (o, h, low, c, v))
    ok = np.isfinite(c[:, 0]) & (v[:, 0] > 0)
    o, h, low, c = (np.where(ok[:, None], x, 1.0) for x in (o, h, low, c))
    n = o.shape[0]

    c_log, h_log, l_log = np.log(c / o), np.log(h / o), np.log(low / o)
    sd = np.maximum(h_log - l_log, 1e-6) / 2.5
    e = z.astype(np.float64) * np.sqrt(vvar)
    x = np.cumsum(e, axis=1)
    s = np.cumsum(vvar)
    b = sd * (x - s * x[:, -1:]) + s * c_log          # bridge: b[:, -1] == c_log
    b[:, -1] = c_log[:, 0]

    hi, lo = np.maximum(0.0, c_log), np.minimum(0.0, c_log)
    bmax = np.maximum(b[:, :-1].max(axis=1, keepdims=True), hi)
    bmin = np.minimum(b[:, :-1].min(axis=1, keepdims=True), lo)
    up_ratio = np.where(bmax - hi > 1e-12, (h_log - hi) / np.maximum(bmax - hi, 1e-12), 0.0)
    dn_ratio = np.where(lo - bmin > 1e-12, (lo - l_log) / np.maximum(lo - bmin, 1e-12), 0.0)
    b = np.where(b > hi, hi + (b - hi) * up_ratio, b)
    b = np.where(b < lo, lo - (lo - b) * dn_ratio, b)
    # a path that never left [lo, hi] while the day's range did: one interior minute touches the extreme
    rows = np.arange(n)
    need_hi = (bmax[:, 0] - hi[:, 0] <= 1e-12) & (h_log[:, 0] > hi[:, 0])
    need_lo = (lo[:, 0] - bmin[:, 0] <= 1e-12) & (l_log[:, 0] < lo[:, 0])
    k_hi = np.argmax(b[:, :-1], axis=1)
    k_lo = np.argmin(b[:, :-1], axis=1)
    k_lo = np.where(need_hi & need_lo & (k_lo == k_hi), (k_hi + 1) % (MINUTES_PER_DAY - 1), k_lo)
    b[rows[need_hi], k_hi[need_hi]] = h_log[need_hi, 0]
    b[rows[need_lo], k_lo[need_lo]] = l_log[need_lo, 0]

    close = np.clip(np.round(o * np.exp(b), 2), low, h)
    close[:, -1] = c[:, 0]
    close[rows[need_hi], k_hi[need_hi]] = h[need_hi, 0]
    close[rows[need_lo], k_lo[need_lo]] = low[need_lo, 0]
    opn = np.empty_like(close)
    opn[:, 0] = o[:, 0]
    opn[:, 1:] = close[:, :-1]

    g64 = g.astype(np.float64)
    wick = icfg["wick"] * sd * np.sqrt(vvar) * np.abs(np.roll(g64, 1, axis=1))
    high = np.minimum(np.round(np.maximum(opn, close) * np.exp(wick), 2), h)
    high = np.maximum(high, np.maximum(opn, close))
    lowm = np.maximum(np.round(np.minimum(opn, close) * np.exp(-wick), 2), low)
    lowm = np.minimum(lowm, np.minimum(opn, close))

    zr = np.clip(np.log(close / opn) / (sd * np.sqrt(vvar)), -4, 4)
    logw = icfg["volume_noise"] * g64 + icfg["volume_abs_loading"] * np.abs(zr) + icfg["volume_q_loading"] * q[:, None] * zr
    w = vshape * np.exp(logw - logw.max(axis=1, keepdims=True))
    vol = v * w / w.sum(axis=1, keepdims=True)
    amount = vol * (opn + high + lowm + close) / 4.0

    out = {"open": opn, "high": high, "low": lowm, "close": close, "volume": vol, "amount": amount}
    if not ok.all():
        for key, arr in out.items():
            arr[~ok] = 0.0 if key in ("volume", "amount") else np.nan
    return out


class MinuteStream:
    """Regenerates the synthetic market's minute bars for any stocks x sessions, chunk by chunk.

    Built from a generated dataset directory (its ``meta/market.yaml`` holds the config): the
    daily bars are read from the ``.day.bin`` files and the paths recomputed, bit-identical to the
    ``.1min.bin`` files the generator wrote.
    """

    def __init__(self, data_dir: str | Path):
        from .universe import build_universe

        self.root = Path(data_dir)
        meta = self.root / "meta" / "market.yaml"
        if not meta.exists():
            raise FileNotFoundError(f"{meta}: not a synthetic market dataset (no generator config)")
        self.cfg = yaml.safe_load(meta.read_text())
        self.days = pd.DatetimeIndex(pd.read_csv(self.root / "calendars" / "day.txt", header=None)[0])
        self.universe = build_universe(self.cfg, self.days, np.random.default_rng([int(self.cfg["seed"]), 0]))
        self._pos = {s: i for i, s in enumerate(self.universe.symbols)}
        self._block: tuple[int, int, dict[str, np.ndarray]] | None = None

    @property
    def instruments(self) -> list[str]:
        return list(self.universe.symbols)

    #: sessions of daily bars read at once for the whole universe
    DAILY_BLOCK = 256

    def _daily(self, d0: int, d1: int) -> dict[str, np.ndarray]:
        """Daily open/high/low/close/volume of the whole universe for sessions [d0, d1): [n, d1-d0].

        Read once per block of :data:`DAILY_BLOCK` sessions for all instruments and cached, so
        chunked passes over the market read each bin region once.
        """
        if self._block is None or not (self._block[0] <= d0 and d1 <= self._block[1]):
            b0, b1 = d0, max(d1, min(len(self.days), d0 + self.DAILY_BLOCK))
            block = {}
            for f in ("open", "high", "low", "close", "volume"):
                arr = np.full((self.universe.n, b1 - b0), np.nan, dtype=np.float32)
                for i, sym in enumerate(self.universe.symbols):
                    read_bin_into(arr[i], bin_path(self.root, sym, f, "day"), b0)
                block[f] = arr
            self._block = (b0, b1, block)
        b0, _, block = self._block
        return {f: v[:, d0 - b0 : d1 - b0] for f, v in block.items()}

    def bars(self, symbols: Sequence[str], d0: int, d1: int, dtype=np.float64) -> dict[str, np.ndarray]:
        """Minute bars for sessions [d0, d1) (calendar indices): arrays (len(symbols), d1-d0, 240)."""
        unknown = [s for s in symbols if s not in self._pos]
        if unknown:
            raise KeyError(f"instruments not in the synthetic market {self.root}: {unknown[:5]}")
        idx = np.array([self._pos[s] for s in symbols], dtype=np.int64)
        daily = {f: v[idx] for f, v in self._daily(d0, d1).items()}
        icfg, seed = self.cfg["intraday"], self.cfg["seed"]
        out = {f: np.empty((len(symbols), d1 - d0, MINUTES_PER_DAY), dtype=dtype) for f in MINUTE_FIELDS}
        for j, t in enumerate(range(d0, d1)):
            z, g = day_draws(seed, t, self.universe.n)
            q = day_q(seed, t, self.universe.q_stock, icfg["q_persistence"])
            day = minute_bars(*(daily[f][:, j] for f in ("open", "high", "low", "close", "volume")),
                              q[idx], z[idx], g[idx], icfg)
            for f in MINUTE_FIELDS:
                out[f][:, j] = day[f]
        return out

    def iter_chunks(self, stocks_per_chunk: int = 500, days_per_chunk: int = 60,
                    d0: int = 0, d1: int | None = None) -> Iterator[tuple[list[str], int, int, dict[str, np.ndarray]]]:
        """Yield (symbols, d0, d1, bars) over the whole span in chunks of stocks x sessions."""
        d1 = len(self.days) if d1 is None else d1
        syms = self.instruments
        for a in range(d0, d1, days_per_chunk):
            b = min(d1, a + days_per_chunk)
            for s in range(0, len(syms), stocks_per_chunk):
                chunk = syms[s : s + stocks_per_chunk]
                yield chunk, a, b, self.bars(chunk, a, b)
