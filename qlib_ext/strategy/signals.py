"""The strategy's signal: read, normalised and checked where it enters (SPEC section 10, issues 12 and 19).

Accepted shapes (:data:`SIGNAL_SHAPE`): a Qlib ``pred.pkl`` as a Series/DataFrame on (datetime,
instrument), a path to one, a Qlib ``Signal``, a Qlib signal config (dict / ``file://``), or a
``(model, dataset)`` pair.  ``None`` without Qlib's deprecated ``model=``/``dataset=`` keywords is our
error listing these.

Rules for a pandas signal, applied when the strategy is built:

* codes and level order are normalised: every code form of :mod:`qlib_ext.data.codes` (``sh600000``,
  ``600000.SH``, ``600000.XSHG``, ``600000``) -> ``SH600000``; other codes are kept upper-cased;
* **tz-aware datetimes are converted, with a warning**: to the exchange's wall time
  (:data:`EXCHANGE_TZ`, Asia/Shanghai), the zone dropped, and a daily signal (one time of day for every
  row) floored to its date, so ``2024-01-02 00:00+08:00`` and ``2024-01-01 16:00 UTC`` both become
  2024-01-02.  Converted rather than refused because the conversion is unambiguous for a market
  with one time zone; the conversion is noted on every rebalance;
* **non-finite scores**: ``+-inf`` is an error naming the first (date, instrument) rows, unless the
  strategy is given ``nonfinite="drop"``: then the rows are dropped at each rebalance and counted
  (``n_signal_inf`` in the diagnostics, a note, a warning at the end).  NaN is a *missing* score
  (pandas' ``stack`` keeps NaN rows, Qlib's models emit NaN where they have no input): it counts as
  no signal for that stock (``n_signal_nan``), as an absent row does;
* an empty signal, or one whose every score is non-finite, is an error.

:func:`span_gap` is the check made once the backtest's range is known (``reset``): the signal's first
and last dates with a finite score must cover the signal days of the backtest (see its docstring).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.codes import qlib_codes

SIGNAL_SHAPE = ("a Qlib pred.pkl: a DataFrame (column 'score', or one column) or a Series of numbers on a "
                "MultiIndex (datetime, instrument), e.g. (2024-01-02, SH600000)")
ACCEPTED = (f"{SIGNAL_SHAPE}, a pred.pkl path, a Qlib Signal, a Qlib signal config (dict or 'file://...'), "
            "or a (model, dataset) pair")
#: The exchange's time zone: tz-aware signal datetimes are converted to its wall time.
EXCHANGE_TZ = "Asia/Shanghai"
#: Values of the strategy's ``nonfinite`` keyword.
NONFINITE = ("raise", "drop")


def read_signal_file(path: Path) -> Any:
    """The pickled prediction at ``path`` (errors name the file and the shape expected)."""
    if not path.is_file():
        raise FileNotFoundError(f"signal file {path} not found (give a Qlib pred.pkl or <PRED> in PortAnaRecord)")
    try:
        return pd.read_pickle(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: say what the file should be
        raise ValueError(f"signal file {path}: cannot read it as a pickle ({type(exc).__name__}: {exc}); "
                         f"expected {SIGNAL_SHAPE}") from exc


def load_signal(signal: Any, nonfinite: str = "raise", notes: list | None = None,
                model_and_dataset: bool = False) -> Any:
    """A file path (str or Path, not Qlib's ``file://`` or a placeholder) becomes the pickled prediction;
    a pandas signal is normalised and checked (:func:`normalise_signal`, :func:`check_finite`); Qlib's
    other forms pass through.  ``model_and_dataset``: Qlib's deprecated ``model=``/``dataset=`` were given."""
    if signal is None:
        if model_and_dataset:
            return None
        raise ValueError(f"signal: none given; expected {ACCEPTED} (in a qrun YAML: signal: <PRED> inside "
                         "PortAnaRecord's config)")
    if isinstance(signal, Path) or (isinstance(signal, str) and not signal.startswith("file://")
                                    and not signal.startswith("<")):
        path = Path(signal).expanduser()
        return check_finite(normalise_signal(read_signal_file(path), str(path), notes), str(path), nonfinite)
    if isinstance(signal, str) and signal.startswith("<"):
        raise ValueError(f"signal {signal!r} is an unfilled placeholder: use it inside PortAnaRecord's config "
                         "(after SignalRecord), or give a pred.pkl path")
    if isinstance(signal, (pd.Series, pd.DataFrame)):
        return check_finite(normalise_signal(signal, "signal", notes), "signal", nonfinite)
    from qlib.backtest.signal import Signal

    if isinstance(signal, (Signal, str, dict)) or _model_and_dataset(signal):
        return signal                                   # Qlib's other signal forms, created by Qlib
    raise ValueError(f"signal: got a {type(signal).__name__}; expected {ACCEPTED}")


def _model_and_dataset(obj: Any) -> bool:
    from qlib.data.dataset import Dataset
    from qlib.model.base import BaseModel

    return isinstance(obj, (tuple, list)) and len(obj) == 2 and isinstance(obj[0], BaseModel) \
        and isinstance(obj[1], Dataset)


def _naive_dates(dates: pd.DatetimeIndex, name: str, notes: list | None) -> pd.DatetimeIndex:
    """tz-aware -> the exchange's wall time without a zone (a daily signal floored to its date), with a warning."""
    if dates.tz is None:
        return dates
    local = dates.tz_convert(EXCHANGE_TZ).tz_localize(None)
    daily = len(local) > 0 and (local - local.normalize()).nunique() == 1
    if daily:
        local = local.normalize()
    msg = (f"{name}: datetimes were tz-aware ({dates.tz}); converted to {EXCHANGE_TZ} "
           f"{'dates' if daily else 'wall time'} without a zone")
    warnings.warn(msg + f" (e.g. {dates[0]} -> {local[0]})", UserWarning, stacklevel=3)
    if notes is not None:
        notes.append(msg)
    return local


def normalise_signal(signal: Any, name: str = "signal", notes: list | None = None) -> pd.Series | pd.DataFrame:
    """The signal as a float frame on (datetime, instrument) with Qlib's upper-case codes.

    Unambiguous fixes are made (level order, codes by :func:`qlib_ext.data.codes.qlib_codes`:
    ``sh600000`` / ``600000.SH`` -> ``SH600000``, tz-aware dates converted as in the module docstring, noted in
    ``notes``); anything else that is not :data:`SIGNAL_SHAPE` is a ValueError saying so.  Duplicate
    (datetime, instrument) rows after the fix are an error naming one.
    """
    if not isinstance(signal, (pd.Series, pd.DataFrame)):
        raise ValueError(f"{name}: got a {type(signal).__name__}; expected {SIGNAL_SHAPE}")
    if isinstance(signal, pd.DataFrame):
        if "score" in signal.columns:
            signal = signal[["score"]]
        elif signal.shape[1] != 1:
            raise ValueError(f"{name}: {signal.shape[1]} columns {list(signal.columns)[:5]} and none is 'score'; "
                             f"expected {SIGNAL_SHAPE}")
    idx = signal.index
    if not isinstance(idx, pd.MultiIndex) or idx.nlevels != 2:
        raise ValueError(f"{name}: index {type(idx).__name__} with {idx.nlevels} level(s) {list(idx.names)}; "
                         f"expected {SIGNAL_SHAPE}")
    if len(signal) == 0:
        raise ValueError(f"{name}: no rows; expected {SIGNAL_SHAPE}")
    kinds = [pd.api.types.is_datetime64_any_dtype(idx.levels[k]) for k in range(2)]
    if kinds.count(True) != 1:
        raise ValueError(f"{name}: index levels {list(idx.names)} have {kinds.count(True)} datetime levels "
                         f"(dtypes {[str(level.dtype) for level in idx.levels]}); expected {SIGNAL_SHAPE}")
    t = kinds.index(True)
    dates, codes = idx.get_level_values(t), idx.get_level_values(1 - t).astype(str)
    mapped = qlib_codes(codes, fold_aliases=False)           # None: not an A-share code, kept as written
    upper = pd.Index(np.where(pd.isna(mapped), codes.str.strip().str.upper(), mapped).astype(str))
    values = signal.apply(pd.to_numeric, errors="coerce") if isinstance(signal, pd.DataFrame) \
        else pd.to_numeric(signal, errors="coerce")
    bad = values.isna().to_numpy().ravel() & signal.notna().to_numpy().ravel()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: value {np.ravel(signal.to_numpy())[i]!r} on ({dates[i]}, {codes[i]}) is not a "
                         f"number; expected {SIGNAL_SHAPE}")
    out = values.astype(float)
    out.index = pd.MultiIndex.from_arrays([_naive_dates(pd.DatetimeIndex(dates), name, notes), upper],
                                          names=["datetime", "instrument"])
    dup = out.index.duplicated()
    if dup.any():
        d, c = out.index[dup][0]
        raise ValueError(f"{name}: two rows for ({d.date()}, {c}) once codes are upper-cased; keep one")
    return out.sort_index()


