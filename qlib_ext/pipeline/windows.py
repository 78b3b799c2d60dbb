"""The main job's windows (train, valid, backtest, the in-window quarter) fitted to a dataset's calendar.

A job preset names its windows as dates (the default market's: train 2013-01-04..2015-12-31, valid
2016, backtest 2016-12-30..2024-03-28) or as ``auto``.  Explicit dates win and are only checked
(:func:`check_windows`); ``auto`` windows are fitted to the dataset's day calendar ``c[0..N-1]`` by
one rule (:func:`fit_windows`), in sessions:

1. **Look-back warm-up.**  The first ``L`` sessions only feed features: ``L`` is the longest
   feature look-back of the models in use (e.g. 155 for the weekly K-line GRU's 30 weekly bars,
   20 for the price-volume factors), at least 1 (Qlib's ``RollingGen`` needs a session before the
   first training day).  Training starts on ``c[L]``.
2. **Backtest end.**  The backtest ends on ``c[N-2]`` (Qlib's backtest reads the session after its
   end), and starts no earlier than the risk store's first date ``c[R]`` (``R`` = the style
   exposures' warm-up, :func:`risk_warmup`; the optimizer needs exposures on its first day).
3. **Lengths.**  The backtest first gets one rolling step (``step``, 244 sessions = yearly
   retraining) when the data allow it, and at least ``min_backtest``; then the validation window
   grows to ``valid_sessions`` (244, at least ``min_valid``), then the first training window to
   ``train_sessions`` (732 = 3 years, at least ``min_train``); every session left over goes to
   the backtest, which :class:`qlib_ext.models.Rolling` rolls every ``step`` sessions.
4. **Too short.**  A calendar with fewer than ``max(L + min_train + min_valid, R) + min_backtest + 1``
   sessions fails with :class:`WindowError` naming that minimum.
5. **Half given.**  With the backtest given and train/valid ``auto``, valid and train are placed
   backwards from the backtest's first day (same lengths and minimums, train not before ``c[L]``);
   with train/valid given and the backtest ``auto``, the backtest runs from the session after
   valid's end to ``c[N-2]``.
6. **In-window quarter** (table 11's 2024Q1 columns, ``window``): the preset's when it starts inside
   the backtest (a window running past the backtest's end is clipped there), else the backtest's last calendar quarter with at least 20 sessions in it (the
   whole backtest when none has).

Pure functions over a ``DatetimeIndex``; no Qlib init.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

__all__ = ["AUTO", "FitRule", "WindowError", "Windows", "check_windows", "fit_windows", "is_auto",
           "risk_warmup", "span_text"]

#: the value of a window that is fitted to the data
AUTO = "auto"
#: sessions of the shortest in-window quarter
MIN_QUARTER_SESSIONS = 20

Span = tuple[pd.Timestamp, pd.Timestamp]


class WindowError(ValueError):
    """The dataset's calendar is too short for the windows; the message names the minimum span."""


@dataclass(frozen=True)
class FitRule:
    """Lengths of the fitted windows, in sessions (module docstring, rule 3); YAML: ``signal.auto``."""

    train_sessions: int = 732
    valid_sessions: int = 244
    min_train: int = 244
    min_valid: int = 61
    min_backtest: int = 61

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> FitRule:
        """A rule from a ``signal.auto`` mapping; unknown keys are refused, naming the known ones."""
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"signal.auto: unknown keys {unknown}; known {sorted(known)}")
        rule = cls(**{k: int(v) for k, v in cfg.items()})
        if min(rule.min_train, rule.min_valid, rule.min_backtest) < 1:
            raise ValueError(f"signal.auto: minimum lengths must be >= 1 session, got {rule}")
        return replace(rule, train_sessions=max(rule.train_sessions, rule.min_train),
                       valid_sessions=max(rule.valid_sessions, rule.min_valid))


