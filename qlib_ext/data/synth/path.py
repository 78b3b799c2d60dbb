"""Index path targets of the synthetic market (SPEC 3.2): the CSI300/CSI500/CSI1000 follow a period path.

The config's ``path`` section gives target levels of the three indexes:

* ``daily``: a package data file of real index closes (``index_targets.csv``: the real fixture's
  closes 2020-12-31 .. 2024-03-29), followed day by day;
* ``periods``: simple returns per band over periods (years or half years) before it, each split into
  calendar months with a zero-sum market and size-switch perturbation (so the period totals are exact
  and the month-to-month drift switches between large and small caps).

Control.  Day t's band index return is the weighted mean of the members' simple returns with the
weights of t-1 (:class:`~.indexes.IndexBook`).  The generator first draws the day's returns as
usual (GARCH market, industries, styles, alpha, fat-tailed noise, jumps), then adds a smooth tilt
``phi(size_i) . d`` -- a partition of unity of hat functions of the size score with knots at the
three bands' weighted mean size scores (market plus size-band tilts; flat beyond the CSI300 and CSI1000
knots, so micro caps move like the CSI1000 end) -- and solves the three tilts ``d`` by Newton's method,
through the price limits, so that the bands' returns equal the day's target::

    target_k,t = gap_k,t / rem_t + sqrt((rem_t - 1) / rem_t) * natural_k,t

with ``gap`` the log distance from the index level to the next target level, ``rem`` the sessions
left until it and ``natural`` the band's own return of the day before the tilt: a Brownian bridge
through the targets whose noise is the generator's own (GARCH, fat tails).  On daily targets
(``rem = 1``) the bands follow the target path exactly, up to cent rounding, which the next day corrects.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

BAND_NAMES = ("csi300", "csi500", "csi1000")
#: size-switch loading of each band in the monthly split (large caps +, small caps -)
SWITCH_LOADING = np.array([0.5, 0.0, -0.5])
MAX_TILT = 0.25


def read_daily_targets(name: str = "index_targets.csv") -> pd.DataFrame:
    """The packaged daily target closes (index = date, columns = bands)."""
    with resources.files(__package__).joinpath(name).open("r") as fh:
        df = pd.read_csv(fh, comment="#", index_col="date", parse_dates=["date"])
    return df[list(BAND_NAMES)].astype(float)


def _month_knots(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """Month ends strictly after ``start`` up to ``end`` (``end`` included)."""
    ends = [d for d in pd.date_range(start, end, freq="ME") if start < d < end]
    return [*ends, end]


def target_knots(pcfg: dict, seed: int) -> pd.DataFrame:
    """Target log levels of the bands at knot dates (first knot 0), from ``periods`` then ``daily``."""
    rng = np.random.default_rng([int(seed), 9])
    months = pcfg.get("months", {})
    msd, ssd, p_switch = (float(months.get(k, v)) for k, v in
                          (("market_sd", 0.04), ("size_sd", 0.03), ("switch_prob", 0.6)))
    t0 = pd.Timestamp(pcfg["start"])
    rows, level, sign = [(t0, np.zeros(3))], np.zeros(3), 1.0
    prev = t0
    for per in pcfg.get("periods", []):
        end = pd.Timestamp(per["end"])
        total = np.log1p(np.array([float(per[b]) for b in BAND_NAMES]))
        knots = _month_knots(prev, end)
        m = len(knots)
        e = rng.normal(0.0, msd, m)
        flips = rng.random(m) < p_switch
        signs = sign * np.cumprod(np.where(flips, -1.0, 1.0))
        sign = signs[-1]
        s = signs * np.abs(rng.normal(0.0, ssd, m))
        if m > 1:
            e, s = e - e.mean(), s - s.mean()
        else:
            e, s = e * 0, s * 0
        for j, day in enumerate(knots):
            level = level + total / m + e[j] + SWITCH_LOADING * s[j]
            rows.append((day, level.copy()))
        prev = end
    if pcfg.get("daily"):
        closes = read_daily_targets(pcfg["daily"])
        closes = closes[closes.index >= prev]
        if len(closes) and closes.index[0] == prev:
            logs = np.log(closes.to_numpy())
            logs = logs - logs[0] + level
            rows.extend((d, v) for d, v in zip(closes.index[1:], logs[1:]))
        elif len(closes):
            raise ValueError(f"path.daily must start on the last period end {prev.date()}, "
                             f"it starts on {closes.index[0].date()}")
    dates = pd.DatetimeIndex([r[0] for r in rows])
    return pd.DataFrame(np.array([r[1] for r in rows]), index=dates, columns=list(BAND_NAMES))


class IndexPath:
    """Per-session targets of the band index returns, for a calendar ``days``."""

    def __init__(self, cfg: dict, days: pd.DatetimeIndex):
        knots = target_knots(cfg["path"], int(cfg["seed"]))
        self.knots = knots
        T = len(days)
        # each knot lands on the last session on or before its date
        pos = np.searchsorted(days.values, knots.index.values, side="right") - 1
        inside = (pos >= 1) & (knots.index.values <= days.values[-1] + np.timedelta64(10, "D"))
        inside &= knots.index.values >= days.values[0]
        # the anchor: the target level interpolated (in calendar time) at the first session
        x = knots.index.values.astype("datetime64[D]").astype(float)
        x0 = float(days.values[0].astype("datetime64[D]").astype(float))
        anchor = np.array([np.interp(x0, x, knots[b].to_numpy()) for b in BAND_NAMES])
        self.goal = np.full((T, 3), np.nan)            # target log level (relative to 1000) on knot sessions
        for p, v in zip(pos[inside], knots.to_numpy()[inside]):
            self.goal[p] = v - anchor
        has = np.isfinite(self.goal[:, 0])
        # next knot session at or after t, and sessions left until it
        nxt = np.full(T, -1, dtype=np.int64)
        k = -1
        for t in range(T - 1, -1, -1):
            if has[t]:
                k = t
            nxt[t] = k
        self.next = nxt

    def targets(self, t: int, level: np.ndarray, natural: np.ndarray) -> np.ndarray | None:
        """Log returns the three bands should make on session t (None: no target ahead)."""
        e = self.next[t]
        if t == 0 or e < 0:
            return None
        rem = e - t + 1
        gap = self.goal[e] - (np.log(level) - np.log(1000.0))
        return gap / rem + np.sqrt((rem - 1) / rem) * natural


def hat_basis(s: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(n, 3) partition of unity over size score s; columns (csi300, csi500, csi1000), knots ascending
    (csi1000, csi500, csi300 weighted mean scores)."""
    k1, k5, k3 = knots
    phi1000 = np.clip((k5 - s) / (k5 - k1), 0.0, 1.0)
    phi300 = np.clip((s - k5) / (k3 - k5), 0.0, 1.0)
    return np.stack([phi300, 1.0 - phi300 - phi1000, phi1000], axis=1)


