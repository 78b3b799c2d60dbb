"""The main job's preflight: everything every stage will need, checked from the job config and the dataset.

:func:`make_plan` reads the job dict (``configs/pipeline/*.yaml`` after overrides) and the dataset's
files (no Qlib init, no data load: calendars, instrument files, bin headers and a sample of values),
in seconds, and returns a :class:`Plan`:

* ``problems``: every reason the job cannot start, all at once, each naming the stage, the field or
  instrument, the dates and the fix (:class:`Problem`).  A job with problems must not start.
* ``windows``: train / valid / backtest / the in-window quarter, given by the preset and checked, or
  fitted to the dataset's calendar where the preset says ``auto`` (:mod:`.windows`).
* ``decisions``: what this run could not do and how it goes on -- an ensemble member the data cannot
  feed left out before training, a recorder section drawn without an optional input (CSI All Share,
  futures prices).  The headline and the report list them.
* ``job``: the job dict ready to run: windows as dates, ``benchmarks: auto`` resolved,
  ``signal.exclude`` naming the members left out, ``minute_factors`` off when no member reads them.

What is checked, by stage:

``windows``   each window inside the calendar, in order, training after the longest feature look-back
              of the models in use (and never on the first session: Qlib's ``RollingGen`` asserts),
              the backtest ending before the last session and starting on the risk store's first date
              or later, the in-window quarter inside the backtest.
``signal``    the fields each model's handler, label and ``Neutralize`` read (:mod:`qlib_ext.data.requirements`,
              the one table of ``data check --require``), present and finite on at least
              :data:`MIN_FINITE` of the traded stock-days of a stock sample over train .. backtest; for the
              minute model, 1-minute bars (or ``mf_*`` fields) on at least :data:`MIN_MINUTE_COVERAGE` of
              the universe's stock-sessions.  A member below it is left out of the ensemble (a decision);
              the minute model alone is a problem.
``risk``      the risk build's fields (unless a store exists).
``backtest_<b>``  the strategy's fields; the benchmark's index instrument with a close on every backtest
              session; its weight field summing to more than 0 on every backtest session.
``records``   the fields the analysis recorders read; optional inputs are decisions.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.bin_io import has_dataset
from ..data.requirements import ANY_WEIGHT, IMPORT_HINT, MINUTE_BARS, USES, fix_for, missing_fields
from ..schema import ALL_SHARE, BENCHMARKS, INDEX_INSTRUMENTS, benchmark
from .signal import Member, MemberNeeds, handler_needs, signal_members
from .windows import (
    AUTO,
    FitRule,
    WindowError,
    Windows,
    check_windows,
    fit_windows,
    is_auto,
    risk_warmup,
    span_text,
)

__all__ = ["MIN_FINITE", "MIN_MINUTE_COVERAGE", "Plan", "Problem", "make_plan", "minute_coverage"]

#: share of the traded stock-days (sampled) on which a field a stage reads must be finite
MIN_FINITE = 0.8
#: share of the universe's stock-sessions (train .. backtest) that the minute model needs minute data for
MIN_MINUTE_COVERAGE = 0.5
#: stocks sampled (evenly over the sorted universe) for the finiteness check
SAMPLE_STOCKS = 300
#: label gap cut by ``Rolling`` between train/valid and each test window: label horizon + 2 sessions
LABEL_GAP_EXTRA = 2


@dataclass(frozen=True)
class Problem:
    """One reason the job cannot start: the stage, what is wrong (field / instrument / dates) and the fix."""

    stage: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.stage}] {self.what}\n      fix: {self.fix}"


@dataclass(frozen=True)
class Plan:
    """The preflight's verdict (module docstring); ``ok`` when there is no problem."""

    job: dict
    problems: list[Problem] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    windows: Windows | None = None
    data: str = ""
    dataset: str = ""
    calendar: pd.DatetimeIndex | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """The preflight as text: the dataset, the resolved windows, then every problem and decision."""
        head = (f"preflight of {self.data}: {'OK' if self.ok else 'FAILED'} ({len(self.problems)} problem(s), "
                f"{len(self.decisions)} decision(s))")
        lines = [head, f"  data     {self.dataset}"]
        if self.windows is not None and self.calendar is not None:
            lines += ["windows:"] + self.windows.lines(self.calendar)
        elif self.job.get("signal"):
            sig = self.job["signal"]
            lines += ["windows (as given, not usable):"] + [
                f"  {k:<9}{_show(v)}" for k, v in (("train", sig.get("train")), ("valid", sig.get("valid")),
                                                    ("backtest", self.job.get("backtest")),
                                                    ("window", self.job.get("window")))]
        if self.job.get("benchmarks") is not None:
            lines.append(f"benchmarks: {', '.join(map(str, self.job.get('benchmarks') or [])) or '-'}")
        if self.problems:
            lines.append("problems (the job cannot start):")
            lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        if self.decisions:
            lines.append("what this run could not do:")
            lines += [f"  - {d}" for d in self.decisions]
        return "\n".join(lines)


