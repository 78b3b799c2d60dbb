"""Validate a Qlib binary dataset (calendars, instrument files, ``.bin`` files, values) and report problems.

Why: a dataset that loads is not necessarily right.  A truncated bin, a weight column that does not sum
to one or a high below the low silently poisons every backtest run on it.  :func:`check_dataset` reads
the files directly (no Qlib init), vectorised per instrument, and returns a :class:`CheckReport` (the
one :class:`~qlib_ext.data.report.DataReport` of imports and checks) whose findings name the check,
instrument, field, first offending date and number of offending rows, and whose guidance says what each
use of the dataset still needs and the command that adds it (:mod:`qlib_ext.data.requirements`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..schema import BENCHMARKS, INDEX_FIELDS, INDEX_INSTRUMENTS, MARKETS, STOCK_FIELDS, WEIGHT_FIELDS
from .calendar import MINUTES_PER_DAY, minute_offsets
from .codes import is_index, to_tushare
from .importers.validate import FACTOR_JUMP_TOL, FACTOR_STEP_MIN, MAX_LIMIT
from .report import DataReport, Finding, check_report  # noqa: F401  (Finding: re-exported)
from .requirements import (  # noqa: F401  (re-exported: the public names of data.check)
    CASE_FIX,
    CORE_FIELDS,
    IMPORT_HINT,
    REQUIREMENTS,
    USES,
    MissingField,
    case_problem,
    feature_dirs,
    guidance,
    missing_fields,
)

INDEX_CODES = tuple(INDEX_INSTRUMENTS.values())
BENCHES = tuple(BENCHMARKS)
#: Relative tolerance of the OHLC order checks (high >= max(open, close) >= ... >= low).  Prices stored as
#: float32 after adjusting in another tool carry the adjustment's rounding: a raw price known to 0.00025 CNY
#: (the fixture's source) is 2.5e-5 of a 10 CNY stock.  3e-5 accepts that and is still below one cent on
#: any price under 300 CNY; a real inversion (a cent or more on a typical price) is an error.
OHLC_TOL = 3e-5
REL_TOL, VWAP_TOL, LIMIT_TOL = 1e-6, 5e-3, 5e-3


#: One report for imports and checks (:mod:`qlib_ext.data.report`); the old names stay.
CheckReport = DataReport


def _flag(rep: CheckReport, level: str, check: str, bad: np.ndarray, labels: Sequence[str],
          message: str | Callable[[int], str], instrument: str | None = None, field: str | None = None) -> None:
    """Add one finding for a boolean mask over the calendar: first offending date and the count."""
    idx = np.flatnonzero(bad)
    if idx.size:
        msg = message(int(idx[0])) if callable(message) else message
        rep.add(level, check, msg, instrument, field, labels[idx[0]], int(idx.size))


def _check_calendars(root: Path, rep: CheckReport) -> dict[str, pd.DatetimeIndex]:
    """Day calendar (required) and minute calendar (optional): parseable, strictly increasing, sessions."""
    cals: dict[str, pd.DatetimeIndex] = {}
    for freq in ("day", "1min"):
        path = root / "calendars" / f"{freq}.txt"
        if not path.exists():
            rep.add("error" if freq == "day" else "warning", "calendar", f"calendars/{freq}.txt is missing")
            continue
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        times = pd.DatetimeIndex(pd.to_datetime(pd.Series(lines, dtype=object), errors="coerce")).as_unit("ns")
        if not len(lines) or times.isna().any():
            bad = int(np.flatnonzero(times.isna())[0]) if len(lines) else 0
            rep.add("error", "calendar", f"calendars/{freq}.txt line {bad + 1}: unparseable or empty "
                    f"({lines[bad] if lines else ''!r})", count=int(times.isna().sum()) or None)
            continue
        step, labels = np.diff(times.asi8), times.strftime("%Y-%m-%d" if freq == "day" else "%Y-%m-%d %H:%M")
        for bad, what in ((step == 0, "duplicated"), (step < 0, "out of order (not increasing)")):
            _flag(rep, "error", "calendar", np.r_[False, bad], labels, f"calendars/{freq}.txt: {what} timestamp")
        cals[freq] = times
        rep.stats[f"{freq} calendar"] = f"{labels[0]} .. {labels[-1]} ({len(times)} entries)"
    if "1min" in cals and "day" in cals:
        _check_minute_calendar(rep, cals["1min"], cals["day"])
    return cals


def _check_minute_calendar(rep: CheckReport, mins: pd.DatetimeIndex, days: pd.DatetimeIndex) -> None:
    """240 bars a session, each session a trading day, bar labels the standard 09:31..11:30, 13:01..15:00."""
    sess, first, counts = np.unique(mins.normalize().asi8, return_index=True, return_counts=True)
    labels = pd.DatetimeIndex(sess).strftime("%Y-%m-%d")
    _flag(rep, "error", "calendar", counts != MINUTES_PER_DAY, labels,
          lambda i: f"calendars/1min.txt: {counts[i]} bars in the session, expected {MINUTES_PER_DAY}")
    _flag(rep, "error", "calendar", ~np.isin(sess, days.normalize().asi8), labels,
          "calendars/1min.txt: minute session is not a day in calendars/day.txt")
    if (counts == MINUTES_PER_DAY).all() and len(mins) == len(sess) * MINUTES_PER_DAY:
        offs = (mins.asi8 - mins.normalize().asi8).reshape(len(sess), MINUTES_PER_DAY)
        _flag(rep, "error", "calendar", (offs != minute_offsets().as_unit("ns").asi8[None, :]).any(axis=1), labels,
              "calendars/1min.txt: bar times are not the 240 standard labels 09:31..11:30, 13:01..15:00")


def _read_spans(root: Path, rep: CheckReport, market: str, days: pd.DatetimeIndex) -> pd.DataFrame | None:
    """Parse ``instruments/<market>.txt``; flag bad lines, reversed spans and spans outside the calendar."""
    path = root / "instruments" / f"{market}.txt"
    if not path.exists():
        rep.add("error" if market == "all" else "warning", "instruments", f"instruments/{market}.txt is missing")
        return None
    try:
        df = pd.read_csv(path, sep="\t", header=None, names=["instrument", "start", "end"], dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        rep.add("error", "instruments", f"instruments/{market}.txt does not parse: {exc}")
        return None
    start, end = pd.to_datetime(df["start"], errors="coerce"), pd.to_datetime(df["end"], errors="coerce")
    bad = (df["instrument"].isna() | start.isna() | end.isna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rep.add("error", "instruments", f"instruments/{market}.txt line {i + 1}: expected SYMBOL<TAB>start<TAB>end",
                df["instrument"].iloc[i], count=int(bad.sum()))
    df = df.assign(start=start, end=end)[~bad].reset_index(drop=True)
    checks = ((df["start"] > df["end"], "span ends before it starts"),
              ((df["start"] < days[0]) | (df["end"] > days[-1]), f"span outside the calendar {days[0].date()}..{days[-1].date()}"))
    for mask, what in checks:
        for i in np.flatnonzero(mask.to_numpy())[:20]:
            r = df.iloc[i]
            rep.add("error", "instruments", f"instruments/{market}.txt: {what} ({r.start.date()}..{r.end.date()})",
                    r.instrument, date=str(r.start.date()))
    return df


def _check_instruments(root: Path, rep: CheckReport, days: pd.DatetimeIndex, dirs: dict[str, Path]
                       ) -> dict[str, pd.DataFrame | None]:
    """``all.txt`` parses and every listed stock has a features dir; index member files are subsets of all.

    Returns the parsed spans of every instrument file (None where missing or unparseable)."""
    spans = {m: _read_spans(root, rep, m, days) for m in MARKETS}
    others = sorted(p.stem for p in (root / "instruments").glob("*.txt") if p.stem not in MARKETS)
    spans.update({m: _read_spans(root, rep, m, days) for m in others})
    base = spans["all"]
    if base is None:
        return spans
    listed = set(base["instrument"])
    absent = [inst for inst in sorted(listed) if inst.lower() not in dirs]
    if absent:
        rep.add("error", "instruments", f"listed in all.txt but features/{absent[0].lower()}/ is missing"
                + (f" (and for {len(absent) - 1} more stocks)" if len(absent) > 1 else ""), absent[0],
                count=len(absent))
    for m, df in spans.items():
        if m != "all" and df is not None:
            for inst in sorted(set(df["instrument"]) - listed)[:20]:
                rep.add("error", "instruments", f"instruments/{m}.txt member is not in instruments/all.txt", inst)
    return spans


def _inspect_bin(path: Path, cal_len: int) -> tuple[int, int, str | None]:
    """(start, length, problem) of a bin from its size and header only; ``problem`` None when sound."""
    size = path.stat().st_size
    if size < 4 or size % 4:
        return 0, 0, f"size {size} bytes is not a multiple of 4 (truncated or corrupt)"
    with open(path, "rb") as fh:
        head = float(np.frombuffer(fh.read(4), dtype="<f4")[0])
    if not np.isfinite(head) or head < 0 or head != int(head):
        return 0, 0, f"header {head!r} is not a calendar index (corrupt)"
    start, n = int(head), size // 4 - 1
    if start + n > cal_len:
        return start, n, f"covers calendar indices {start}..{start + n - 1} beyond the {cal_len}-entry calendar"
    return start, n, None


def _check_bins(folder: Path, rep: CheckReport, inst: str, cals: dict[str, pd.DatetimeIndex]
                ) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, int]], set[str]]:
    """Size, header and extent of every bin of ``inst``.

    Returns the valid day series placed on the full calendar, their (start, length), and the names of
    all day fields that have a file (valid or not, so a corrupt file is not also reported missing).
    """
    T = len(cals["day"])
    data: dict[str, np.ndarray] = {}
    extent: dict[str, tuple[int, int]] = {}
    present: set[str] = set()
    problems: dict[tuple[str, str, str], list[str]] = {}  # (level, freq, problem) -> fields, one finding each
    for path in sorted(folder.glob("*.bin")):
        parts = path.name.lower().split(".")
        fld, freq = parts[0], parts[1] if len(parts) == 3 else "?"
        if freq == "day":
            present.add(fld)
        if freq not in cals:
            problems.setdefault(("warning" if freq == "?" else "error", freq, "no calendar for this bin"), []).append(fld)
            continue
        start, n, problem = _inspect_bin(path, len(cals[freq]))
        if problem:
            problems.setdefault(("error", freq, problem), []).append(fld)
            continue
        if freq == "day":
            full = np.full(T, np.nan)
            full[start:start + n] = np.fromfile(path, dtype="<f4", offset=4)
            data[fld], extent[fld] = full, (start, n)
    for (level, freq, problem), flds in problems.items():
        names = flds[0] if len(flds) == 1 else "{" + ",".join(flds) + "}"
        rep.add(level, "bins", f"{names}.{freq}.bin: {problem}", inst, ",".join(flds), count=len(flds))
    return data, extent, present


def _check_stock_layout(rep: CheckReport, inst: str, extent: dict[str, tuple[int, int]], present: set[str],
                        span: tuple[int, int], required: Sequence[str], labels: Sequence[str],
                        missing: dict[str, list[str]]) -> None:
    """Fields present (absent ones gathered in ``missing``: field -> stocks), bins of one stock aligned with
    each other and covering its listing span."""
    for fld in STOCK_FIELDS + tuple(f for f in required if f not in STOCK_FIELDS):
        if fld not in present:
            missing.setdefault(fld, []).append(inst)
    if not extent:
        return
    common = max(set(extent.values()), key=list(extent.values()).count)
    for fld, (s, n) in extent.items():
        if (s, n) != common:
            rep.add("warning", "bins", f"{fld}.day.bin has start={s} length={n}, other fields start={common[0]} "
                    f"length={common[1]}", inst, fld, labels[s] if n else None)
        if s > span[0] or s + n - 1 < span[1]:
            gap = span[0] if s > span[0] else s + n  # first listed day the bin does not cover
            missing = max(0, s - span[0]) + max(0, span[1] - (s + n - 1))
            rep.add("error" if fld in required else "warning", "bins",
                    f"{fld}.day.bin covers {labels[s]}..{labels[s + n - 1] if n else '(empty)'} but all.txt lists "
                    f"{labels[span[0]]}..{labels[span[1]]} (truncated?)", inst, fld, labels[gap], missing)


def _report_missing(rep: CheckReport, missing: dict[str, list[str]], n: int, required: Sequence[str]) -> None:
    """One finding per missing field: how many of the ``n`` checked stocks lack it, with examples."""
    for fld, insts in missing.items():
        level = "error" if fld in required else "warning"
        more = f" (e.g. {', '.join(insts[:3])})" if len(insts) > 1 else ""
        rep.add(level, "fields", f"{fld}.day.bin is missing for {len(insts)} of {n} stocks{more}", insts[0], fld,
                count=len(insts))


def _check_values(rep: CheckReport, inst: str, x: dict[str, np.ndarray], labels: Sequence[str]) -> None:
    """OHLC consistency (within :data:`OHLC_TOL`), positive prices, volume, vwap inside the bar, close inside
    limits, suspensions (a paused day trades nothing: volume 0, or NaN as Qlib's own datasets leave it)."""
    g = x.get
    o, h, lo, c, v, p = g("open"), g("high"), g("low"), g("close"), g("volume"), g("paused")

    def fl(level: str, check: str, bad: np.ndarray, msg, fld: str) -> None:
        _flag(rep, level, check, bad, labels, msg, inst, fld)

    with np.errstate(invalid="ignore"):
        for fld in ("open", "high", "low", "close", "vwap", "up_limit", "down_limit"):
            if fld in x:
                fl("error", "ohlc", np.isinf(x[fld]) | (x[fld] <= 0), lambda i, a=x[fld]: f"price {a[i]:.6g} not positive/finite", fld)
        if h is not None and lo is not None:
            fl("error", "ohlc", h < lo - OHLC_TOL * np.abs(lo), lambda i: f"high {h[i]:.6g} < low {lo[i]:.6g}", "high")
            if o is not None and c is not None:
                top, bot = np.fmax(o, c), np.fmin(o, c)
                fl("error", "ohlc", h < top - OHLC_TOL * np.abs(top),
                   lambda i: f"high {h[i]:.6g} < max(open, close) {top[i]:.6g}", "high")
                fl("error", "ohlc", lo > bot + OHLC_TOL * np.abs(bot),
                   lambda i: f"low {lo[i]:.6g} > min(open, close) {bot[i]:.6g}", "low")
            if "vwap" in x:
                vw = x["vwap"]
                fl("warning", "ohlc", (vw < lo * (1 - VWAP_TOL)) | (vw > h * (1 + VWAP_TOL)),
                   lambda i: f"vwap {vw[i]:.6g} outside [low {lo[i]:.6g}, high {h[i]:.6g}] (±{VWAP_TOL:.1%})", "vwap")
        for fld in ("volume", "amount"):
            if fld in x:
                fl("error", "ohlc", x[fld] < 0, lambda i, a=x[fld], f=fld: f"negative {f} {a[i]:.6g}", fld)
        up, dn = g("up_limit"), g("down_limit")
        if c is not None and up is not None and dn is not None:
            tol = LIMIT_TOL * np.nan_to_num(g("factor", np.ones_like(c)), nan=1.0)
            fl("error", "limits", (c < dn - tol) | (c > up + tol),
               lambda i: f"close {c[i]:.6g} outside [down_limit {dn[i]:.6g}, up_limit {up[i]:.6g}]", "close")
            fl("error", "limits", up < dn, lambda i: f"up_limit {up[i]:.6g} < down_limit {dn[i]:.6g}", "up_limit")
        if p is not None:
            if v is not None:
                fl("error", "paused", (p == 1) & (v > 0), lambda i: f"suspended (paused=1) but volume is {v[i]:.6g}", "volume")
            if c is not None:
                fl("warning", "paused", (p == 1) & np.isfinite(c), "suspended (paused=1) but close is not NaN", "close")


def _check_factor_jumps(rep: CheckReport, inst: str, x: dict[str, np.ndarray], labels: Sequence[str],
                        accepted: set[str]) -> None:
    """A ``factor`` step whose adjusted close-to-close move no daily price limit explains (the importer's rule,
    :data:`~qlib_ext.data.importers.validate.FACTOR_JUMP_TOL`): an error naming stock and date, a warning
    where ``meta/dataset.json`` lists it under ``accepted_factor_jumps`` (``--accept-factor-jumps``)."""
    c, f = x.get("close"), x.get("factor")
    if c is None or f is None:
        return
    ok = np.isfinite(c) & np.isfinite(f) & (c > 0) & (f > 0)
    idx = np.maximum.accumulate(np.where(ok, np.arange(len(c)), -1))
    prev = np.r_[-1, idx[:-1]]
    has = ok & (prev >= 0)
    p = np.maximum(prev, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.abs(f / f[p] - 1)
        unexplained = np.abs(np.log(c / c[p])) - np.log1p(MAX_LIMIT)
    bad = has & (step >= FACTOR_STEP_MIN) & (unexplained > FACTOR_JUMP_TOL)
    if not bad.any():
        return
    code = to_tushare(inst)
    keys = [f"{code} {labels[t].replace('-', '')}" for t in np.flatnonzero(bad)]
    known = np.array([k in accepted for k in keys])
    for level, mask, note in (("error", ~known, "fix the factor (or re-import with --accept-factor-jumps if it is "
                               "right)"), ("warning", known, "accepted at import (accept_factor_jumps)")):
        if mask.any():
            t = np.flatnonzero(bad)[np.flatnonzero(mask)[0]]
            rep.add(level, "factor_jump", f"factor {f[p[t]]:.6g} -> {f[t]:.6g} while the adjusted close moves "
                    f"{c[t] / c[p[t]] - 1:+.1%} ({c[p[t]]:.6g} -> {c[t]:.6g}): no daily price limit (at most "
                    f"{MAX_LIMIT:.0%}) explains it beyond {FACTOR_JUMP_TOL} log points; {note}", inst, "factor",
                    labels[t], int(mask.sum()))


def accepted_jumps(root: str | Path) -> set[str]:
    """``code YYYYMMDD`` of the factor jumps the import accepted (``meta/dataset.json``)."""
    path = Path(root) / "meta" / "dataset.json"
    try:
        return set(json.loads(path.read_text()).get("accepted_factor_jumps") or []) if path.exists() else set()
    except (ValueError, AttributeError):
        return set()


def _member_mask(spans: pd.DataFrame, cols: dict[str, int], days: pd.DatetimeIndex) -> np.ndarray:
    """(calendar x instrument) bool: inside a membership span (difference array, no loop over days)."""
    diff = np.zeros((len(days) + 1, len(cols)), dtype=np.int16)
    spans = spans[spans["instrument"].isin(cols)]
    j = spans["instrument"].map(cols).to_numpy()
    np.add.at(diff, (days.searchsorted(spans["start"].to_numpy(), "left"), j), 1)
    np.add.at(diff, (days.searchsorted(spans["end"].to_numpy(), "right"), j), -1)
    return np.cumsum(diff, axis=0, dtype=np.int16)[:-1] > 0


def _check_weights(dirs: dict[str, Path], rep: CheckReport, stocks: list[str], days: pd.DatetimeIndex, tol: float,
                   spans: dict[str, pd.DataFrame | None]) -> None:
    """Per day, ``w_<bench>`` sums to 1 over all stocks; members have weight > 0, non-members none."""
    labels, cols = days.strftime("%Y-%m-%d"), {s: j for j, s in enumerate(stocks)}
    for bench in BENCHES:
        fld = BENCHMARKS[bench].weight_field
        W = np.full((len(days), len(stocks)), np.nan, dtype=np.float32)
        found = False
        for j, inst in enumerate(stocks):
            folder = dirs.get(inst.lower())
            path = folder / f"{fld}.day.bin" if folder is not None else None
            if path is not None and path.exists():
                s, n, problem = _inspect_bin(path, len(days))
                if not problem:  # broken bins are reported by the per-instrument checks
                    W[s:s + n, j], found = np.fromfile(path, dtype="<f4", offset=4), True
        if not found:
            continue
        w = np.nan_to_num(W, nan=0.0)
        total = w.sum(axis=1, dtype=np.float64)
        neg = (w < 0).any(axis=1)
        bad = (w > 0).any(axis=1) & (np.abs(total - 1) > tol) | neg
        _flag(rep, "error", "weights", bad, labels, lambda i, t=total, n=neg, f=fld: f"{f} sums to {t[i]:.6f} over "
              f"all stocks (expected 1 ± {tol:g}){', has negative weights' if n[i] else ''}", None, fld)
        active = np.flatnonzero(total > 0)
        gap = (total <= 0) & (np.arange(len(days)) > active[0]) & (np.arange(len(days)) < active[-1]) \
            if active.size else np.zeros(len(days), bool)
        _flag(rep, "warning", "weights", gap, labels, f"no stock has {fld} > 0 on a day inside its history", None, fld)
        if spans.get(bench) is None:
            continue
        member = _member_mask(spans[bench], cols, days)
        for mask, what in ((member & np.isfinite(W) & (w <= 0), f"member of instruments/{bench}.txt has {fld} <= 0"),
                           (~member & (w > 0), f"not in instruments/{bench}.txt but {fld} > 0")):
            t, j = np.nonzero(mask)
            if t.size:
                rep.add("warning", "weights", what, stocks[j[0]], fld, labels[t[0]], int(t.size))


def _present_fields(dirs: dict[str, Path], instruments: Sequence[str], sample: int) -> set[str]:
    have: set[str] = set()
    for inst in list(instruments)[:sample]:
        folder = dirs.get(str(inst).lower())
        if folder is not None:
            have.update(p.name[: -len(".day.bin")] for p in folder.glob("*.day.bin"))   # exact names, as Qlib reads
    return have


def missing_fields_message(root: str | Path, needs: dict[str, str] | Sequence[str], who: str,
                           market: str = "all", sample: int = 200) -> str | None:
    """None when every needed day field exists (for some of the first ``sample`` stocks of ``market``), else
    one message listing every missing field with what it is for and the import command that adds it."""
    root = Path(root)
    needs = dict(needs) if isinstance(needs, dict) else {f: "" for f in needs}
    path = root / "instruments" / f"{market.lower()}.txt"
    if not path.exists():
        return f"{root}: instruments/{market.lower()}.txt is missing ({who} needs it)"
    insts = pd.read_csv(path, sep="\t", header=None, usecols=[0], dtype=str)[0].unique()
    dirs = feature_dirs(root)
    readable = {k: p for k, p in dirs.items() if p.name == k}     # what Qlib (and our readers) find on Linux
    have = _present_fields(readable, insts, sample)
    gone = [f for f in needs if f.lower() not in have]
    if not gone:
        return None
    items = ", ".join(f"'{f}'" + (f" ({needs[f]})" if needs[f] else "") for f in gone)
    msg = (f"{root}: {who} needs day fields that the dataset lacks: {items} (features/<stock>/<field>.day.bin); "
           f"add them with `{IMPORT_HINT.format(root=root)}` (check with `qlib-ext data check {root} --require ...`)")
    case = case_problem(root, dirs)
    return msg + (f"; note: {case}" if case else "")


def claimed_fields(root: str | Path) -> tuple[str, ...] | None:
    """The stock fields ``meta/dataset.json`` says the dataset holds (the importer writes them), else None."""
    path = Path(root) / "meta" / "dataset.json"
    if not path.exists():
        return None
    try:
        fields = json.loads(path.read_text()).get("fields")
    except (ValueError, AttributeError):
        return None
    return tuple(fields) if isinstance(fields, list) and fields else None


def _check_requirements(root: Path, rep: CheckReport, dirs: dict[str, Path], stocks: list[str],
                        cals: dict, require: Sequence[str], present: set[str]) -> None:
    """Minute bars (every stock looked at) and a benchmark weight field where asked; then, for every use, the
    fields it needs that the dataset lacks with the command that adds each (:func:`guidance`, in the stats)."""
    if "minute" in require:
        has = sum(1 for s in stocks if (folder := dirs.get(s.lower())) is not None
                  and os.path.exists(os.path.join(folder, "close.1min.bin")))
        rep.stats["stocks with 1-minute bars"] = f"{has} of {len(stocks)}"
        if "1min" not in cals:
            rep.add("error", "require", "--require minute: calendars/1min.txt is missing (no 1-minute bars)")
        elif not has:
            rep.add("error", "require", f"--require minute: none of the {len(stocks)} stocks has close.1min.bin "
                    "(no 1-minute bars)", field="close")
        elif has < len(stocks) / 2:
            rep.add("warning", "require", f"--require minute: only {has} of {len(stocks)} stocks have 1-minute bars; "
                    "the minute factors are NaN for the others", field="close", count=len(stocks) - has)
    if "strategy" in require and not present & set(WEIGHT_FIELDS):
        rep.add("error", "require", f"--require strategy: no benchmark weight field ({', '.join(WEIGHT_FIELDS)}); add "
                f"index weights with `{IMPORT_HINT.format(root=root)}`", field=WEIGHT_FIELDS[0])
    elif "strategy" in require:
        rep.stats["benchmarks with weights"] = ", ".join(b for b, i in BENCHMARKS.items() if i.weight_field in present)
    add_guidance(root, rep, require)


def add_guidance(root: Path, rep: CheckReport, require: Sequence[str] = ()) -> None:
    """Stats ``<use> still needs`` for each use not asked for, and the per-use guidance lines (field, stocks
    lacking it, the command that adds it) that :meth:`CheckReport.render` prints."""
    try:
        gone = {m.field: m for m in missing_fields(root)}
    except FileNotFoundError:
        return
    for use, fields in USES.items():
        lack = [gone[f] for f in fields if f in gone and f != "features/ names in lower case"]
        if use not in require and lack:
            rep.stats[f"{use} still needs"] = "; ".join(
                f"{m.field}{' (a benchmark weight)' if '|' in m.field else ''} for {m.stocks_missing} of "
                f"{m.stocks_total} stocks: `{m.fix}`" for m in lack)
    rep.guidance = guidance(root)


def check_dataset(root: str | Path, max_instruments: int | None = None, required_fields: Sequence[str] | None = None,
                  tol_weight: float = 1e-4, require: Sequence[str] | None = None) -> CheckReport:
    """Check a Qlib dataset at ``root`` and return every problem found (``report.ok`` when no errors).

    ``max_instruments`` limits the per-stock checks to the first N symbols (sorted) for speed; the weight
    sums always use every stock.  Which missing fields are errors: ``required_fields`` if given; else
    the union of :data:`REQUIREMENTS` of the uses in ``require`` (``qlib``, ``strategy``, ``risk``,
    ``minute``; the report's stats then say what the other uses still need); else the fields that
    ``meta/dataset.json`` claims (the importer's output); else all SPEC stock fields.  Other SPEC
    fields missing are warnings, one per field with the number of stocks lacking it.  Upper-case
    feature folders are named once, with the fix.  Index instruments listed in ``all.txt`` (``SH000300``,
    ``SH000001``, any :func:`~qlib_ext.data.codes.is_index`) are checked as indexes, not counted as stocks.
    ``report.guidance`` (printed by ``render``) says, per use, which fields are missing for how many
    stocks and the command that adds each (:func:`~qlib_ext.data.requirements.guidance`).
    """
    root = Path(root).expanduser()
    rep = check_report(str(root))
    if not root.is_dir():
        rep.add("error", "layout", f"{root} is not a directory")
        return rep
    unknown = sorted(set(require or ()) - set(REQUIREMENTS))
    if unknown:
        raise ValueError(f"require: unknown uses {unknown}; known {sorted(REQUIREMENTS)}")
    cals = _check_calendars(root, rep)
    if "day" not in cals:
        return rep
    days = cals["day"]
    labels = days.strftime("%Y-%m-%d")
    dirs = feature_dirs(root)
    case = case_problem(root, dirs)
    if case:
        rep.add("error", "case", case)
    spans = _check_instruments(root, rep, days, dirs)
    base = spans["all"]
    if base is None:
        return rep
    if required_fields is not None:
        required = tuple(required_fields)
    elif require:
        required = tuple(dict.fromkeys(f for use in require for f in REQUIREMENTS[use]))
    else:
        required = claimed_fields(root) or STOCK_FIELDS
    rep.stats["required fields"] = ", ".join(required) + (f" (--require {','.join(require)})" if require else "")
    listed = sorted(base["instrument"].unique())
    stocks = [s for s in listed if not is_index(s)]          # SH000300, SH000001, ... are checked as indexes
    checked = stocks[:max_instruments] if max_instruments is not None else stocks
    first = base.groupby("instrument")["start"].min().reindex(checked)
    last = base.groupby("instrument")["end"].max().reindex(checked)
    i0, i1 = days.searchsorted(first.to_numpy(), "left"), days.searchsorted(last.to_numpy(), "right") - 1
    missing: dict[str, list[str]] = {}
    accepted = accepted_jumps(root)
    present_any: set[str] = set()
    n_dirs = 0
    for k, inst in enumerate(checked):
        folder = dirs.get(inst.lower())
        if folder is None:
            continue
        n_dirs += 1
        data, extent, present = _check_bins(folder, rep, inst, cals)
        present_any |= present
        _check_stock_layout(rep, inst, extent, present, (int(i0[k]), int(max(i1[k], i0[k]))), required, labels,
                            missing)
        _check_values(rep, inst, data, labels)
        _check_factor_jumps(rep, inst, data, labels, accepted)
    _report_missing(rep, missing, n_dirs, required)
    if require:
        _check_requirements(root, rep, dirs, stocks, cals, require, present_any)
    else:
        add_guidance(root, rep)
    indexes = sorted({c for c in (*INDEX_CODES, *(s for s in listed if is_index(s))) if c.lower() in dirs})
    for code in indexes:
        data, extent, _ = _check_bins(dirs[code.lower()], rep, code, cals)
        for fld in (f for f in INDEX_FIELDS if f not in extent):
            rep.add("error" if fld == "close" else "warning", "index", f"{fld}.day.bin missing or unreadable", code, fld)
        if "close" in extent:
            (s, n), c, t = extent["close"], data["close"], np.arange(len(days))
            with np.errstate(invalid="ignore"):
                bad = ~(np.isfinite(c) & (c > 0)) & (t >= s) & (t < s + n)
            _flag(rep, "error", "index", bad, labels, lambda i, c=c: f"index close {c[i]:.6g} is not positive/finite",
                  code, "close")
        _check_values(rep, code, data, labels)
    _check_weights(dirs, rep, stocks, days, tol_weight, spans)
    rep.stats["instruments"] = f"{len(checked)} of {len(stocks)} stocks checked, {len(indexes)} index instruments"
    return rep