def solve_tilts(R: np.ndarray, lo: np.ndarray, hi: np.ndarray, trading: np.ndarray, W: np.ndarray,
                phi: np.ndarray, target: np.ndarray, iters: int = 6) -> np.ndarray:
    """Tilts d (3,) so that log(W_k . clip(exp(R + phi d), lo, hi) / W_k . 1) = target_k.

    ``W`` (3, n) are the bands' weights of yesterday (zero for non-trading stocks, whose ratio is 1);
    ``lo``/``hi`` the price-limit ratios.  Newton's method; the Jacobian drops clipped stocks.
    """
    tot = W.sum(axis=1)
    stay = (W * ~trading).sum(axis=1)              # suspended members contribute ratio 1
    Wt = W * trading
    goal = np.exp(target) * tot - stay
    d = np.zeros(3)
    for _ in range(iters):
        x = np.exp(R + phi @ d)
        ratio = np.clip(x, lo, hi)
        free = (x > lo) & (x < hi)
        f = Wt @ ratio - goal
        if np.max(np.abs(f / tot)) < 1e-9:
            break
        J = (Wt * (ratio * free)) @ phi
        try:
            step = np.linalg.solve(J + 1e-12 * np.eye(3), f)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(J, f, rcond=None)[0]
        d = np.clip(d - step, -MAX_TILT, MAX_TILT)
    return d