def _rows(index: pd.MultiIndex, mask: np.ndarray, values: np.ndarray, k: int = 3) -> list:
    return [(str(pd.Timestamp(d).date()), c, float(v)) for (d, c), v in zip(index[mask][:k], values[mask][:k])]


def check_finite(signal: pd.Series | pd.DataFrame, name: str = "signal", nonfinite: str = "raise"
                 ) -> pd.Series | pd.DataFrame:
    """``signal`` unchanged, or ValueError: +-inf scores unless ``nonfinite="drop"``; no finite score at all."""
    if nonfinite not in NONFINITE:
        raise ValueError(f"nonfinite must be one of {NONFINITE}, got {nonfinite!r}")
    v = np.asarray(signal.to_numpy(dtype=float)).ravel()
    inf = np.isinf(v)
    if inf.any() and nonfinite == "raise":
        raise ValueError(f"{name}: {int(inf.sum())} infinite scores, first {_rows(signal.index, inf, v)} "
                         "(date, instrument, score); a score must be a finite number: fix the prediction, or "
                         "pass nonfinite='drop' to drop them (counted in the run's diagnostics)")
    if not np.isfinite(v).any():
        raise ValueError(f"{name}: none of its {len(v)} scores is a finite number (e.g. "
                         f"{_rows(signal.index, ~np.isfinite(v), v)}); nothing to trade on")
    return signal


