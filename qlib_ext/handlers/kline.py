"""``DailyKline`` and ``WeeklyKline``: the report's K-line inputs for the GRU (Huatai 2024, p.4, figure 9).

Each is a ``DataHandlerLP`` whose features are the raw daily bars ``open high low close vwap volume``
(one row per stock-day, as Qlib loads them) and whose label is ``forward_return_label(label_horizon)``
neutralised by ``qlib_ext.processors.Neutralize`` (``industry_size`` by default, ``strict`` for the
report's figure 20, None for the raw return).  The windows themselves are built by
``qlib_ext.handlers.SequenceDataset``: 40 daily bars (``DailyKline``) or ``n_weeks`` rolling 5-session
bars ending on the sample day minus 5k sessions (``WeeklyKline``), normalised per sample (prices by
the last close, volume by its window mean), suspended days flat at the carried close with volume 0,
a mask channel, short histories masked.  Per-sample normalisation needs no fitted statistics; any
processor given with ``fit_start_time``/``fit_end_time`` arguments gets the handler's own fit window.

The data are loaded from ``window * bar_sessions`` sessions before ``start_time`` so that the first
samples have full histories.  At construction the handler checks that the dataset has every field it
reads (``$open $high $low $close $volume``, the vwap expression, and ``$industry $mcap`` for the
default neutralisation) and raises ``MissingFieldsError`` naming the missing ones and the fix.  A
dataset without ``$vwap`` (plain Qlib ``cn_data``): pass ``vwap="($high+$low+$close)/3"`` (typical
price) or ``vwap="$amount/$volume"`` (Qlib's adjusted volume makes it the adjusted vwap) to use a
stand-in, for the channel and the label alike; without industries or market caps, ``neutralize=None``
or a list of exposures the dataset has (e.g. ``["ret_10", "std_10d"]``).  A bar field or label that
loads with no finite value at all raises too.

YAML::

    dataset:
      class: SequenceDataset
      module_path: qlib_ext.handlers
      kwargs:
        handler: {class: DailyKline, module_path: qlib_ext.handlers,
                  kwargs: {instruments: csiall, start_time: 2016-01-04, end_time: 2024-03-28}}
        segments: {train: [...], valid: [...], test: [...]}
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from qlib.contrib.data.handler import check_transform_proc
from qlib.data.dataset.handler import DataHandlerLP

from ..factors import forward_return_label
from .checks import check_loaded, neutralize_kwargs, require_fields
from .sequence import FIELDS

__all__ = ["DailyKline", "WeeklyKline"]

LABEL_NAME = "LABEL0"


class DailyKline(DataHandlerLP):
    """Daily bars for 40-session K-line windows; the label is the neutralised 10-session vwap return."""

    #: sessions per bar (the dataset's window stride)
    bar_sessions = 1

    def __init__(self, instruments="csiall", start_time=None, end_time=None, fit_start_time=None,
                 fit_end_time=None, window: int = 40, label_horizon: int = 10,
                 neutralize: str | list[str] | None = "industry_size", vwap: str = "$vwap", freq: str = "day",
                 infer_processors=(), learn_processors=(), filter_pipe=None, inst_processors=None,
                 check_fields: bool = True, **kwargs):
        who = type(self).__name__
        if int(window) < 1:
            raise ValueError(f"{who}: window must be >= 1, got {window}")
        neut = neutralize_kwargs(neutralize, who)
        self.window = int(window)
        self.label_horizon = int(label_horizon)
        self.neutralize = neutralize
        self.vwap = vwap
        self.requested_start = start_time
        exprs = ["$open", "$high", "$low", "$close", vwap, "$volume"]
        label = forward_return_label(label_horizon, price=vwap)
        self._exprs = dict(zip(FIELDS, exprs, strict=True)) | {LABEL_NAME: label}
        if check_fields:
            stand_in = "vwap='($high+$low+$close)/3' (typical price, for the channel and the label)"
            require_fields(who, dict(zip(FIELDS, exprs, strict=True)), {LABEL_NAME: label}, neut,
                           feature_fix="", label_fix=stand_in, freq=freq)
        loader = {
            "class": "QlibDataLoader",
            "kwargs": {
                "config": {"feature": (exprs, list(FIELDS)), "label": ([label], [LABEL_NAME])},
                "filter_pipe": filter_pipe, "freq": freq, "inst_processors": inst_processors,
            },
        }
        learn = list(learn_processors or [])
        if neut is not None:
            learn = [{"class": "Neutralize", "module_path": "qlib_ext.processors",
                      "kwargs": {"fields_group": "label", **neut}}, *learn]
        super().__init__(
            instruments=instruments, start_time=_history_start(start_time, self.window * self.bar_sessions + 5),
            end_time=end_time, data_loader=loader,
            infer_processors=check_transform_proc(list(infer_processors or []), fit_start_time, fit_end_time),
            learn_processors=check_transform_proc(learn, fit_start_time, fit_end_time), **kwargs)

    def process_data(self, with_fit: bool = False) -> None:
        """Qlib's processing, with the raw frame checked first: a bar field or label with no finite value raises."""
        data = getattr(self, "_data", None)
        if data is not None and len(data) and ("feature", "vwap") in data.columns:
            vwap = data[("feature", "vwap")].to_numpy(dtype=np.float64)
            close = data[("feature", "close")].to_numpy(dtype=np.float64)
            has_close = np.isfinite(close)
            if has_close.any() and not np.isfinite(vwap[has_close]).any():
                raise ValueError(
                    f"{type(self).__name__}: the vwap expression {self.vwap!r} is missing or all NaN in this "
                    f"dataset ({int(has_close.sum())} stock-days with a close). Plain Qlib cn_data often lacks "
                    f"$vwap: pass vwap='($high+$low+$close)/3' (typical price) or vwap='$amount/$volume'")
        check_loaded(type(self).__name__, data, getattr(self, "_exprs", {}), self.label_horizon)
        super().process_data(with_fit=with_fit)


class WeeklyKline(DailyKline):
    """Rolling 5-session bars for ``n_weeks``-step windows (bar k ends on the sample day minus 5k sessions)."""

    bar_sessions = 5

    def __init__(self, instruments="csiall", start_time=None, end_time=None, fit_start_time=None,
                 fit_end_time=None, n_weeks: int = 30, label_horizon: int = 10,
                 neutralize: str | None = "industry_size", **kwargs):
        if not 1 <= int(n_weeks) <= 250:
            raise ValueError(f"WeeklyKline: n_weeks must be in 1..250, got {n_weeks}")
        if "window" in kwargs:
            raise TypeError("WeeklyKline: give n_weeks (weekly bars per window), not window")
        self.n_weeks = int(n_weeks)
        super().__init__(instruments=instruments, start_time=start_time, end_time=end_time,
                         fit_start_time=fit_start_time, fit_end_time=fit_end_time, window=n_weeks,
                         label_horizon=label_horizon, neutralize=neutralize, **kwargs)


def _history_start(start_time, sessions: int):
    """The session ``sessions`` trading days before ``start_time`` (the calendar's first when shorter)."""
    if start_time is None:
        return None
    from qlib.data import D

    cal = D.calendar(freq="day")
    if len(cal) == 0:
        return start_time
    i = int(np.searchsorted(cal, pd.Timestamp(start_time), side="left"))
    return cal[max(i - sessions, 0)]