def make_plan(job: Mapping, data: str | Path) -> Plan:
    """The preflight :class:`Plan` of ``job`` on the dataset at ``data`` (module docstring)."""
    job = copy.deepcopy(dict(job))
    root = Path(data).expanduser().resolve()
    job["data"] = str(root)
    if not has_dataset(root):
        return Plan(job, [Problem("data", f"{root} holds no Qlib dataset (calendars/day.txt and instruments/all.txt)",
                                  "give --data a dataset (`qlib-ext data import --source <files> --out DIR`), "
                                  "or an empty folder for the preset's synthetic market")], data=str(root))
    from ..data.panel import read_calendar

    cal = read_calendar(root)
    problems: list[Problem] = []
    decisions: list[str] = []
    sig = dict(job.get("signal") or {})
    job["signal"] = sig

    # the models of the signal and what they read -----------------------------------------------------
    try:
        members = [handler_needs(m) for m in _members(job, root)]
    except (ValueError, KeyError, FileNotFoundError, ImportError) as exc:
        problems.append(Problem("signal", f"the signal task cannot be read: {exc}",
                                "fix signal.workflow / template in the job preset"))
        members = []
    given_exclude = list(sig.get("exclude") or [])
    active = [m for m in members if m.member.name not in given_exclude]
    risk_first = _risk_start(root, cal)

    # windows: a first fit with every member, the minute coverage over it, then the kept members' -----
    windows, wprobs = _windows(job, cal, active, risk_first)
    span = _work_span(cal, windows, job)
    excluded: list[str] = []
    for m in [m for m in active if m.minute]:
        cov = minute_coverage(root, _universe(root, m.instruments), span)
        if cov["share"] >= MIN_MINUTE_COVERAGE:
            continue
        others = [o.member.name for o in active if not o.minute]
        why = (f"{cov['source']} cover {cov['text']} in {span_text(span)} ({cov['share']:.1%} of the stock-sessions; "
               f"the minute model needs {MIN_MINUTE_COVERAGE:.0%})")
        if others and len([o for o in members if o.member.name not in given_exclude]) > 1:
            excluded.append(m.member.name)
            decisions.append(f"signal: ensemble member {_who(m)} left out "
                             f"before training: {why}; the signal is the equal-weight mean of "
                             f"{', '.join(others)}")
        else:
            problems.append(Problem("signal", f"the signal's only model {_who(m)} reads minute factors, but {why}",
                                    f"import 1-minute bars for the universe (`{fix_for(MINUTE_BARS, root)}`), or "
                                    "train a daily model: signal.workflow: ensemble (K-line GRUs) or null (the "
                                    "template's LightGBM on PriceVolume), e.g. `qlib-ext run --preset real`"))
    if excluded:
        sig["exclude"] = [*given_exclude, *excluded]
        active = [m for m in active if m.member.name not in excluded]
        windows, wprobs = _windows(job, cal, active, risk_first)
        span = _work_span(cal, windows, job)
    problems += wprobs
    if job.get("minute_factors") and not any(m.minute for m in active) and members:
        job["minute_factors"] = False
    if windows is not None:                        # fitted windows as dates; given ones stay as written
        fitted, new = set(windows.fitted), windows.as_job()
        sig.update({k: new["signal"][k] for k in ("train", "valid") if k in fitted})
        job.update({k: new[k] for k in ("backtest", "window") if k in fitted})

    # fields of each stage: present (data.requirements) and mostly finite ------------------------------
    backtest = _backtest_span(cal, windows, job)
    benches, bprobs, bdecs = _benchmarks(job, root, cal, backtest)
    job["benchmarks"] = benches
    problems += bprobs
    decisions += bdecs
    needs = _stage_fields(job, root, active)
    problems += _field_problems(root, cal, needs, span)
    decisions += _record_decisions(job, root, cal, backtest)
    from ..data.provenance import read_provenance

    return Plan(job, problems, decisions, windows, str(root), read_provenance(root).describe(), cal)