def finite_dates(signal: pd.Series | pd.DataFrame) -> pd.DatetimeIndex:
    """Dates with at least one finite score."""
    v = np.asarray(signal.to_numpy(dtype=float)).ravel()
    return pd.DatetimeIndex(signal.index.get_level_values("datetime")[np.isfinite(v)]).unique().sort_values()


def day_scores(score: Any, signal_day: pd.Timestamp, nonfinite: str = "raise") -> tuple[pd.Series, dict]:
    """One signal day's finite scores by instrument and the counts {n_signal_nan, n_signal_inf} of what was
    left out; +-inf is a ValueError naming the instruments and the day unless ``nonfinite="drop"``."""
    if isinstance(score, pd.DataFrame):
        score = score.iloc[:, 0]
    if not isinstance(score, pd.Series):
        raise TypeError(f"signal: expected a pandas Series/DataFrame by instrument, got {type(score).__name__}")
    s = score.astype(float)
    v = s.to_numpy()
    inf = np.isinf(v)
    if inf.any() and nonfinite == "raise":
        raise ValueError(f"signal on {pd.Timestamp(signal_day).date()}: infinite scores for "
                         f"{int(inf.sum())} stocks, e.g. {list(zip(s.index[inf][:5], v[inf][:5]))}; fix the "
                         "prediction, or pass nonfinite='drop' to drop them (counted in the run's diagnostics)")
    counts = {"n_signal_nan": int(np.isnan(v).sum()), "n_signal_inf": int(inf.sum())}
    s = s[np.isfinite(v)]
    return s[~s.index.duplicated(keep="last")], counts


def span_gap(have: pd.DatetimeIndex, needed: pd.DatetimeIndex, lead_allowed: int) -> tuple[pd.DatetimeIndex, str]:
    """Signal days of the backtest (``needed``, sessions) outside the signal's span ``[have[0], have[-1]]``,
    and a description; the first ``lead_allowed`` sessions may precede the signal (Qlib's usual setup:
    the test segment and the backtest start on the same day, so the first trade day has no signal)."""
    if len(needed) == 0:
        return needed, ""
    if len(have) == 0:
        return needed, "the signal has no finite score"
    before, after = needed[needed < have[0]], needed[needed > have[-1]]
    parts = []
    if len(before) > lead_allowed:
        parts.append(f"no signal before {have[0].date()} ({len(before)} sessions, {before[0].date()}.."
                     f"{before[-1].date()})")
    if len(after):
        parts.append(f"no signal after {have[-1].date()} ({len(after)} sessions, {after[0].date()}.."
                     f"{after[-1].date()})")
    gap = (before if len(before) > lead_allowed else before[:0]).append(after)
    return gap, "; ".join(parts)
