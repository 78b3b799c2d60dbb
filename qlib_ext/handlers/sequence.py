"""K-line sequences for sequence models: one float32 panel, windows gathered per batch (SPEC 5, 11).

Qlib's ``TSDatasetH`` materialises every window and pads short histories by forward-then-backward
fill, which copies later prices into earlier steps and costs tens of GiB on a large market (Qlib
issues 690, 1826, 2097).  Here the data live once as a float32 panel ``bars[day, stock, field]``
(fields ``open high low close vwap volume``) and a window is gathered only when a batch asks for it.

Conventions (``gather_windows``), for a sample (day t, stock n) and step j = 0..L-1 (oldest first)
at session ``s_j = t - stride * (L - 1 - j)``:

* suspended sessions: the bar is flat at the last close (open = high = low = close = vwap = the
  carried close), volume 0; sessions before a stock's first trade are *not listed*;
* prices: ``p[s_j] / close[t] - 1`` (so the last close is 0);
* volume: ``v[s_j] / mean(v over the window's listed steps)`` (0 when that mean is 0);
* channel 6, ``mask``: 1 on steps where the stock traded, else 0;
* steps before the data or before the listing: every channel 0 (masked, never padded from later
  values).
Weekly bars (``rolling_bars``): bar k of a sample is the rolling 5-session bar ending at
``t - 5k``: open of its first session, max high, min low, last close, volume-weighted vwap, summed
volume; traded when any of its sessions traded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from qlib.data.dataset import DatasetH
from qlib.data.dataset.handler import DataHandler, DataHandlerLP

__all__ = [
    "CHANNELS", "FIELDS", "SequenceDataset", "SequencePanel", "SequenceSampler", "carry_suspended", "gather_windows",
    "rolling_bars",
]

#: daily bar fields, in panel order
FIELDS = ("open", "high", "low", "close", "vwap", "volume")
#: channels of a gathered window: the fields plus the traded mask
CHANNELS = (*FIELDS, "mask")
_PRICES = slice(0, 5)
_CLOSE, _VWAP, _VOLUME = 3, 4, 5


def carry_suspended(bars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In place: flat bars at the last close on non-traded sessions, volume 0; returns (bars, traded, listed).

    ``bars``: float32 ``[days, stocks, 6]``.  A session is *traded* when all five prices are finite
    and positive and the volume is finite and > 0; a stock is *listed* from its first traded session.
    Only earlier values are carried forward, so nothing of the future reaches an earlier session.
    """
    prices = bars[..., _PRICES]
    vol = bars[..., _VOLUME]
    with np.errstate(invalid="ignore"):
        traded = np.isfinite(prices).all(-1) & (prices > 0).all(-1) & np.isfinite(vol) & (vol > 0)
    n_days = bars.shape[0]
    last = np.where(traded, np.arange(n_days, dtype=np.int32)[:, None], -1)
    np.maximum.accumulate(last, axis=0, out=last)
    listed = last >= 0
    cols = np.broadcast_to(np.arange(bars.shape[1]), last.shape)
    carried_close = bars[np.maximum(last, 0), cols, _CLOSE]
    fill = ~traded
    for f in range(5):
        bars[..., f] = np.where(fill, carried_close, bars[..., f])
    bars[..., _VOLUME] = np.where(traded, vol, 0.0)
    bars[~listed] = np.nan
    return bars, traded, listed