# ---------------------------------------------------------------------------------------------- models
def _members(job: Mapping, root: Path) -> list[Member]:
    """The signal's models, from the task the job would train (dates are placeholders here)."""
    from .job import signal_task

    probe = copy.deepcopy(dict(job))
    sig = dict(probe.get("signal") or {})
    sig.pop("exclude", None)
    for k in ("train", "valid"):
        if is_auto(sig.get(k)):
            sig[k] = ["2000-01-04", "2000-12-29"] if k == "train" else ["2001-01-02", "2001-12-31"]
    probe["signal"] = sig
    for k in ("backtest", "window"):
        if is_auto(probe.get(k)):
            probe[k] = ["2002-01-04", "2002-12-31"]
    return signal_members(signal_task(probe, root, "sqlite:///:memory:", "fast"))


def _who(m: MemberNeeds) -> str:
    """``lgb_minute (on MinuteFactors)``, ``member (LGBModel on PriceVolume)``."""
    model = "" if m.member.model == m.member.name else f"{m.member.model} "
    return f"{m.member.name} ({model}on {m.handler})"


# ---------------------------------------------------------------------------------------------- windows
def _risk_start(root: Path, cal: pd.DatetimeIndex) -> pd.Timestamp:
    """The risk store's first date: from ``<data>/risk/meta.json`` when built, else estimated (:func:`risk_warmup`)."""
    meta = root / "risk" / "meta.json"
    if meta.is_file():
        try:
            start = json.loads(meta.read_text()).get("start")
            if start:
                return pd.Timestamp(start)
        except (ValueError, OSError):
            pass
    return cal[min(risk_warmup(), len(cal) - 1)]


def _windows(job: dict, cal: pd.DatetimeIndex, members: Sequence[MemberNeeds],
             risk_first: pd.Timestamp) -> tuple[Windows | None, list[Problem]]:
    """Resolved windows (None when unusable) and the window problems."""
    sig = job["signal"]
    longest = max(members, key=lambda m: m.lookback, default=None)
    lookback = longest.lookback if longest else 1
    why = f"{longest.member.name}: {longest.why}" if longest and longest.why else ""
    step = int(sig.get("step", 244))
    train, valid, bt, win = sig.get("train"), sig.get("valid"), job.get("backtest"), job.get("window")
    bad = [Problem("windows", f"{key} is {value!r}: expected [start, end] dates (YYYY-MM-DD) or `auto`",
                   f"give {key} as two dates, or `auto` to fit it to the data")
           for key, value in (("signal.train", train), ("signal.valid", valid), ("backtest", bt), ("window", win))
           if not is_auto(value) and _as_span(value) is None]
    if bad:
        return None, bad
    tv_auto, bt_auto = is_auto(train) or is_auto(valid), is_auto(bt)
    risk_idx = int(np.searchsorted(cal.values, risk_first.to_datetime64(), "left"))
    try:
        rule = FitRule.from_config(sig.get("auto"))
    except (TypeError, ValueError) as exc:
        return None, [Problem("windows", str(exc), "signal.auto takes train_sessions, valid_sessions, min_train, "
                                                   "min_valid, min_backtest (sessions)")]
    horizon = _label_horizon(members)
    if not tv_auto and not bt_auto:
        found = check_windows(cal, train, valid, bt, None if is_auto(win) else win, lookback, why, risk_first,
                              label_gap=horizon + LABEL_GAP_EXTRA)
        if found:
            return None, [Problem("windows", what, fix) for what, fix in found]
    try:
        w = fit_windows(cal, lookback, step=step, rule=rule, risk_start=risk_idx,
                        train=None if tv_auto else train, valid=None if tv_auto else valid,
                        backtest=None if bt_auto else bt, window=None if is_auto(win) else win)
    except WindowError as exc:
        return None, [Problem("windows", str(exc), "import a longer history, or give shorter windows")]
    if tv_auto or bt_auto:   # a half-given window: check the whole as if given
        found = check_windows(cal, w.train, w.valid, w.backtest, w.window, lookback, why, risk_first,
                              label_gap=horizon + LABEL_GAP_EXTRA)
        if found:
            return None, [Problem("windows", what, fix) for what, fix in found]
    return w, []


