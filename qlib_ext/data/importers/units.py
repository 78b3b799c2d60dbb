"""Volume, turnover and share-count units: the fixture's (shares, CNY) or tushare's own, detected or given.

tushare's ``daily``/``index_daily`` give ``vol`` in lots of 100 shares and ``amount`` in thousands of
CNY, ``daily_basic`` gives share counts in 10^4 shares and ``bak_basic`` in 10^8 shares.  The fixture
(and this package's datasets) use shares and CNY throughout.

Detection (``units="auto"``): a traded bar's ``amount / vol`` is its average price, so it lies in
[low, high] in shares/CNY and in [low, high] / 10 in lots/kCNY; each row votes (1% tolerance) and
the majority wins.  A file whose rows vote both ways is an error (``mixed_units``); a daily file with
no usable ``amount`` (no column, or no row with both) is an error (``units_ambiguous``) that names the
``--units`` fix, since vol in shares and in lots cannot be told apart.  Share counts
are scaled so that the median float market cap (float shares x close) is nearest 10^10 CNY, the
order of an A-share's median; the three candidate scales are four orders of magnitude apart.
"""

from __future__ import annotations

import numpy as np

from .report import ImportReport

#: (vol multiplier, amount multiplier) that turn each convention into shares / CNY.
TRADE_SCALES = {"fixture": (1.0, 1.0), "tushare": (100.0, 1000.0)}
TRADE_DESC = {"fixture": "vol in shares, amount in CNY", "tushare": "vol in lots of 100 shares, amount in kCNY"}
SHARE_SCALES = {1.0: "shares", 1e4: "10^4 shares (tushare daily_basic)", 1e8: "10^8 shares (tushare bak_basic)"}
TOL = 0.01
TYPICAL_FLOAT_MCAP = 1e10


class UnitVote:
    """Accumulates, batch by batch, which unit convention each row's ``amount / vol`` agrees with."""

    def __init__(self, file: str):
        self.file = file
        self.n = {"fixture": 0, "tushare": 0, "neither": 0}
        self.first: dict[str, tuple[int, str, float]] = {}

    def update(self, rows: np.ndarray, amount: np.ndarray, vol: np.ndarray, low: np.ndarray, high: np.ndarray,
               keys) -> np.ndarray:
        """Vote with one batch (``rows``: 1-based row numbers, ``keys.iloc[i]``: row labels); returns the mask of rows whose amount/vol fits neither convention."""
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = np.isfinite(amount) & (vol > 0) & (low > 0) & np.isfinite(high)
            v = np.where(ok, amount / np.where(ok, vol, 1.0), np.nan)
            lo, hi = low * (1 - TOL), high * (1 + TOL)
            masks = {"fixture": ok & (v >= lo) & (v <= hi), "tushare": ok & (10 * v >= lo) & (10 * v <= hi)}
        masks["neither"] = ok & ~masks["fixture"] & ~masks["tushare"]
        for name, m in masks.items():
            idx = np.flatnonzero(m)
            self.n[name] += int(idx.size)
            if idx.size and name not in self.first:
                i = int(idx[0])
                self.first[name] = (int(rows[i]), str(keys.iloc[i]), float(v[i]))
        return masks["neither"]

    def decide(self, units: str, report: ImportReport, what: str = "amount/vol") -> str:
        """The convention to convert from; errors for mixed or contradicting units go into ``report``."""
        nf, nt = self.n["fixture"], self.n["tushare"]
        if units == "auto":
            if nf == nt == 0:
                report.error("units_ambiguous", self.file, f"no row has both {what} to detect units from (amount "
                             "is empty or vol is 0): a wrong guess makes volume and turnover 100x off. Pass --units "
                             "fixture (vol in shares, amount in CNY) or --units tushare (lots, kCNY)", field="vol")
                chosen = "fixture"
            else:
                chosen = "fixture" if nf >= nt else "tushare"
            report.units[self.file] = f"{TRADE_DESC[chosen]} (detected: {nf} rows fit shares/CNY, {nt} rows fit lots/kCNY)"
        else:
            chosen = units
            report.units[self.file] = f"{TRADE_DESC[chosen]} (given)"
        other = "tushare" if chosen == "fixture" else "fixture"
        if self.n[other]:
            row, key, v = self.first[other]
            check = "mixed_units" if units == "auto" or self.n[chosen] else "units"
            report.error(check, self.file, f"{what} = {v:.6g} fits {TRADE_DESC[other]} but the file is read as "
                         f"{TRADE_DESC[chosen]} ({self.n[chosen]} rows fit that)", row=row, key=key,
                         field="amount", count=self.n[other])
        if self.n["neither"]:
            row, key, v = self.first["neither"]
            report.warn("amount_vol", self.file, f"{what} = {v:.6g} lies outside [low, high] in either unit "
                        "(vwap falls back to the bar's mean price there)", row=row, key=key, field="amount",
                        count=self.n["neither"])
        return chosen


def detect_share_scale(shares: np.ndarray, close: np.ndarray) -> float:
    """Multiplier that turns the share counts into shares: median float cap nearest 10^10 CNY."""
    with np.errstate(invalid="ignore"):
        cap = shares * close
    cap = cap[np.isfinite(cap) & (cap > 0)]
    if not cap.size:
        return 1.0
    med = np.log10(np.median(cap))
    return min(SHARE_SCALES, key=lambda s: abs(med + np.log10(s) - np.log10(TYPICAL_FLOAT_MCAP)))