@dataclass(frozen=True)
class Windows:
    """Resolved windows of a job: segments as session dates, the rolling step and where they came from."""

    train: Span
    valid: Span
    backtest: Span
    window: Span
    step: int
    lookback: int
    fitted: tuple[str, ...] = ()          # which of train/valid/backtest/window were fitted (else given)

    def as_job(self) -> dict:
        """The job keys these windows set: ``signal.train/valid/step``, ``backtest``, ``window`` (ISO dates)."""
        return {"signal": {"train": _iso(self.train), "valid": _iso(self.valid), "step": self.step},
                "backtest": _iso(self.backtest), "window": _iso(self.window)}

    def rolls(self, calendar: pd.DatetimeIndex) -> int:
        """How many yearly (``step``) models the backtest needs."""
        n = _sessions(calendar, self.backtest)
        return max(1, -(-n // self.step))

    def lines(self, calendar: pd.DatetimeIndex) -> list[str]:
        """One line per window: dates, sessions, and whether it was fitted to the data or given."""
        def row(name: str, span: Span, extra: str = "") -> str:
            how = "fitted" if name in self.fitted else "given"
            return (f"  {name:<9}{span_text(span)}  {_sessions(calendar, span):>4} sessions  ({how}){extra}")
        cal = (f"  calendar {calendar[0].date()} .. {calendar[-1].date()}  {len(calendar):>4} sessions; "
               f"look-back {self.lookback} sessions: first training day "
               f"{calendar[min(self.lookback, len(calendar) - 1)].date()}")
        return [cal, row("train", self.train), row("valid", self.valid),
                row("backtest", self.backtest, f", {self.rolls(calendar)} model(s) rolled every {self.step}"),
                row("window", self.window)]


def is_auto(value: object) -> bool:
    """Whether a window value asks to be fitted (``auto``, or absent)."""
    return value is None or (isinstance(value, str) and value.strip().lower() == AUTO)


def span_text(span: Sequence) -> str:
    """``2021-01-04 .. 2021-12-31``."""
    return f"{pd.Timestamp(span[0]).date()} .. {pd.Timestamp(span[1]).date()}"


def risk_warmup(config: object | None = None) -> int:
    """Sessions before the risk store's first date: the longest minimum history of a style descriptor.

    Momentum (RSTR) needs ``rstr_min_obs`` returns lagged ``rstr_lag`` sessions, beta and residual
    volatility ``beta_min_obs`` / ``dastd_min_obs``, CMRA ``cmra_min_months`` months
    (:class:`qlib_ext.risk.config.RiskConfig`).
    """
    from ..risk.config import RiskConfig

    c = config if config is not None else RiskConfig()
    return int(max(c.rstr_min_obs + c.rstr_lag, c.beta_min_obs, c.dastd_min_obs,
                   c.cmra_min_months * c.cmra_month_days))


def fit_windows(calendar: pd.DatetimeIndex, lookback: int, *, step: int = 244, rule: FitRule | None = None,
                risk_start: int = 0, train: Sequence | None = None, valid: Sequence | None = None,
                backtest: Sequence | None = None, window: Sequence | None = None) -> Windows:
    """Windows by the module's rule; ``train``/``valid`` (both) or ``backtest`` given are kept as they are.

    ``lookback``: L in sessions; ``risk_start``: R, the calendar index of the risk store's first date.
    Raises :class:`WindowError` naming the minimum span when the calendar is too short.
    """
    rule = rule or FitRule()
    cal = pd.DatetimeIndex(calendar)
    n, lb = len(cal), max(1, int(lookback))
    if step < 1:
        raise ValueError(f"windows: the rolling step must be >= 1 session, got {step}")
    if (train is None) != (valid is None):
        raise ValueError("windows: give both train and valid, or neither (auto)")
    last = n - 2                                         # the backtest's last session
    need = max(lb + rule.min_train + rule.min_valid, risk_start) + rule.min_backtest + 1
    fitted: list[str] = []
    if train is not None and backtest is not None:
        tr, va, bt = _idx(cal, train), _idx(cal, valid), _idx(cal, backtest)
    elif train is not None:                              # backtest auto: after valid to the end
        tr, va = _idx(cal, train), _idx(cal, valid)
        bt = (va[1] + 1, last)
        if bt[1] - bt[0] + 1 < rule.min_backtest:
            raise WindowError(f"windows: the backtest after valid (ends {cal[min(va[1], n - 1)].date()}) would have "
                              f"{max(0, bt[1] - bt[0] + 1)} sessions, fewer than the minimum {rule.min_backtest}; "
                              f"end valid earlier or set train/valid: auto")
        fitted.append("backtest")
    else:
        if n < need:
            raise WindowError(_too_short(cal, need, lb, rule, risk_start))
        if backtest is not None:                         # train/valid auto, before the given backtest
            bt = _idx(cal, backtest)
            room = bt[0] - lb                            # sessions for train + valid before the backtest
            if room < rule.min_train + rule.min_valid:
                first = cal[min(lb + rule.min_train + rule.min_valid, n - 1)].date()
                raise WindowError(f"windows: the backtest starts {cal[bt[0]].date()}, leaving {max(room, 0)} sessions "
                                  f"after the {lb}-session look-back (from {cal[0].date()}); train + valid need at "
                                  f"least {rule.min_train} + {rule.min_valid}: start the backtest on or after {first}")
            n_valid = min(rule.valid_sessions, room - rule.min_train)
            n_train = min(rule.train_sessions, room - n_valid)
        else:
            avail = last - lb + 1                        # sessions for train + valid + backtest
            n_bt = min(step, avail - rule.min_train - rule.min_valid)
            rest = avail - n_bt
            n_valid = min(rule.valid_sessions, rest - rule.min_train)
            n_train = min(rule.train_sessions, rest - n_valid)
            start_bt = max(lb + n_train + n_valid, risk_start)
            bt = (start_bt, last)
            fitted.append("backtest")
        va = (bt[0] - n_valid, bt[0] - 1)
        tr = (va[0] - n_train, va[0] - 1)
        fitted += ["train", "valid"]
    bt_span = (cal[bt[0]], cal[bt[1]])
    if window is not None and _inside(window, bt_span, cal):
        win = (pd.Timestamp(window[0]), pd.Timestamp(window[1]))
    else:
        win = last_quarter(cal, bt_span)
        fitted.append("window")
    return Windows(train=(cal[tr[0]], cal[tr[1]]), valid=(cal[va[0]], cal[va[1]]), backtest=bt_span, window=win,
                   step=int(step), lookback=lb, fitted=tuple(fitted))


def last_quarter(calendar: pd.DatetimeIndex, span: Span) -> Span:
    """The last calendar quarter with at least 20 sessions inside ``span`` (clipped to it), else ``span``."""
    cal = pd.DatetimeIndex(calendar)
    days = cal[(cal >= span[0]) & (cal <= span[1])]
    if not len(days):
        return span
    q = days.to_period("Q")
    for period in q.unique()[::-1]:
        inside = days[q == period]
        if len(inside) >= MIN_QUARTER_SESSIONS:
            return inside[0], inside[-1]
    return days[0], days[-1]


def check_windows(calendar: pd.DatetimeIndex, train: Sequence, valid: Sequence, backtest: Sequence,
                  window: Sequence | None, lookback: int, why: str = "", risk_start: pd.Timestamp | None = None,
                  label_gap: int = 12, min_sessions: int = 20) -> list[tuple[str, str]]:
    """``(what, fix)`` for every way the given windows do not fit the calendar (empty when they do).

    Checks: each window inside the calendar and in order (train < valid < backtest); training starts
    after the first ``lookback`` sessions (``why`` says whose look-back); the backtest ends before the
    last session and starts on or after ``risk_start``; valid keeps ``min_sessions`` sessions after
    the label gap (``label_gap`` = label horizon + 2, cut by ``Rolling``); the in-window quarter lies
    inside the backtest.
    """
    cal = pd.DatetimeIndex(calendar)
    lb = max(1, int(lookback))
    out: list[tuple[str, str]] = []
    first, lastday = cal[0].date(), cal[-1].date()
    auto = "or set the windows to `auto` (qlib-ext run --preset real fits them to the data)"
    spans = {"train": _ts(train), "valid": _ts(valid), "backtest": _ts(backtest)}
    bad: set[str] = set()
    for name, (s, e) in spans.items():
        if s > e:
            out.append((f"{name} {span_text((s, e))} ends before it starts", f"give {name} as [start, end]"))
            bad.add(name)
        elif e < cal[0] or s > cal[-1]:
            out.append((f"{name} {span_text((s, e))} lies outside the dataset's calendar {first} .. {lastday}",
                        f"give {name} dates inside {first} .. {lastday}, {auto}"))
            bad.add(name)
    for a, b in (("train", "valid"), ("valid", "backtest")):
        if not {a, b} & bad and spans[a][1] >= spans[b][0]:
            out.append((f"{a} ({span_text(spans[a])}) does not end before {b} starts ({spans[b][0].date()})",
                        f"end {a} before {spans[b][0].date()}"))
    start_ok = cal[min(lb, len(cal) - 1)]
    if "train" not in bad and spans["train"][0] < start_ok:
        who = f" ({why})" if why else ""
        out.append((f"train starts {spans['train'][0].date()}, but the dataset's first session is {first} and the "
                    f"features look back {lb} sessions{who}: the first usable training day is {start_ok.date()}",
                    f"start train on or after {start_ok.date()}, {auto}"))
    bt = spans["backtest"]
    if "backtest" not in bad:
        if len(cal) >= 2 and bt[1] > cal[-2]:
            out.append((f"backtest ends {bt[1].date()}, but Qlib's backtest reads the session after its end and "
                        f"the dataset's last session is {lastday}", f"end the backtest on or before {cal[-2].date()}"))
        if risk_start is not None and bt[0] < risk_start:
            out.append((f"backtest starts {bt[0].date()}, before the risk store's first date "
                        f"{pd.Timestamp(risk_start).date()} (the dataset starts {first}; style exposures need "
                        f"that much history)", f"start the backtest on or after {pd.Timestamp(risk_start).date()}, {auto}"))
        elif bt[0] < cal[0]:
            out.append((f"backtest starts {bt[0].date()}, before the dataset's first session {first}",
                        f"start the backtest on or after {first}, {auto}"))
    n_valid = _sessions(cal, spans["valid"])
    if "valid" not in bad and n_valid - label_gap < min_sessions:
        out.append((f"valid {span_text(spans['valid'])} has {n_valid} sessions; after the {label_gap}-session label "
                    f"gap fewer than {min_sessions} remain for early stopping",
                    f"give valid at least {label_gap + min_sessions} sessions"))
    if window is not None and "backtest" not in bad and not _inside(window, bt, cal):
        out.append((f"window {span_text(_ts(window))} (table 11's in-window columns) has no session inside the "
                    f"backtest {span_text(bt)}", "give a window inside the backtest, or `window: auto`"))
    return out


def _too_short(cal: pd.DatetimeIndex, need: int, lb: int, rule: FitRule, risk_start: int) -> str:
    years = need / 244
    parts = (f"look-back {lb} + train {rule.min_train} + valid {rule.min_valid} + backtest {rule.min_backtest} "
             f"+ 1 session after the backtest")
    if risk_start > lb + rule.min_train + rule.min_valid:
        parts += f" (the risk store starts after {risk_start} sessions)"
    return (f"windows: the dataset's calendar {cal[0].date()} .. {cal[-1].date()} has {len(cal)} sessions; the job "
            f"needs at least {need} (about {years:.1f} years: {parts}); import a longer history, or shorten "
            f"signal.auto (min_train, min_valid, min_backtest)")


def _ts(span: Sequence) -> Span:
    return pd.Timestamp(span[0]), pd.Timestamp(span[1])


def _idx(cal: pd.DatetimeIndex, span: Sequence) -> tuple[int, int]:
    """Calendar indices of the first session on/after start and the last on/before end (clipped)."""
    s, e = _ts(span)
    i0 = int(np.searchsorted(cal.values, s.to_datetime64(), "left"))
    i1 = int(np.searchsorted(cal.values, e.to_datetime64(), "right")) - 1
    return min(i0, len(cal) - 1), max(i1, 0)


def _sessions(cal: pd.DatetimeIndex, span: Sequence) -> int:
    s, e = _ts(span)
    return int(((cal >= s) & (cal <= e)).sum())


def _inside(span: Sequence, outer: Sequence, cal: pd.DatetimeIndex) -> bool:
    """Whether ``span``'s first session lies inside ``outer`` (it may run past ``outer``'s end: clipped there)."""
    s, e = _ts(span)
    days = cal[(cal >= s) & (cal <= e)]
    return len(days) > 0 and _ts(outer)[0] <= days[0] <= _ts(outer)[1]


def _iso(span: Span) -> list[str]:
    return [str(pd.Timestamp(span[0]).date()), str(pd.Timestamp(span[1]).date())]