def _label_horizon(members: Sequence[MemberNeeds]) -> int:
    """The longest label horizon of the members (10 sessions when none says)."""
    return max((m.label_horizon for m in members), default=10)


def _work_span(cal: pd.DatetimeIndex, windows: Windows | None, job: Mapping) -> tuple[pd.Timestamp, pd.Timestamp]:
    """train start .. backtest end when resolved, else the given dates clipped to the calendar (or the calendar)."""
    if windows is not None:
        return windows.train[0], windows.backtest[1]
    train, bt = _as_span((job.get("signal") or {}).get("train")), _as_span(job.get("backtest"))
    return _clip(cal, train[0] if train else None, bt[1] if bt else None)


def _backtest_span(cal: pd.DatetimeIndex, windows: Windows | None, job: Mapping) -> tuple[pd.Timestamp, pd.Timestamp]:
    if windows is not None:
        return windows.backtest
    bt = _as_span(job.get("backtest"))
    return _clip(cal, bt[0] if bt else None, bt[1] if bt else None)


def _as_span(value: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """``[start, end]`` as Timestamps; None for ``auto`` or anything that is not two dates."""
    if is_auto(value) or not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    try:
        return pd.Timestamp(value[0]), pd.Timestamp(value[1])
    except (TypeError, ValueError):
        return None


def _clip(cal: pd.DatetimeIndex, start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    s = cal[0] if start is None else max(pd.Timestamp(start), cal[0])
    e = cal[-1] if end is None else min(pd.Timestamp(end), cal[-1])
    return (s, e) if s <= e else (cal[0], cal[-1])


# ---------------------------------------------------------------------------------------------- data
def _universe(root: Path, instruments: Any) -> list[str]:
    """The stocks of a handler's ``instruments`` (an instrument-file name or a list), index instruments left out."""
    from ..data.requirements import stock_symbols

    if isinstance(instruments, (list, tuple)):
        return sorted(str(s).upper() for s in instruments)
    try:
        return stock_symbols(root, str(instruments))
    except FileNotFoundError:
        return stock_symbols(root, "all")


def _listed_sessions(root: Path, cal: pd.DatetimeIndex, stocks: Sequence[str], span) -> dict[str, np.ndarray]:
    """Per stock, the bool mask over ``cal`` of its listed sessions (``instruments/all.txt``) inside ``span``."""
    from ..data.panel import read_instruments

    spans = read_instruments(root, "all")
    spans = spans[spans["instrument"].str.upper().isin(set(stocks))]
    inside = (cal >= span[0]) & (cal <= span[1])
    out: dict[str, np.ndarray] = {}
    for inst, s, e in spans.itertuples(index=False):
        mask = out.setdefault(inst.upper(), np.zeros(len(cal), bool))
        mask |= (cal >= s) & (cal <= e) & inside
    return out


def minute_coverage(root: str | Path, stocks: Sequence[str], span: Sequence) -> dict:
    """How much of ``stocks`` x their listed sessions in ``span`` has minute data.

    From the ``mf_*`` fields when the dataset has them (finite values, as the minute-factor stage adopts
    them), else from the minute source the stage would read (:func:`qlib_ext.ops.sources.open_source`:
    a synthetic market's stream covers every listed session, 1-minute bins the sessions of
    ``calendars/1min.txt`` for the stocks with ``close.1min.bin``).  Returns ``{"share", "stocks",
    "n_stocks", "sessions", "n_sessions", "text", "source"}``.
    """
    from ..data.bin_io import read_bin
    from ..data.panel import read_calendar
    from ..data.requirements import feature_dirs
    from ..ops.library import resolve
    from ..ops.sources import open_source

    root = Path(root)
    cal = read_calendar(root)
    span = (pd.Timestamp(span[0]), pd.Timestamp(span[1]))
    listed = _listed_sessions(root, cal, stocks, span)
    need = int(sum(m.sum() for m in listed.values()))
    dirs = feature_dirs(root)
    mf = resolve()[0].field
    has_mf = any((dirs[s.lower()] / f"{mf}.day.bin").exists() for s in listed if s.lower() in dirs)
    covered: dict[str, np.ndarray] = {}
    source = f"{mf} and the other mf_* fields"
    if has_mf:
        for s, mask in listed.items():
            path = dirs.get(s.lower(), root) / f"{mf}.day.bin"
            if path.exists():
                i0, v = read_bin(path)
                got = np.zeros(len(cal), bool)
                got[i0:i0 + len(v)] = np.isfinite(v[: len(cal) - i0])
                covered[s] = got & mask
    else:
        try:
            src = open_source(root, "auto")
        except (FileNotFoundError, ValueError):
            src = None
        if src is not None:
            source = "the synthetic minute stream" if src.kind == "stream" else "1-minute bars"
            days = np.ones(len(cal), bool)
            if src.kind != "stream":
                days = np.zeros(len(cal), bool)
                days[src.layout.covered()] = True
            for s, (first, last) in src.spans.iterrows():
                key = str(s).upper()
                if key in listed:
                    got = np.zeros(len(cal), bool)
                    got[int(first):int(last) + 1] = True
                    covered[key] = got & days & listed[key]
    have = {s: int(m.sum()) for s, m in covered.items() if m.any()}
    days_any = np.zeros(len(cal), bool)
    for m in covered.values():
        days_any |= m
    n_sessions = int(((cal >= span[0]) & (cal <= span[1])).sum())
    got_days = cal[days_any]
    where = f" ({got_days[0].date()} .. {got_days[-1].date()})" if len(got_days) else ""
    names = sorted(have)[:3]
    text = (f"{len(have):,} of {len(listed):,} stocks{' (' + ', '.join(names) + ')' if 0 < len(have) <= 3 else ''} "
            f"on {int(days_any.sum())} of {n_sessions} sessions{where}")
    return {"share": (sum(have.values()) / need) if need else 0.0, "stocks": len(have), "n_stocks": len(listed),
            "sessions": int(days_any.sum()), "n_sessions": n_sessions, "text": text, "source": source}


def _stage_fields(job: Mapping, root: Path, members: Sequence[MemberNeeds]) -> dict[str, dict[str, str]]:
    """stage -> {field: purpose}: the models' handlers, the risk build, the strategy, the analysis recorders."""
    out: dict[str, dict[str, str]] = {}
    for m in members:
        for f, why in m.fields.items():
            if not f.startswith("mf_"):
                out.setdefault("signal", {}).setdefault(f, why)
    if not (root / "risk" / "meta.json").is_file():
        out["risk"] = dict(USES["risk"])
    strategy = {f: w for f, w in USES["strategy"].items() if "|" not in f}
    for b in job.get("benchmarks") or []:
        out[f"backtest_{b}"] = strategy
    if any(str(r.get("module_path", "")).startswith("qlib_ext.analysis") for r in _records(job)):
        from ..analysis.inputs import MARKET_COLUMNS
        from ..factors.requirements import expression_fields

        out["records"] = {f: f"analysis recorders: {name}" for name, e in MARKET_COLUMNS.items()
                          for f in expression_fields(e)}
    return out


def _field_problems(root: Path, cal: pd.DatetimeIndex, needs: Mapping[str, Mapping[str, str]],
                    span: Sequence) -> list[Problem]:
    """Absent fields (per stage, with the command that adds each) and fields finite too rarely over ``span``."""
    every: dict[str, str] = {}
    for flds in needs.values():
        for f, why in flds.items():
            every.setdefault(f, why)
    if not every:
        return []
    gone = {m.field: m for m in missing_fields(root, uses=(), fields=every)}
    stocks = _sample(_universe(root, ALL_SHARE), SAMPLE_STOCKS)
    present = [f for f in every if f not in gone or not gone[f].everywhere]
    shares = _finite_shares(root, cal, stocks, present, span)
    out: list[Problem] = []
    seen: set[str] = set()
    for stage, flds in needs.items():
        absent = [f for f in flds if f in gone and gone[f].stocks_missing > (1 - MIN_FINITE) * gone[f].stocks_total]
        sparse = [f for f in flds if f not in absent and shares.get(f, 1.0) < MIN_FINITE]
        if stage.startswith("backtest_"):
            key = ",".join(absent) + "|" + ",".join(sparse)
            if key in seen:
                continue                           # the same strategy fields: said once, for the first benchmark
            seen.add(key)
        if absent:
            items = "; ".join(f"${f} ({flds[f]}; missing for {gone[f].stocks_missing:,} of {gone[f].stocks_total:,} "
                              f"stocks)" for f in absent)
            fixes = sorted({gone[f].fix for f in absent})
            out.append(Problem(stage, f"the dataset lacks day field(s) {items}", "; ".join(f"`{x}`" for x in fixes)))
        if sparse:
            items = "; ".join(f"${f} ({flds[f]}) is finite on {shares[f]:.1%}" for f in sparse)
            out.append(Problem(stage, f"{items} of the traded stock-days in {span_text(span)} (sample of "
                               f"{len(stocks)} stocks; needs {MIN_FINITE:.0%})",
                               "; ".join(f"`{fix_for(f, root)}`" for f in sparse)
                               + f" (see `qlib-ext data check {root}`)"))
    return out


def _sample(stocks: Sequence[str], n: int) -> list[str]:
    if len(stocks) <= n:
        return list(stocks)
    idx = np.linspace(0, len(stocks) - 1, n).round().astype(int)
    return [stocks[i] for i in np.unique(idx)]


def _finite_shares(root: Path, cal: pd.DatetimeIndex, stocks: Sequence[str], flds: Sequence[str],
                   span: Sequence) -> dict[str, float]:
    """Per field, the share of traded stock-days (finite close, inside ``span``) where it is finite."""
    from ..data.panel import read_panel

    inside = (cal >= span[0]) & (cal <= span[1])
    close = read_panel(root, "close", list(stocks)).to_numpy()[inside]
    traded = np.isfinite(close)
    n = int(traded.sum())
    if not n:
        return {}
    out = {}
    for f in flds:
        if f == "close":
            continue
        x = read_panel(root, f, list(stocks)).to_numpy()[inside]
        out[f] = float((np.isfinite(x) & traded).sum() / n)
    return out


# ---------------------------------------------------------------------------------------------- benchmarks
def _benchmarks(job: Mapping, root: Path, cal: pd.DatetimeIndex, bt: Sequence
                ) -> tuple[list[str], list[Problem], list[str]]:
    """The benchmarks to run (``auto``: every one the data carry over the backtest), their problems, decisions."""
    asked = job.get("benchmarks")
    auto = is_auto(asked)
    names = list(BENCHMARKS) if auto else [str(b) for b in (asked or [])]
    keep, problems, decisions = [], [], []
    for name in names:
        try:
            info = benchmark(name)
        except ValueError as exc:
            problems.append(Problem(f"backtest_{name}", str(exc), "name a known benchmark in `benchmarks`"))
            continue
        found = _benchmark_gaps(root, cal, info, bt)
        if not found:
            keep.append(info.name)
        elif auto:
            decisions.append(f"benchmarks: {info.label} not run: {found[0][0]}")
        else:
            problems += [Problem(f"backtest_{info.name}", what, fix) for what, fix in found]
    if auto and not keep:
        problems.append(Problem("backtest", f"benchmarks: auto found no benchmark with an index close and member "
                                f"weights over the backtest {span_text(bt)} ({'; '.join(decisions)})",
                                f"add index bars and weights (`{fix_for(ANY_WEIGHT, root)}`)"))
        decisions = []
    return keep, problems, decisions


def _benchmark_gaps(root: Path, cal: pd.DatetimeIndex, info, bt: Sequence) -> list[tuple[str, str]]:
    """``(what, fix)`` when the index instrument's close or the weight field does not cover the backtest."""
    from ..data.bin_io import read_bin
    from ..data.panel import read_panel
    from ..data.requirements import feature_dirs

    inside = (cal >= bt[0]) & (cal <= bt[1])
    out = []
    dirs = feature_dirs(root)
    path = dirs.get(info.instrument.lower(), root / "features" / info.instrument.lower()) / "close.day.bin"
    if not path.exists():
        out.append((f"{info.label}'s index instrument {info.instrument} has no close (features/"
                    f"{info.instrument.lower()}/close.day.bin): it is the backtest's benchmark",
                    f"import the index's daily bars (index_daily) with `{IMPORT_HINT.format(root=root)}`, or drop "
                    f"{info.name} from `benchmarks`"))
    else:
        i0, v = read_bin(path)
        c = np.full(len(cal), np.nan)
        c[i0:i0 + len(v)] = v[: len(cal) - i0]
        bad = inside & ~(np.isfinite(c) & (c > 0))
        if bad.any():
            days = cal[bad]
            out.append((f"{info.label}'s index instrument {info.instrument} has no close on {int(bad.sum())} of "
                        f"{int(inside.sum())} backtest sessions (first {days[0].date()})",
                        f"import {info.instrument}'s bars for {span_text(bt)}, or drop {info.name} from `benchmarks`"))
    members_file = root / "instruments" / f"{info.name}.txt"
    stocks = _universe(root, info.name) if members_file.exists() else _universe(root, "all")
    w = read_panel(root, info.weight_field, stocks).to_numpy()[inside]
    total = np.nansum(w, axis=1)
    empty = total <= 0
    if not np.isfinite(w).any():
        out.append((f"{info.label}: no stock has the weight field {info.weight_field} over the backtest "
                    f"{span_text(bt)}", f"`{fix_for(ANY_WEIGHT, root)}`, or drop {info.name} "
                    "from `benchmarks`"))
    elif empty.any():
        days = cal[inside][empty]
        out.append((f"{info.label}: {info.weight_field} sums to 0 on {int(empty.sum())} of {int(inside.sum())} backtest "
                    f"sessions (first {days[0].date()}): no benchmark to track there",
                    f"add index weights for {span_text(bt)}, or start the backtest after {days[-1].date()}"))
    return out


# ---------------------------------------------------------------------------------------------- records
def _records(job: Mapping) -> list[dict]:
    """Every recorder the job runs: the template's (its signal record left out), the job's extras, the signal's."""
    from .workflow import backtest_records, find_workflow, render_workflow

    try:
        template = render_workflow(find_workflow(job["template"]), {})
    except (KeyError, FileNotFoundError):
        template = {}
    extra = [dict(r) for r in job.get("records") or []]
    return [*backtest_records(template, extra), *[dict(r) for r in job.get("signal_records") or []]]


def _record_decisions(job: Mapping, root: Path, cal: pd.DatetimeIndex, bt: Sequence) -> list[str]:
    """Optional recorder inputs (the registry's ``optional``) that are absent: each a line of what the run
    could not do; the recorder draws its section without them."""
    from ..analysis import registry
    from ..data.requirements import feature_dirs

    out: list[str] = []
    dirs = feature_dirs(root)
    seen: set[str] = set()
    for rec in _records(job):
        name = str(rec.get("class"))
        try:
            entry = registry.get(name)
        except (KeyError, ValueError):
            continue                                   # not one of ours: nothing declared
        if name in seen or not entry.optional:
            continue
        seen.add(name)
        kw = rec.get("kwargs") or {}
        params = inspect.signature(entry.cls.__init__).parameters
        if "indexes" in params:
            indexes = kw.get("indexes") or params["indexes"].default
            for i in indexes:
                code = INDEX_INSTRUMENTS.get(i)
                if code and not (dirs.get(code.lower(), root / "_") / "close.day.bin").exists():
                    label = BENCHMARKS[i].label if i in BENCHMARKS else "CSI All Share"
                    out.append(f"{entry.title}: {label} ({code}) is not in the dataset: drawn without it")
        if "futures" in entry.optional and not kw.get("futures"):
            out.append(f"{entry.title}: no futures prices given (kwargs futures: <file>): the futures basis "
                       "is left out")
        if "base_date" in params:
            base = pd.Timestamp(kw.get("base_date") or params["base_date"].default)
            if not (cal[0] <= base <= pd.Timestamp(bt[1])):
                out.append(f"{entry.title}: its base date {base.date()} is outside the data shown "
                           f"({cal[0].date()} .. {pd.Timestamp(bt[1]).date()}): give kwargs base_date")
    return out


def _show(v: Any) -> str:
    if is_auto(v):
        return AUTO
    return span_text(v) if isinstance(v, (list, tuple)) and len(v) == 2 else str(v)
