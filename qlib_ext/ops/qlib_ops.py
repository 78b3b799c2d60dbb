"""Qlib operators for the minute-factor library: daily expressions computed from 1-minute bins.

``MinSkew()``, ``MinCorrVR()``, ... are ``ExpressionOps`` without arguments that evaluate, for each
session of the daily calendar, one factor of ``library.py`` from the same instrument's 1-minute
bars; they compose with every Qlib operator: ``Mean(MinSkew(), 20)``, ``Ref(MinTrend(), 1)``,
``Rank(MinCorrVR())`` (registered by ``qlib_ext.init`` through ``custom_ops``).

How: the op maps its daily index range to the 1-minute calendar (``Cal.calendar(freq="1min")``),
reads the six minute fields with ``FeatureD.feature(inst, "$close", i0, i1, "1min")`` (the ``$``
is required: without it the read is empty without error), places them on the [days x 240] grid
(``grid.py``) and runs the batch engine's NumPy path on it -- so both paths give the same numbers.
The bars are read once per (instrument, range) for *all* factors: a small per-process cache keeps
the whole library of the last instruments, and the other factors of the same instrument are then
slices.  The cache is keyed by the dataset's identity as well as its path
(:func:`qlib_ext.data.provenance.dataset_identity`), so a dataset rewritten in place is read afresh.

The operator classes are generated from the library's table (:func:`make_op`): a new factor is its
formula in ``library.py`` (with its ``op`` name) and a test.  Sessions without minute bars (outside the minute window) give NaN.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
from qlib.data.base import ExpressionOps

from ..data.provenance import dataset_identity
from .algebra import FIELDS, N_MINUTES
from .batch import compute_factors
from .grid import MinuteLayout, to_grid
from .library import LIBRARY, MinuteFactor

CACHE_INSTRUMENTS = 16


def _provider_key() -> tuple:
    """The current provider's day and 1-minute data folders and their :func:`dataset_identity` (with the
    1-minute calendar's stat): a rewritten dataset at the same path gets a new key."""
    from qlib.config import C

    uris = (str(C.dpm.get_data_uri("day")), str(C.dpm.get_data_uri("1min")))
    return uris + tuple((dataset_identity(u), _stat(Path(u) / "calendars" / "1min.txt")) for u in dict.fromkeys(uris))


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


_LAYOUTS: dict[tuple, MinuteLayout] = {}
_CACHE: OrderedDict[tuple[tuple, str], tuple[int, int, pd.DataFrame]] = OrderedDict()


def _layout() -> MinuteLayout:
    """Day -> minute-calendar positions of the current Qlib provider (built once per dataset identity)."""
    from qlib.data.data import Cal

    key = _provider_key()
    if key not in _LAYOUTS:
        days = pd.DatetimeIndex(Cal.calendar(freq="day"))
        try:
            minutes = pd.DatetimeIndex(Cal.calendar(freq="1min"))
        except Exception as exc:
            raise ValueError(f"minute-factor operators need calendars/1min.txt under {key[1]}: {exc}") from exc
        _LAYOUTS.clear()
        _LAYOUTS[key] = MinuteLayout(days, minutes)
    return _LAYOUTS[key]


def _compute(instrument: str, s: int, e: int) -> pd.DataFrame:
    """The whole library for sessions [s, e] of one instrument (rows = day indices)."""
    from qlib.data.data import FeatureD

    layout = _layout()
    index = pd.RangeIndex(s, e + 1)
    i0, i1 = layout.span(s, e + 1)
    if i1 <= i0:
        return pd.DataFrame(np.nan, index=index, columns=[f.field for f in LIBRARY.values()], dtype=np.float32)
    flat = {}
    for f in FIELDS:
        series = FeatureD.feature(instrument, f"${f}", i0, i1 - 1, "1min")
        arr = np.full(i1 - i0, np.nan, dtype=np.float32)
        if len(series):
            pos = np.asarray(series.index, dtype=np.int64) - i0
            arr[pos] = series.to_numpy(np.float32)
        flat[f] = arr
    grid = to_grid(layout.day_of_minute[i0:i1] - s, layout.slot[i0:i1], flat, len(index))
    vals = compute_factors({f: g.reshape(len(index), N_MINUTES) for f, g in grid.items()}, device="cpu")
    return pd.DataFrame(vals, index=index)


def minute_factor_frame(instrument: str, start_index: int, end_index: int) -> pd.DataFrame:
    """Library values of sessions [start_index, end_index] of ``instrument``, through the cache."""
    from qlib.data.data import Cal

    n_days = len(Cal.calendar(freq="day"))
    s, e = max(0, int(start_index)), min(int(end_index), n_days - 1)
    key = (_provider_key(), instrument)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] <= s and e <= hit[1]:
        _CACHE.move_to_end(key)
        return hit[2].loc[s:e]
    if hit is not None and hit[0] <= e + 1 and s <= hit[1] + 1:   # overlapping: compute the union once
        s, e = min(s, hit[0]), max(e, hit[1])
    frame = _compute(instrument, s, e)
    _CACHE[key] = (s, e, frame)
    while len(_CACHE) > CACHE_INSTRUMENTS:
        _CACHE.popitem(last=False)
    return frame.loc[max(0, int(start_index)) : min(int(end_index), n_days - 1)]


class MinuteFactorOp(ExpressionOps):
    """Base of the minute-factor operators: one library factor as a daily Qlib expression."""

    factor = ""

    def __init__(self):
        if self.factor not in LIBRARY:
            raise TypeError(f"{type(self).__name__}: factor {self.factor!r} is not in the minute-factor library")

    def __str__(self) -> str:
        return f"{type(self).__name__}()"

    def _load_internal(self, instrument, start_index, end_index, *args) -> pd.Series:
        freq = args[0] if args else "day"
        if str(freq).lower() not in ("day", "1d"):
            raise ValueError(f"{self}: a daily operator over 1-minute bars, evaluated at freq={freq!r} (use day)")
        return minute_factor_frame(instrument, start_index, end_index)[LIBRARY[self.factor].field]

    def get_longest_back_rolling(self) -> int:
        return 0

    def get_extended_window_size(self) -> tuple[int, int]:
        return 0, 0


def make_op(factor: MinuteFactor) -> type[MinuteFactorOp]:
    """The Qlib operator class of one library factor, named ``factor.op`` (e.g. ``MinSkew``)."""
    summary = factor.formula.splitlines()[0] if factor.formula else factor.name
    doc = f"{summary} (``{factor.field}``; generated from ``library.py``)"
    return type(factor.op, (MinuteFactorOp,), {"factor": factor.name, "__doc__": doc, "__module__": __name__,
                                               "__qualname__": factor.op})


#: One operator class per library factor, in the library's order; each is also a module attribute
#: (``qlib_ops.MinSkew``) so that Qlib's ``custom_ops`` and pickling find it by name.
MINUTE_OPS: list[type[MinuteFactorOp]] = [make_op(f) for f in LIBRARY.values()]
globals().update({op.__name__: op for op in MINUTE_OPS})
__all__ = ["MINUTE_OPS", "MinuteFactorOp", "make_op", "minute_factor_frame", *(op.__name__ for op in MINUTE_OPS)]
