"""Checks on the source rows before anything is written; each failure names file, row, key, field and check.

Errors (the import stops): duplicates, non-positive prices, high < low, open/close outside [low, high],
negative volume/amount, unparseable codes/dates, dates off the XSHG calendar, a whole trading day
missing from a file, spans that end before they start or overlap, index weights not summing to 100%
(or 1) per snapshot.  Warnings (reported in ``meta/import_report.json``; errors under ``strict``):
codes in weights/members/shares without daily rows, adjustment-factor steps without an ex-date-like
price gap, amount/vol outside the bar.  All checks are vectorised over rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..codes import to_tushare
from .fill import fill_both
from .report import MAX_EXAMPLES, ImportReport

#: Weight snapshots must sum to 1 (or 100 %) within this relative tolerance.
WEIGHT_TOL = 5e-3
#: A factor step of at least this size needs a raw price gap on its day (see :func:`check_factor_steps`).
FACTOR_STEP_MIN = 0.01
#: With ``pre_close`` given, an adjusted return off the exchange's change by more than this is flagged.
CHANGE_TOL = 1e-3
#: An adjustment-factor jump is an error (not a warning) when the adjusted close-to-close move it makes is
#: unexplained by more than this, in log points (0.2 = 22%): with ``pre_close``, |ln(adjusted close ratio) -
#: ln(close / pre_close)|; without it, at a factor step, |ln(adjusted close ratio)| beyond the largest
#: daily price limit, ln(1.3) (Beijing's 30%).  A factor applied a day late for a dividend stays a
#: warning; a 10x step (adjusted close x10, ``change`` +900%) or a bonus issue adjusted on the wrong day is an
#: error, unless ``accept_factor_jumps=True`` (``--accept-factor-jumps``) keeps it as a warning.
FACTOR_JUMP_TOL = 0.2
MAX_LIMIT = 0.3


class RowNumbers:
    """1-based data row numbers of a whole file without an array: ``rows[i] == i + 1``."""

    def __getitem__(self, i: int) -> int:
        return int(i) + 1


def flag_rows(report: ImportReport, level: str, check: str, file: str, mask: np.ndarray,
              message: Callable[[int], str], rows, keys: Callable[[int], str], field: str | None = None
              ) -> int:
    """One issue for the rows where ``mask`` holds: the first named in full, a few more as examples."""
    idx = np.flatnonzero(mask)
    if not idx.size:
        return 0
    i = int(idx[0])
    examples = [f"row {int(rows[j])} ({keys(int(j))}): {message(int(j))}" for j in idx[1:1 + MAX_EXAMPLES]]
    report.add(level, check, message(i), file=file, row=int(rows[i]), key=keys(i), field=field, count=idx.size,
               examples=examples)
    return int(idx.size)


def check_bars(report: ImportReport, file: str, f: pd.DataFrame, rows: np.ndarray, keys: Callable[[int], str],
               prices: Sequence[str] = ("open", "high", "low", "close")) -> None:
    """Row checks of OHLC bars: missing/non-positive prices, high < low, open/close outside, negative vol/amount.

    A row with ``vol == 0`` is a no-trade row (treated as suspended) and needs no prices.
    """
    vol = f["vol"].to_numpy(float) if "vol" in f else np.ones(len(f))
    traded = ~(vol == 0)
    with np.errstate(invalid="ignore"):
        for c in prices:
            x = f[c].to_numpy(float)
            flag_rows(report, "error", "missing_value", file, traded & np.isnan(x),
                      lambda i, c=c: f"{c} is missing on a traded row", rows, keys, c)
            flag_rows(report, "error", "positive_price", file, x <= 0,
                      lambda i, x=x, c=c: f"{c} {x[i]:.6g} is not positive", rows, keys, c)
        o, h, lo, c = (f[k].to_numpy(float) for k in ("open", "high", "low", "close"))
        flag_rows(report, "error", "high_low", file, h < lo, lambda i: f"high {h[i]:.6g} < low {lo[i]:.6g}", rows, keys, "high")
        ok = h >= lo
        for name, x in (("close", c), ("open", o)):
            flag_rows(report, "error", f"{name}_range", file, ok & ((x < lo) | (x > h)),
                      lambda i, x=x, name=name: f"{name} {x[i]:.6g} outside [low {lo[i]:.6g}, high {h[i]:.6g}]",
                      rows, keys, name)
        for name in ("vol", "amount"):
            if name in f:
                x = f[name].to_numpy(float)
                flag_rows(report, "error", f"{name}_negative", file, x < 0,
                          lambda i, x=x, name=name: f"{name} {x[i]:.6g} < 0", rows, keys, name)
        if "vol" in f:
            flag_rows(report, "error", "missing_value", file, np.isnan(vol), lambda i: "vol is missing", rows, keys, "vol")


def check_codes_dates(report: ImportReport, file: str, codes: np.ndarray, dates: np.ndarray, raw_codes: pd.Series,
                      raw_dates: pd.Series, rows: np.ndarray, date_field: str = "trade_date") -> None:
    """Codes must look like ``600519.SH``/``SH600519``, dates like ``YYYYMMDD``."""
    bad_code = pd.isna(codes)
    flag_rows(report, "error", "code", file, bad_code, lambda i: f"code {raw_codes.iloc[i]!r} is not like 600519.SH",
              rows, lambda i: f"{raw_codes.iloc[i]} {raw_dates.iloc[i]}", "ts_code")
    flag_rows(report, "error", "date_format", file, np.isnat(dates),
              lambda i: f"{date_field} {raw_dates.iloc[i]!r} is not a date (YYYYMMDD)", rows,
              lambda i: f"{raw_codes.iloc[i]} {raw_dates.iloc[i]}", date_field)


def off_calendar(report: ImportReport, file: str, dates: np.ndarray, days: pd.DatetimeIndex, rows,
                 keys: Callable[[int], str], consider: np.ndarray | None = None, level: str = "error") -> np.ndarray:
    """Calendar position of each row's date, -1 outside ``days``' span, not considered, or not a session.

    A date inside the span that is not an XSHG session (weekend, holiday) is flagged.
    """
    ok = ~np.isnat(dates) if consider is None else consider & ~np.isnat(dates)
    inside = ok & (dates >= days[0].to_datetime64()) & (dates <= days[-1].to_datetime64())
    t = np.minimum(days.searchsorted(dates), len(days) - 1)
    off = inside & (days.to_numpy()[t] != dates)
    flag_rows(report, level, "calendar", file, off, lambda i: f"{pd.Timestamp(dates[i]).date()} is not an XSHG "
              "trading session (weekend or exchange holiday)", rows, keys, "trade_date")
    return np.where(inside & ~off, t, -1)


def check_gaps(report: ImportReport, file: str, t: np.ndarray, days: pd.DatetimeIndex, what: str = "stock") -> None:
    """A trading day with no row at all is an error (a listed stock missing days is a suspension: fine)."""
    counts = np.bincount(t[t >= 0], minlength=len(days))
    miss = np.flatnonzero(counts == 0)
    if miss.size:
        dates = [str(d.date()) for d in days[miss]]
        report.error("gaps", file, f"trading day {dates[0]} has no {what} row at all (a whole session is missing "
                     f"between {days[0].date()} and {days[-1].date()})", key=dates[0], count=miss.size,
                     examples=dates[1:1 + MAX_EXAMPLES])


def check_duplicates(report: ImportReport, file: str, key: np.ndarray, rows, keys: Callable[[int], str],
                     n_keys: int | None = None) -> None:
    """Rows with the same key (e.g. stock x day; -1 = not checked): error naming both rows.

    With ``n_keys`` (keys are < n_keys) a bincount finds the duplicated keys in O(rows + n_keys) memory
    and only their rows are sorted; otherwise all keys are sorted.
    """
    valid = key >= 0
    if n_keys is not None:
        counts = np.bincount(key[valid], minlength=n_keys)
        cand = np.flatnonzero(valid)
        cand = cand[counts[key[cand]] > 1]
        del counts
    else:
        cand = np.flatnonzero(valid)
    order = cand[np.argsort(key[cand], kind="stable")]
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if dup.size:
        first, second = order[dup], order[dup + 1]
        partner = dict(zip(second.tolist(), first.tolist()))
        idx = np.sort(second)
        i = int(idx[0])
        report.error("duplicate", file, f"duplicate key, also on row {int(rows[partner[i]])}", row=int(rows[i]),
                   key=keys(i), count=idx.size, examples=[f"row {int(rows[k])} ({keys(int(k))})"
                                                          for k in idx[1:1 + MAX_EXAMPLES]])


def check_spans(report: ImportReport, file: str, df: pd.DataFrame, group: Sequence[str], what: str) -> None:
    """``in_date <= out_date`` and no two spans of the same ``group`` overlap (both inclusive)."""
    rows = df["_row"].to_numpy()

    def key(i: int) -> str:
        return " ".join(str(df[g].iloc[i]) for g in group) + f" {df['_in'].iloc[i]:%Y%m%d}"

    inv = (df["_out"] < df["_in"]).to_numpy()
    flag_rows(report, "error", "span", file, inv, lambda i: f"out_date {df['_out'].iloc[i]:%Y%m%d} is before "
              f"in_date {df['_in'].iloc[i]:%Y%m%d}", rows, key, "out_date")
    s = df.sort_values([*group, "_in"])
    same = np.ones(len(s), bool)
    for g in group:
        col = s[g].to_numpy()
        same[1:] &= col[1:] == col[:-1]
    same[0] = False
    prev_out = s["_out"].shift().to_numpy()
    over = same & (s["_in"].to_numpy() <= prev_out)
    pos = np.argsort(s.index.to_numpy())                  # back to the frame's order for row numbers
    flag_rows(report, "error", "span_overlap", file, over[pos], lambda i: f"{what} span starting "
              f"{df['_in'].iloc[i]:%Y%m%d} overlaps the previous span of the same {'/'.join(group)}", rows, key, "in_date")


def check_weight_sums(report: ImportReport, file: str, w: pd.DataFrame) -> float:
    """Each (index, snapshot) sums to 100 (percent) or 1 (fraction); returns the divisor that makes fractions.

    Percent vs fraction is decided by the median snapshot sum (nearest of 1 and 100).
    """
    sums = w.groupby(["index_code", "trade_date"], sort=True)["weight"].sum()
    if sums.empty:
        return 1.0
    scale = 100.0 if abs(np.log10(max(sums.median(), 1e-12)) - 2) < abs(np.log10(max(sums.median(), 1e-12))) else 1.0
    report.units[file] = "weights in percent" if scale == 100 else "weights as fractions"
    rel = (sums / scale - 1).abs()
    bad = rel[rel > WEIGHT_TOL]
    if len(bad):
        (code, date), total = bad.index[0], sums[bad.index[0]]
        unit = "%" if scale == 100 else ""
        report.error("weight_sum", file, f"weights of {code} on {date} sum to {total:.6g}{unit}, expected "
                     f"{scale:g}{unit} ± {WEIGHT_TOL:.1%}", key=f"{code} {date}", field="weight", count=len(bad),
                     examples=[f"{c} {d}: {sums[(c, d)]:.6g}" for c, d in bad.index[1:1 + MAX_EXAMPLES]])
    neg = (w["weight"] < 0).to_numpy()
    flag_rows(report, "error", "weight_negative", file, neg, lambda i: f"weight {w['weight'].iloc[i]:.6g} < 0",
              w["_row"].to_numpy(), lambda i: f"{w['index_code'].iloc[i]} {w['con_code'].iloc[i]}", "weight")
    return scale


def check_unknown(report: ImportReport, file: str, codes: pd.Series, known: set[str], what: str,
                  level: str = "warning") -> list[str]:
    """Codes (Qlib symbols) of stocks without daily rows: counted and reported; returns them as ts codes."""
    unknown = [to_tushare(c) for c in sorted(set(codes.dropna()) - known)]
    if unknown:
        report.add(level, "unknown_code", f"{len(unknown)} {what} have no rows in the daily file "
                   "(delisted/missing from the price source); they are left out", file=file, key=unknown[0],
                   count=len(unknown), examples=unknown[1:1 + MAX_EXAMPLES])
        report.stats[f"unknown codes in {file}"] = len(unknown)
    return unknown


def check_factor_steps(report: ImportReport, file: str, factor: np.ndarray, open_: np.ndarray, close: np.ndarray,
                       traded: np.ndarray, pre_close: np.ndarray | None, days: pd.DatetimeIndex,
                       names: Sequence[str], accept_jumps: bool = False) -> int:
    """Adjustment-factor steps that no price gap explains; (days x stocks) raw panels, NaN = no row.

    With ``pre_close`` (the exchange's ex-adjusted previous close, as in tushare ``daily``) the check is
    exact: the adjusted return ``close_t f_t / (close_{t-1} f_{t-1}) - 1`` must equal the exchange's
    ``close_t / pre_close_t - 1`` within 0.1 pp.  Without it the ex-date is judged from the opening gap:
    a step ``r = f_t / f_{t-1} - 1`` of at least 1% whose raw open is not below the previous raw close
    (``(open_t / close_{t-1} - 1) * r >= 0``) has no ex-date-like gap.  That catches factor steps applied
    on the wrong day (the fixture's glitches.csv) but also flags real ex-dates that opened up by
    the dividend, so it is a warning to look at, not proof.  A jump unexplained beyond
    :data:`FACTOR_JUMP_TOL` is an error naming stock and date (a warning with ``accept_jumps``).
    """
    exact = exact_check(pre_close)
    hits = [_factor_block(fill_both(factor[:, c:c + 512].astype(np.float64)), open_[:, c:c + 512],
                          close[:, c:c + 512], traded[:, c:c + 512],
                          pre_close[:, c:c + 512] if exact else None, c) for c in range(0, factor.shape[1], 512)]
    t = np.concatenate([h[0] for h in hits])
    j = np.concatenate([h[1] for h in hits])
    info = np.concatenate([h[2] for h in hits]) if t.size else np.zeros((0, 7))
    how = "adjusted return differs from close/pre_close - 1 by" if exact else \
        "factor step with no ex-date price gap: step"
    if t.size:
        order = np.lexsort((j, t))
        t, j, info = t[order], j[order], info[order]
        lab = [f"{names[jj]} {days[tt]:%Y%m%d}" for tt, jj in zip(t, j)]
        jump = info[:, 6] > FACTOR_JUMP_TOL
        small = ~jump
        if small.any():
            i = int(np.flatnonzero(small)[0])
            pf, f, size, pc, c, o, _ = info[i]
            msg = f"adj_factor {pf:.7g} -> {f:.7g}: {how} {size:.3%} (raw close {pc:.6g} -> {c:.6g}, open {o:.6g})"
            rest = [lab[k] for k in np.flatnonzero(small)[1:1 + MAX_EXAMPLES]]
            report.warn("adj_factor_step", file, msg, key=lab[i], field="adj_factor", count=int(small.sum()),
                        examples=rest)
        if jump.any():
            _report_jumps(report, file, info[jump], [lab[k] for k in np.flatnonzero(jump)], exact, accept_jumps)
        report.stats["adj_factor steps flagged"] = lab
    return int(t.size)


def _report_jumps(report: ImportReport, file: str, info: np.ndarray, lab: list[str], exact: bool, accept: bool) -> None:
    """One finding for the factor jumps beyond :data:`FACTOR_JUMP_TOL`: an error unless accepted."""
    pf, f, _, pc, c, _, un = info[0]
    adj = c * f / (pc * pf) - 1
    why = ("close / pre_close does not explain it" if exact else
           f"no daily price limit (at most {MAX_LIMIT:.0%}) explains it")
    msg = (f"adj_factor jumps {pf:.7g} -> {f:.7g} (x{f / pf:.4g}) while the raw close goes {pc:.6g} -> {c:.6g}: the "
           f"adjusted close moves {adj:+.1%} and {why} (unexplained {un:.2f} log points > {FACTOR_JUMP_TOL}); ")
    if accept:
        report.warn("adj_factor_jump", file, msg + "accepted (accept_factor_jumps)", key=lab[0], field="adj_factor",
                    count=len(lab), examples=lab[1:1 + MAX_EXAMPLES])
    else:
        report.error("adj_factor_jump", file, msg + "fix the adj_factor rows of that stock, or import with "
                     "--accept-factor-jumps (import_dataset(accept_factor_jumps=True)) if it is right",
                     key=lab[0], field="adj_factor", count=len(lab), examples=lab[1:1 + MAX_EXAMPLES])
    report.stats["adj_factor jumps" + (" (accepted)" if accept else "")] = lab


def exact_check(pre_close: np.ndarray | None) -> bool:
    return pre_close is not None and bool(np.isfinite(pre_close).any())


def _factor_block(factor: np.ndarray, open_: np.ndarray, close: np.ndarray, traded: np.ndarray,
                  pre_close: np.ndarray | None, c0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`check_factor_steps` on a block of columns: (t, j, [prev factor, factor, size, prev close, close, open,
    unexplained log move])."""
    T, n = factor.shape
    idx = np.maximum.accumulate(np.where(traded, np.arange(T)[:, None], -1), axis=0)   # last traded row <= t
    prev = np.vstack([np.full((1, n), -1), idx[:-1]])
    has_prev = traded & (prev >= 0)
    cols = np.arange(n)[None, :]
    pc = np.where(has_prev, close[np.maximum(prev, 0), cols], np.nan)
    pf = np.where(has_prev, factor[np.maximum(prev, 0), cols], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_adj = np.log(close * factor / (pc * pf))
        if pre_close is not None:
            size = np.abs(close * factor / (pc * pf) - close / pre_close)
            bad = has_prev & (size > CHANGE_TOL)
            unexplained = np.abs(log_adj - np.log(close / pre_close))
        else:
            size = factor / pf - 1
            step = has_prev & (np.abs(size) >= FACTOR_STEP_MIN)
            unexplained = np.where(step, np.abs(log_adj) - np.log1p(MAX_LIMIT), 0.0)
            bad = step & (((open_ / pc - 1) * size >= 0) | (unexplained > FACTOR_JUMP_TOL))
    t, j = np.nonzero(bad)
    info = np.stack([pf[t, j], factor[t, j], size[t, j], pc[t, j], close[t, j], open_[t, j], unexplained[t, j]], axis=1)
    return t, j + c0, info
