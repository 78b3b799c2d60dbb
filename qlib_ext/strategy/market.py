"""The strategy's view of the market on a signal day: universe, benchmark weights, industry, styles.

* :class:`DayFields` reads day fields (``w_<benchmark>``, ``industry``) of a local Qlib dataset
  straight from its ``.bin`` files for the backtest window, once (``D.features`` over 1,500
  instruments costs ~25 s per call on 2 cores whatever the window; the bins take well under 1 s);
* :func:`members_on` gives the instruments of an instrument file (e.g. ``csiall``) on a date;
* :class:`StyleExposures` serves the risk store's exposures (``qlib_ext.risk``) by date, loading a year
  at a time.

Everything is read as known at the close of the signal day (the day before the trade).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.panel import read_instruments, read_panel
from ..risk import load_covariance, load_exposures, load_meta, load_specific_risk, store_path


def members_on(spans: pd.DataFrame, date: pd.Timestamp) -> pd.Index:
    """Instruments whose span (columns instrument, start, end) contains ``date``."""
    ts = pd.Timestamp(date)
    inside = (spans["start"] <= ts) & (spans["end"] >= ts)
    return pd.Index(spans.loc[inside, "instrument"].unique(), name="instrument")


class DayFields:
    """Day fields of a dataset over ``[start, end]`` as (date x instrument) panels; ``on(date)`` -> a row frame.

    Fields in ``ffill`` carry their last value over days without one (default ``industry``: a
    suspended or delisted holding keeps its industry, so it stays in its industry's band instead of
    an "unknown" bucket of its own).
    """

    def __init__(self, root: str | Path, fields: Sequence[str], universe: str = "csiall",
                 start: Any = None, end: Any = None, ffill: Sequence[str] = ("industry",)) -> None:
        self.root = Path(root)
        self.universe = universe
        self.spans = read_instruments(self.root, universe)
        instruments = sorted(self.spans["instrument"].unique())
        self.panels: dict[str, pd.DataFrame] = {}
        for field in fields:
            panel = read_panel(self.root, field, instruments)
            if panel.isna().all().all():
                raise ValueError(f"{self.root}: field {field!r} has no data for the instruments of {universe!r} "
                                 f"(missing features/*/{field}.day.bin?)")
            self.panels[field] = (panel.ffill() if field in ffill else panel).loc[start:end]

    def on(self, date: pd.Timestamp) -> pd.DataFrame:
        """instrument x field values on ``date`` (KeyError naming the date when outside the window)."""
        ts = pd.Timestamp(date)
        first = next(iter(self.panels.values()))
        if ts not in first.index:
            raise KeyError(f"{ts.date()} not in the dataset window {first.index[0].date()}..{first.index[-1].date()} "
                           f"of {self.root}")
        return pd.DataFrame({f: p.loc[ts] for f, p in self.panels.items()})

    def members(self, date: pd.Timestamp) -> pd.Index:
        """Members of the universe instrument file on ``date``."""
        return members_on(self.spans, date)


class StyleExposures:
    """Exposures of the risk store on (or shortly before) a date: instrument x styles.

    ``dummies=True`` adds ``country`` and ``ind_<code>`` columns (the risk model's design matrix),
    needed for the tracking-risk term.  The last store date on or before the asked date is used, if
    it is at most ``max_lag_days`` calendar days old; otherwise KeyError names the store's range.
    An asked-for instrument without a row that day (a suspended holding: the store only covers
    stocks with a market value) keeps its last row of the previous ``stale_days`` calendar days, as
    Barra carries a suspended stock's exposures; without one its exposures are NaN (the optimizer
    input then sets them to 0 and says so).
    """

    def __init__(self, store: str | Path, dummies: bool = False, max_lag_days: int = 10,
                 stale_days: int = 180, chunk_days: int = 366) -> None:
        self.store = store_path(store)
        self.meta = load_meta(self.store)
        self.styles = list(self.meta["styles"])
        self.dummies, self.max_lag = bool(dummies), pd.Timedelta(days=max_lag_days)
        self.stale, self.chunk = pd.Timedelta(days=stale_days), pd.Timedelta(days=chunk_days)
        self._frame: pd.DataFrame | None = None
        self._range: tuple[pd.Timestamp, pd.Timestamp] | None = None

    def _load(self, ts: pd.Timestamp) -> None:
        lo, hi = ts - max(self.stale, self.max_lag), ts + self.chunk
        df = load_exposures(self.store, lo, hi, industry_dummies=self.dummies)
        self._frame = df if self.dummies else df.drop(columns="industry")
        self._range = (lo, hi)

    def on(self, date: pd.Timestamp, instruments: pd.Index | None = None) -> tuple[pd.Timestamp, pd.DataFrame, int]:
        """(store date used, exposures indexed by instrument, number of instruments given stale rows)."""
        ts = pd.Timestamp(date)
        if self._range is None or ts - max(self.stale, self.max_lag) < self._range[0] or ts > self._range[1]:
            self._load(ts)
        dates = self._frame.index.get_level_values("datetime")
        ok = (dates <= ts) & (dates >= ts - self.max_lag)
        if not ok.any():
            raise KeyError(f"no exposures within {self.max_lag.days} days before {ts.date()} in the risk store "
                           f"{self.store} (it covers {self.meta['start']}..{self.meta['end']})")
        day = dates[ok].max()
        frame = self._frame.xs(day, level="datetime")
        missing = pd.Index([]) if instruments is None else pd.Index(instruments).difference(frame.index)
        if missing.empty:
            return day, frame, 0
        names = self._frame.index.get_level_values("instrument")
        old = self._frame[names.isin(missing) & (dates < day) & (dates >= ts - self.stale)]
        old = old.groupby(level="instrument").tail(1).droplevel("datetime")
        return day, pd.concat([frame, old]), len(old)

    def risk(self, date: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
        """(factor covariance, specific variance by instrument) on the last store date <= ``date`` (daily units)."""
        cov = load_covariance(self.store, date)
        spec = load_specific_risk(self.store, start=pd.Timestamp(date) - self.max_lag, end=date)
        last = spec.index.get_level_values("datetime").max()
        return cov, spec.xs(last, level="datetime").astype(np.float64) ** 2  # float32 would underflow tiny risks to 0


def open_store(risk_store: str | Path | None, root: str | Path, **kwargs: Any) -> StyleExposures:
    """The risk store given (or ``<root>/risk``), with an error saying how to build it when absent."""
    from ..risk.store import default_store, missing_store

    path = default_store(root, risk_store)
    try:
        return StyleExposures(path, **kwargs)
    except FileNotFoundError as exc:
        raise missing_store(path, root) from exc
