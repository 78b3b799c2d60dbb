"""CSI-style indexes of the synthetic market: market-cap rank bands, point-in-time weights, levels.

Rule (documented so tests and users can recompute it from the dataset):

* reconstitution on the first session after the second Friday of June and of December, and on
  the first session of the span;
* eligible: listed on the effective session and listed for at least ``min_listed_sessions``
  sessions before it (stocks listed on the first session of the span count as seasoned);
* score: mean total market cap (``mcap``) over the last ``rank_window`` listed sessions before the
  effective session (the first session's own ``mcap`` on the first session);
* CSI300 = the top ``index_bands.csi300`` scores, CSI500 the next band, CSI1000 the next;
  no buffer zones; a member that delists leaves on its last session and is not replaced;
* weight of member i on day t = float_mcap_it / sum over members (so weights sum to 1 each day);
* index return on day t = sum_i w_{i,t-1} (close_it / close_{i,t-1} - 1) over yesterday's members
  (0 for a member suspended or delisted on t); CSI All Share (SH000985) weights all listed stocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...schema import ALL_SHARE, BENCHMARKS, INDEX_FIELDS, PRICE_FIELDS
from ...schema import INDEX_INSTRUMENTS as INDEX_CODES  # benchmark name -> Qlib instrument of the index

BANDS = tuple(BENCHMARKS)
__all__ = ["BANDS", "INDEX_CODES", "INDEX_FIELDS", "IndexBook", "reconstitution_days"]


def reconstitution_days(days: pd.DatetimeIndex) -> np.ndarray:
    """Calendar indices of the semiannual effective sessions (after the 2nd Friday of Jun/Dec)."""
    out = []
    for year in range(days[0].year, days[-1].year + 1):
        for month in (6, 12):
            first = pd.Timestamp(year, month, 1)
            fridays = pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="W-FRI")
            k = int(np.searchsorted(days, fridays[1], side="right"))
            if 0 < k < len(days):
                out.append(k)
    return np.array(sorted(set(out)), dtype=np.int64)


class IndexBook:
    """Tracks band membership, writes ``w_<band>`` weights into each day's record, builds index bars."""

    def __init__(self, cfg: dict, n: int, days: pd.DatetimeIndex):
        self.bands = {b: int(cfg["index_bands"][b]) for b in BANDS}
        self.window, self.min_listed = int(cfg["rank_window"]), int(cfg["min_listed_sessions"])
        self.n, self.days = n, days
        self.recon = set(reconstitution_days(days).tolist())
        self.mcap_ring = np.full((self.window, n), np.nan)
        self.sessions = np.zeros(n, dtype=np.int64)        # listed sessions before today
        self.members = {b: np.zeros(n, dtype=bool) for b in BANDS}
        self.since = {b: np.full(n, -1, dtype=np.int64) for b in BANDS}
        self.spans: dict[str, list[tuple[int, int, int]]] = {b: [] for b in BANDS}
        self.prev_w = {b: np.zeros(n) for b in (*BANDS, ALL_SHARE)}
        self.level = {b: 1000.0 for b in INDEX_CODES}
        self.bars = {b: {f: np.full(len(days), np.nan) for f in INDEX_FIELDS} for b in INDEX_CODES}

    def _rank(self, t: int, rec: dict) -> None:
        listed = rec["_listed"]
        if t == 0:
            score, eligible = rec["mcap"].copy(), listed.copy()
        else:
            seen = np.isfinite(self.mcap_ring)
            score = np.where(seen, self.mcap_ring, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
            eligible = listed & (self.sessions >= self.min_listed)
        score = np.where(eligible & np.isfinite(score), score, -np.inf)
        order = np.argsort(-score, kind="stable")
        start = 0
        for b in BANDS:
            pick = order[start : start + self.bands[b]]
            pick = pick[np.isfinite(score[pick])]
            new = np.zeros(self.n, dtype=bool)
            new[pick] = True
            self._set_members(b, new, t)
            start += self.bands[b]

    def _set_members(self, b: str, new: np.ndarray, t: int) -> None:
        old = self.members[b]
        for i in np.flatnonzero(old & ~new):
            self.spans[b].append((int(i), int(self.since[b][i]), t - 1))
        self.since[b][new & ~old] = t
        self.members[b] = new

    def update(self, t: int, rec: dict) -> None:
        """Advance one session: reconstitute if due, add ``w_*`` to ``rec``, extend the index bars."""
        listed = rec["_listed"]
        for b in BANDS:                                     # delisted members leave
            self._set_members(b, self.members[b] & listed, t)
        if t == 0 or t in self.recon:
            self._rank(t, rec)

        prev_close = rec["close"] / (1 + rec["change"])
        traded = np.isfinite(rec["close"])
        ratio = {f: np.where(traded, rec[f] / np.where(traded, prev_close, 1.0), 1.0) for f in PRICE_FIELDS}
        member_sets = {**self.members, ALL_SHARE: listed}
        fm = np.nan_to_num(rec["float_mcap"])
        for b, mem in member_sets.items():
            pw = self.prev_w[b]
            bars = self.bars[b]
            if t == 0 or pw.sum() == 0:
                lvl = {f: self.level[b] for f in ratio}
            else:
                lvl = {f: self.level[b] * float(pw @ ratio[f]) / pw.sum() for f in ratio}
            bars["open"][t], bars["close"][t] = lvl["open"], lvl["close"]
            bars["high"][t] = max(lvl["high"], lvl["open"], lvl["close"])
            bars["low"][t] = min(lvl["low"], lvl["open"], lvl["close"])
            bars["change"][t] = lvl["close"] / self.level[b] - 1 if t else np.nan
            bars["volume"][t] = float(np.nansum(np.where(mem, rec["volume"], 0.0)))
            bars["amount"][t] = float(np.nansum(np.where(mem, rec["amount"], 0.0)))
            bars["factor"][t] = 1.0
            self.level[b] = lvl["close"]
            w = np.where(mem, fm, 0.0)
            w = w / w.sum() if w.sum() > 0 else w
            self.prev_w[b] = w
            if b != ALL_SHARE:
                rec[BENCHMARKS[b].weight_field] = np.where(listed, w, np.nan)

        self.mcap_ring[t % self.window] = np.where(listed, rec["mcap"], np.nan)
        self.sessions += listed
        if t == 0:  # stocks already listed when the span starts count as seasoned
            self.sessions[listed] = self.min_listed

    def close_spans(self, last: int) -> dict[str, list[tuple[int, int, int]]]:
        """Membership spans (instrument position, first, last session) including the open ones."""
        out = {}
        for b in BANDS:
            open_spans = [(int(i), int(self.since[b][i]), last) for i in np.flatnonzero(self.members[b])]
            out[b] = sorted(self.spans[b] + open_spans)
        return out