def rolling_bars(bars: np.ndarray, traded: np.ndarray, listed: np.ndarray,
                 n: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rolling ``n``-session bars from carried daily bars: the bar of session t covers t-n+1..t.

    open = open of the first listed session of the span, high = max, low = min, close = close[t],
    volume = sum, vwap = sum(vwap * volume) / sum(volume) (close[t] when nothing traded).  A bar is
    listed when session t is, and traded when any of its sessions traded.
    """
    if n < 1:
        raise ValueError(f"rolling_bars: n must be >= 1, got {n}")
    n_days = bars.shape[0]
    hi = np.full(bars.shape[:2], -np.inf, dtype=bars.dtype)
    lo = np.full(bars.shape[:2], np.inf, dtype=bars.dtype)
    opens = np.full(bars.shape[:2], np.nan, dtype=bars.dtype)
    vol = np.zeros(bars.shape[:2], dtype=np.float64)
    value = np.zeros(bars.shape[:2], dtype=np.float64)
    out_traded = np.zeros_like(traded)
    for k in range(min(n, n_days) - 1, -1, -1):  # oldest session of the span first; views, no copies
        dst, src = slice(k, None), slice(0, n_days - k)
        ok = listed[src]
        np.maximum(hi[dst], np.where(ok, bars[src, :, 1], -np.inf), out=hi[dst])
        np.minimum(lo[dst], np.where(ok, bars[src, :, 2], np.inf), out=lo[dst])
        first = ok & np.isnan(opens[dst])
        opens[dst] = np.where(first, bars[src, :, 0], opens[dst])
        v = np.where(ok, bars[src, :, _VOLUME], 0.0)
        vol[dst] += v
        value[dst] += v * np.where(ok, bars[src, :, _VWAP], 0.0)
        out_traded[dst] |= traded[src]
    out = np.empty_like(bars)
    close = bars[..., _CLOSE]
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(vol > 0, value / np.where(vol > 0, vol, 1.0), close)
    out[..., 0], out[..., 1], out[..., 2], out[..., _CLOSE] = opens, hi, lo, close
    out[..., _VWAP], out[..., _VOLUME] = vwap, vol
    out[~listed] = np.nan
    return out, out_traded & listed, listed


def gather_windows(bars: np.ndarray, traded: np.ndarray, listed: np.ndarray, t_idx: np.ndarray,
                   n_idx: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Normalised windows ``[B, window, 7]`` float32 for samples (t_idx, n_idx); see the module docstring."""
    t_idx = np.asarray(t_idx, dtype=np.int64)
    n_idx = np.asarray(n_idx, dtype=np.int64)
    n_stocks = bars.shape[1]
    steps = t_idx[:, None] - stride * np.arange(window - 1, -1, -1, dtype=np.int64)[None, :]
    inside = steps >= 0
    flat = (np.maximum(steps, 0) * n_stocks + n_idx[:, None]).ravel()  # one take on axis 0: fast
    raw = bars.reshape(-1, bars.shape[2]).take(flat, axis=0).reshape(*steps.shape, bars.shape[2])
    ok = inside & listed.reshape(-1).take(flat).reshape(steps.shape)
    close_t = bars[t_idx, n_idx, _CLOSE].astype(np.float32)
    out = np.zeros((*ok.shape, len(CHANNELS)), dtype=np.float32)
    prices = out[..., _PRICES]
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(raw[..., _PRICES], close_t[:, None, None], out=prices)
        prices -= 1.0
        prices[~ok] = 0.0
        vol = np.where(ok, raw[..., _VOLUME], np.float32(0.0))
        mean_vol = (vol.sum(1) / np.maximum(ok.sum(1), 1)).astype(np.float32)
        safe = np.where(mean_vol > 0, mean_vol, np.float32(1.0))
        out[..., _VOLUME] = np.where(mean_vol[:, None] > 0, vol / safe[:, None], np.float32(0.0))
    out[..., 6] = ok & traded.reshape(-1).take(flat).reshape(steps.shape)
    return out


@dataclass
class SequencePanel:
    """The bars of a market as one float32 panel plus its flags (``traded``, ``listed``, ``present``).

    ``present[t, n]``: the handler has a row for (day t, stock n) (the instrument is in the market
    that day); ``labels[t, n]``: the learn label (NaN where unknown).  ``stride``: sessions between
    steps of a window (5 for weekly bars), ``window``: steps per sample.
    """

    dates: pd.DatetimeIndex
    instruments: pd.Index
    bars: np.ndarray
    traded: np.ndarray
    listed: np.ndarray
    present: np.ndarray
    labels: np.ndarray | None
    window: int = 40
    stride: int = 1

    @classmethod
    def from_frame(cls, features: pd.DataFrame, labels: pd.Series | None = None, window: int = 40,
                   bar_sessions: int = 1) -> SequencePanel:
        """Build from a (datetime, instrument) frame with columns ``FIELDS`` (last level) and a label series."""
        names = [c[-1] if isinstance(c, tuple) else c for c in features.columns]
        missing = [f for f in FIELDS if f not in names]
        if missing:
            raise ValueError(f"SequencePanel: the handler's features lack {missing} (columns: {names})")
        if list(features.index.names) != ["datetime", "instrument"]:
            features = features.swaplevel().sort_index() if set(features.index.names) == {
                "datetime", "instrument"} else features
        d_codes, dates = pd.factorize(features.index.get_level_values("datetime"), sort=True)
        n_codes, instruments = pd.factorize(features.index.get_level_values("instrument"), sort=True)
        bars = np.full((len(dates), len(instruments), len(FIELDS)), np.nan, dtype=np.float32)
        for j, f in enumerate(FIELDS):
            bars[d_codes, n_codes, j] = features.iloc[:, names.index(f)].to_numpy(dtype=np.float32)
        present = np.zeros(bars.shape[:2], dtype=bool)
        present[d_codes, n_codes] = True
        lab = None
        if labels is not None:
            lab = np.full(bars.shape[:2], np.nan, dtype=np.float32)
            li = labels.index
            ld = dates.get_indexer(li.get_level_values("datetime"))
            ln = instruments.get_indexer(li.get_level_values("instrument"))
            keep = (ld >= 0) & (ln >= 0)
            lab[ld[keep], ln[keep]] = labels.to_numpy(dtype=np.float32)[keep]
        bars, traded, listed = carry_suspended(bars)
        if bar_sessions > 1:
            bars, traded, listed = rolling_bars(bars, traded, listed, bar_sessions)
        return cls(pd.DatetimeIndex(dates, name="datetime"), pd.Index(instruments, name="instrument"), bars,
                   traded, listed, present, lab, window=int(window), stride=int(bar_sessions))

    @property
    def nbytes(self) -> int:
        """Memory held by the panel's arrays."""
        arrays = (self.bars, self.traded, self.listed, self.present, self.labels)
        return sum(a.nbytes for a in arrays if a is not None)

    def sampler(self, start=None, end=None, need_label: bool = False, every: int = 1) -> SequenceSampler:
        """The samples of days in [start, end]: present and listed (and labelled if ``need_label``).

        ``every``: keep every k-th session of the span (counted from its first session).
        """
        lo = 0 if start is None else self.dates.searchsorted(pd.Timestamp(start), "left")
        hi = len(self.dates) if end is None else self.dates.searchsorted(pd.Timestamp(end), "right")
        days = np.arange(lo, hi)[:: max(int(every), 1)]
        ok = self.present[days] & self.listed[days]
        if need_label:
            if self.labels is None:
                raise ValueError("SequencePanel: a labelled sampler was asked for but the panel has no labels")
            ok &= np.isfinite(self.labels[days])
        t_rel, n_idx = np.nonzero(ok)
        return SequenceSampler(self, days[t_rel].astype(np.int32), n_idx.astype(np.int32))


class SequenceSampler:
    """The samples of one segment: (day, stock) pairs of a ``SequencePanel``; windows on demand."""

    def __init__(self, panel: SequencePanel, t_idx: np.ndarray, n_idx: np.ndarray):
        self.panel, self.t_idx, self.n_idx = panel, t_idx, n_idx

    def __len__(self) -> int:
        return len(self.t_idx)

    @property
    def d_feat(self) -> int:
        return len(CHANNELS)

    @property
    def window(self) -> int:
        return self.panel.window

    @property
    def index(self) -> pd.MultiIndex:
        """(datetime, instrument) of the samples, in sampler order (day-major)."""
        return pd.MultiIndex.from_arrays(
            [self.panel.dates[self.t_idx], self.panel.instruments[self.n_idx]], names=["datetime", "instrument"])

    @property
    def label(self) -> np.ndarray:
        """Labels of the samples (NaN where unknown)."""
        if self.panel.labels is None:
            return np.full(len(self), np.nan, dtype=np.float32)
        return self.panel.labels[self.t_idx, self.n_idx]

    def gather(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """Windows ``[B, window, 7]`` float32 of the samples at ``rows``."""
        rows = slice(None) if rows is None else rows
        p = self.panel
        return gather_windows(p.bars, p.traded, p.listed, self.t_idx[rows], self.n_idx[rows], p.window, p.stride)

    def dates_of(self, rows) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last date of the samples at ``rows`` (for error messages)."""
        d = self.panel.dates[self.t_idx[rows]]
        return d.min(), d.max()


    def subset(self, keep: np.ndarray) -> SequenceSampler:
        """The samples where the boolean ``keep`` is True (or at the integer rows ``keep``)."""
        return SequenceSampler(self.panel, self.t_idx[keep], self.n_idx[keep])

    def labelled(self) -> SequenceSampler:
        """The samples with a finite label."""
        return self.subset(np.isfinite(self.label))

    def every(self, k: int) -> SequenceSampler:
        """Every k-th session of the sampler's span (counted from its first session)."""
        if k <= 1 or len(self) == 0:
            return self
        return self.subset((self.t_idx - self.t_idx.min()) % int(k) == 0)


class SequenceDataset(DatasetH):
    """Qlib ``DatasetH`` that serves a K-line handler's bars as windows (the role of Qlib's ``TSDatasetH``).

    ``prepare(segment)`` returns a :class:`SequenceSampler` over the segment's samples (features and
    labels through ``gather`` / ``label``); ``prepare(segment, col_set="label", ...)`` and any other
    call with a ``data_key`` and a ``col_set`` other than the default behave as ``DatasetH.prepare``
    (``SignalRecord`` reads the raw label that way).  The panel is built once, on first use, from the
    handler's ``DK_I`` features and ``DK_L`` label; ``window`` and ``bar_sessions`` default to the
    handler's attributes of the same names (``DailyKline``: 40 and 1, ``WeeklyKline``: n_weeks and 5).
    """

    def __init__(self, handler, segments: dict, window: int | None = None, bar_sessions: int | None = None,
                 **kwargs):
        self.window, self.bar_sessions = window, bar_sessions
        self._panel: SequencePanel | None = None
        super().__init__(handler, segments, **kwargs)

    def config(self, handler_kwargs: dict | None = None, **kwargs):
        """Reconfigure (Qlib's rolling machinery calls it); new handler data -> the panel is rebuilt."""
        if handler_kwargs is not None:
            self._panel = None
        super().config(handler_kwargs=handler_kwargs, **kwargs)

    def setup_data(self, **kwargs):
        self._panel = None
        super().setup_data(**kwargs)

    @property
    def panel(self) -> SequencePanel:
        """The market's bars as one float32 panel (built on first use)."""
        if getattr(self, "_panel", None) is None:  # Qlib's pickling drops `_` attributes
            h = self.handler
            window = self.window or getattr(h, "window", None) or 40
            bar = self.bar_sessions or getattr(h, "bar_sessions", None) or 1
            feats = h.fetch(col_set="feature", data_key=DataHandlerLP.DK_I)
            try:
                label = h.fetch(col_set="label", data_key=DataHandlerLP.DK_L)
            except (KeyError, ValueError):
                label = None
            if isinstance(label, pd.DataFrame):
                if label.shape[1] != 1:
                    raise ValueError(f"SequenceDataset: expected one label column, got {list(label.columns)}")
                label = label.iloc[:, 0]
            self._panel = SequencePanel.from_frame(feats, label, window=window, bar_sessions=bar)
            del feats, label
        return self._panel

    def prepare(self, segments, col_set=DataHandler.CS_ALL, data_key=DataHandlerLP.DK_I, **kwargs):
        """A ``SequenceSampler`` per segment name (or a list of them), or ``DatasetH.prepare`` for tables."""
        if col_set not in (DataHandler.CS_ALL, ["feature", "label"], "feature") or kwargs:
            return super().prepare(segments, col_set=col_set, data_key=data_key, **kwargs)
        names = [segments] if isinstance(segments, str) else list(segments)
        out = []
        for name in names:
            if name not in self.segments:
                raise KeyError(f"SequenceDataset: no segment {name!r} (segments: {list(self.segments)})")
            start, end = self.segments[name]
            out.append(self.panel.sampler(start, end))
        return out[0] if isinstance(segments, str) else out
