"""Placing minute bars on the [rows x 240] grid of the algebra, whatever their time labels.

The grid's slot ``k`` is the k-th one-minute bar of the session, labelled by its end time
(09:31 .. 11:30 = slots 0..119, 13:01 .. 15:00 = slots 120..239), as in ``calendars/1min.txt`` of
our datasets and in tushare-like feeds.  Two kinds of extra bars are merged rather than dropped:

* the 09:30 bar (the opening call auction, which tushare-like feeds report as a 241st bar) is merged
  into slot 0 (09:31): open = the auction's open, high/low = the max/min of both, close = the 09:31
  close, volume and amount summed.  A 13:00 bar, which some feeds print for the afternoon open, is
  merged into slot 120 the same way.
* data labelled by bar *start* (09:30 .. 11:29, 13:00 .. 14:59, as in Qlib's published ``cn_1min``
  data) is recognised when no bar is labelled 15:00 and is shifted one minute later.

Other times (pre-open 09:25, after-hours trading) are not part of the continuous session and are
dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .algebra import FIELDS, N_MINUTES

MERGE_OPEN, MERGE_PM, OFF = -1, -3, -2  # slot codes: merge into 0, merge into 120, dropped
_MERGE_TARGET = {MERGE_OPEN: 0, MERGE_PM: 120}


def minute_slots(times: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Slot 0..239 of each minute label, or a code: MERGE_OPEN (09:30), MERGE_PM (13:00), OFF."""
    t = pd.DatetimeIndex(times)
    mod = (t.hour * 60 + t.minute).to_numpy().astype(np.int64)
    if len(mod) and not (mod == 900).any() and (mod == 899).any():   # start-labelled: shift to end labels
        mod = mod + 1
    slot = np.full(mod.shape, OFF, dtype=np.int64)
    am = (mod >= 571) & (mod <= 690)
    pm = (mod >= 781) & (mod <= 900)
    slot[am] = mod[am] - 571
    slot[pm] = mod[pm] - 781 + 120
    slot[mod == 570] = MERGE_OPEN
    slot[mod == 780] = MERGE_PM
    return slot


def to_grid(row: np.ndarray, slot: np.ndarray, values: Mapping[str, np.ndarray], n_rows: int,
            dtype=np.float32) -> dict[str, np.ndarray]:
    """Scatter bars (row = stock-day index, slot from :func:`minute_slots`) onto ``[n_rows, 240]``.

    Cells without a bar are NaN (volume and amount too: a missing minute, not a zero-volume one).
    Bars with a merge code are merged into their target slot as described in the module docstring.
    """
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise KeyError(f"minute bars lack fields {missing}")
    row, slot = np.asarray(row), np.asarray(slot)
    ok = (slot >= 0) & (row >= 0) & (row < n_rows)
    flat = row * N_MINUTES + slot
    if ok.all() and flat.size == n_rows * N_MINUTES and (flat == np.arange(flat.size)).all():
        return {f: np.asarray(values[f], dtype=dtype).reshape(n_rows, N_MINUTES) for f in FIELDS}  # dense
    grid = {f: np.full((n_rows, N_MINUTES), np.nan, dtype=dtype) for f in FIELDS}
    flat = flat[ok]
    for f in FIELDS:
        grid[f].reshape(-1)[flat] = np.asarray(values[f])[ok]
    for code, target in _MERGE_TARGET.items():
        sel = (slot == code) & (row >= 0) & (row < n_rows)
        if sel.any():
            _merge(grid, row[sel], target, {f: np.asarray(values[f])[sel] for f in FIELDS})
    return grid


def _merge(grid: dict[str, np.ndarray], rows: np.ndarray, target: int, bar: dict[str, np.ndarray]) -> None:
    """Merge one extra bar per row into ``target``: the earlier bar's open, later bar's close."""
    have = np.isfinite(grid["close"][rows, target])
    new, old = rows[~have], rows[have]
    for f in FIELDS:                                  # no regular bar there: the extra bar takes the slot
        grid[f][new, target] = bar[f][~have]
    grid["open"][old, target] = bar["open"][have]
    grid["high"][old, target] = np.fmax(grid["high"][old, target], bar["high"][have])
    grid["low"][old, target] = np.fmin(grid["low"][old, target], bar["low"][have])
    for f in ("volume", "amount"):
        grid[f][old, target] = grid[f][old, target] + np.nan_to_num(bar[f][have])


class MinuteLayout:
    """Where each session of a daily calendar lies in a 1-minute calendar, and each minute's slot.

    ``bounds[d] = (i0, i1)``: minute-calendar positions [i0, i1) of session ``d`` (empty when the
    session has no minute bars: outside the minute window).
    """

    def __init__(self, days: pd.DatetimeIndex, minutes: pd.DatetimeIndex):
        self.days = pd.DatetimeIndex(days)
        minutes = pd.DatetimeIndex(minutes)
        self.slot = minute_slots(minutes)
        self.day_of_minute = self.days.get_indexer(minutes.normalize())
        dates = minutes.normalize().to_numpy()
        day_values = self.days.normalize().to_numpy()
        self.start = np.searchsorted(dates, day_values, side="left")
        self.stop = np.searchsorted(dates, day_values, side="right")
        regular = np.zeros(len(self.days) + 1, dtype=np.int64)   # prefix count of days laid out 0..239 in order
        full = np.flatnonzero(self.stop - self.start == N_MINUTES)
        if full.size:
            idx = self.start[full][:, None] + np.arange(N_MINUTES)
            ok = (self.slot[idx] == np.arange(N_MINUTES)).all(axis=1)
            regular[full[ok] + 1] = 1
        self._regular = np.cumsum(regular)

    def span(self, d0: int, d1: int) -> tuple[int, int]:
        """Minute positions [i0, i1) covering sessions [d0, d1); i0 == i1 when none has bars."""
        d1 = min(d1, len(self.days))
        if d1 <= d0:
            return 0, 0
        return int(self.start[d0]), int(self.stop[d1 - 1])

    def dense(self, d0: int, d1: int) -> bool:
        """True when every session of [d0, d1) has exactly the 240 regular bars, in order: the
        minute span is then a plain reshape to [d1 - d0, 240]."""
        d1 = min(d1, len(self.days))
        return d1 > d0 and self._regular[d1] - self._regular[d0] == d1 - d0

    def covered(self) -> np.ndarray:
        """Indices of the sessions that have minute bars."""
        return np.flatnonzero(self.stop > self.start)
