"""The report's mechanisms as knobs of the synthetic market (issue 21); all off unless ``mechanisms:`` is set.

* ``spreads``: steered cross-sectional spreads.  For each window of the targets file
  (``targets``, default ``spread_targets.csv``, derived from the real fixture by :mod:`.spreads`;
  ``scale`` multiplies them), the generator adds a tilt ``sum_j a_j x_j`` to the day's returns
  (``x_j``: spread j's group indicator over all trading stocks, by the members' thresholds of the
  characteristic known at t-1, as :mod:`.spreads` computes it from the written fields), solving the
  ``a_j`` so that the day's spreads among the index members follow a Brownian bridge to the window's total::

      target_j,t = gap_j,t / rem_t + sqrt((rem_t - 1) / rem_t) * natural_j,t

  (``gap``: target minus the realised sum so far, ``rem``: sessions left, ``natural``: the day's own
  spread before the tilt; the steered change is capped at ``MAX_DAILY`` a day, stocks at a price limit
  are not tilted).  The solve counts only what survives the index path tilt, and the two alternate
  (``DailySimulator.STEER_PASSES``) with the path last, so the index closes stay on their targets.
  Crash/rebound decile windows take precedence over the half-year size / liquidity quintile windows
  that overlap them (those are steered on their other sessions).
* ``unwind``: crowded-alpha unwind: on ``start..end`` the planted alpha's strength is
  ``-months * 21 / sessions`` times its calendar strength, i.e. the window takes back ``months``
  months of the alpha's normal payoff; the crowded names (the composite's top ``turnover_top`` share)
  trade ``turnover_mult`` times their usual turnover as they are dumped.
* ``alpha_noise``: monthly strength multiplier ``1 + sd * x_m``, ``x`` a unit-variance AR(1) over
  calendar months with coefficient ``rho``, demeaned over the market's months (some months negative;
  the mean strength stays the calendar's).
* ``tails``: after the size neutralisation, the values of the signal's tails beyond ``k`` standard
  units are dealt out again within each tail in the order of ``s - top q`` (top tail) and
  ``s - bottom q`` (bottom tail), ``q`` the size normal score: small caps rise in the top tail and large
  caps sink in the bottom one.  A permutation inside each tail (the signal's values and which names are
  in a tail do not change); the bulk (``|s| <= k``) then takes the opposite size loading, so the signal
  stays size-neutral on the whole.
* ``size_tilt``: on ``start..end`` the size-neutral signal gets back a size loading, ``corr`` its
  correlation with the size score (negative: small caps, the oversold names a reversal-tilted factor
  crowds into in a crash); the composite, an exponential average of the signal, follows within days.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from .spreads import DECILES

#: group of each spread: (characteristic, quantile, tail) or a difference of two groups for *_q
GROUPS = {
    **{k: ((k, 0.1, tail),) for k, tail in DECILES.items()},
    "size_q": (("size", 0.2, "low"), ("size", 0.2, "high")),
    "liq_q": (("low_turn", 0.2, "low"), ("low_turn", 0.2, "high")),
}
MAX_STEER = 0.05   # largest steering loading (log return per unit exposure) on a day
MAX_DAILY = 0.06   # largest steered change of a day's spread (the bridge spreads a larger gap over days)


def read_spread_targets(name: str = "spread_targets.csv") -> pd.DataFrame:
    """The packaged spread targets: rows (window, start, end, spread, value)."""
    with resources.files(__package__).joinpath(name).open("r") as fh:
        return pd.read_csv(fh, comment="#", parse_dates=["start", "end"])


def pct_rank(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average-rank percentiles (pandas ``rank(pct=True)``) over ``mask``; NaN elsewhere."""
    from scipy.stats import rankdata

    out = np.full(x.shape, np.nan)
    if mask.any():
        out[mask] = rankdata(x[mask]) / mask.sum()
    return out


def monthly_noise(days: pd.DatetimeIndex, sd: float, rho: float, seed: int) -> np.ndarray:
    """Per-session multiplier ``1 + sd * x_month`` with x a unit-variance AR(1) over calendar months."""
    months = days.year * 12 + days.month
    m0 = months.min()
    k = months.max() - m0 + 1
    e = np.random.default_rng([int(seed), 21]).standard_normal(k)
    x = np.empty(k)
    x[0] = e[0]
    for i in range(1, k):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * e[i]
    return 1.0 + sd * (x - x.mean())[np.asarray(months - m0)]


class Mechanisms:
    """State of the issue-21 mechanisms for a calendar ``days`` (``cfg['mechanisms']``)."""

    def __init__(self, mcfg: dict, days: pd.DatetimeIndex, seed: int):
        self.cfg, self.days = mcfg, days
        T = len(days)
        nz = mcfg.get("alpha_noise")
        self.noise = monthly_noise(days, float(nz["sd"]), float(nz.get("rho", 0.5)), seed) if nz else np.ones(T)
        self.unwind = np.zeros(T, dtype=bool)
        uw = mcfg.get("unwind")
        self.unwind_mult, self.unwind_turn = 0.0, (1.0, 0.0)
        if uw:
            self.unwind_turn = (float(uw.get("turnover_mult", 1.0)), float(uw.get("turnover_top", 0.1)))
            self.unwind = (days >= pd.Timestamp(uw["start"])) & (days <= pd.Timestamp(uw["end"]))
            self.unwind_mult = -float(uw["months"]) * 21.0 / max(int(self.unwind.sum()), 1)
        self.tails = mcfg.get("tails") or {}
        st = mcfg.get("size_tilt")
        self.size_tilt = np.zeros(T)
        if st:
            on = (days >= pd.Timestamp(st["start"])) & (days <= pd.Timestamp(st["end"]))
            self.size_tilt[on] = float(st["corr"])
        self.windows = self._windows(mcfg.get("spreads"))
        self.realised = {w["name"]: {j: 0.0 for j in w["targets"]} for w in self.windows}
        self._groups: list | None = None
        self._steering: tuple | None = None

    def _windows(self, scfg: dict | None) -> list[dict]:
        if not scfg:
            return []
        tab = read_spread_targets(scfg.get("targets", "spread_targets.csv"))
        scale = float(scfg.get("scale", 1.0))
        out = []
        for name, g in tab.groupby("window", sort=False):
            start, end = g["start"].iloc[0], g["end"].iloc[0]
            # only windows the market covers whole, after 20 sessions of warm-up for the characteristics
            if len(self.days) <= 20 or start < self.days[20] or end > self.days[-1] + pd.Timedelta(days=5):
                continue
            sess = (self.days >= start) & (self.days <= end)
            deciles = set(g["spread"]) <= set(DECILES)
            out.append({"name": name, "sessions": sess, "steer": sess.copy(), "priority": deciles,
                        "targets": {j: scale * float(v) for j, v in zip(g["spread"], g["value"])}})
        busy = np.zeros(len(self.days), dtype=bool)
        for w in out:
            if w["priority"]:
                busy |= w["sessions"]
        for w in out:
            if not w["priority"]:
                w["steer"] = w["sessions"] & ~busy
        return out

    # -- planted alpha -------------------------------------------------------------------
    def strength_mult(self, t: int) -> float:
        """Multiplier of the calendar strength on session t (noise; the unwind replaces it)."""
        return self.unwind_mult if self.unwind[t] else float(self.noise[t])

    def turnover_mult(self, t: int, composite: np.ndarray, trading: np.ndarray) -> np.ndarray | float:
        """Turnover multiplier of session t: the unwind's crowded names (top of the composite) trade more."""
        mult, top = self.unwind_turn
        if not self.unwind[t] or mult == 1.0 or trading.sum() < 10:
            return 1.0
        cut = np.quantile(composite[trading], 1 - top)
        return np.where(trading & (composite >= cut), mult, 1.0)

    def shape_signal(self, t: int, signal: np.ndarray, size: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Tail size loadings, then size neutralisation, then the ``size_tilt`` of session t (if any)."""
        beta = (signal[mask] @ size[mask]) / max(size[mask] @ size[mask], 1e-12)
        out = np.where(mask, signal - beta * size, 0.0)
        sd = out[mask].std() if mask.sum() > 2 else 0.0
        if self.tails and sd > 0:
            z, k = out / sd, float(self.tails.get("k", 1.0))
            for tail, w in ((mask & (z > k), float(self.tails.get("top", 0))),
                            (mask & (z < -k), float(self.tails.get("bottom", 0)))):
                idx = np.flatnonzero(tail)
                if idx.size > 1 and w:
                    order = idx[np.argsort(z[idx] - w * size[idx], kind="stable")]
                    z[order] = np.sort(z[idx])
            bulk = mask & (np.abs(z) <= k)
            if bulk.sum() > 2:
                z = np.where(bulk, z - (z[mask] @ size[mask]) / max(size[bulk] @ size[bulk], 1e-12) * size, z)
            out = np.where(mask, sd * z, 0.0)
        rho = self.size_tilt[t]
        if rho and mask.sum() > 2:  # corr(out + b size, size) = rho, out orthogonal to size
            b = rho / np.sqrt(1 - rho**2) * out[mask].std() / max(size[mask].std(), 1e-12)
            out = np.where(mask, out + b * size, 0.0)
        return out

    # -- steered spreads -------------------------------------------------------------------
    def _groups_of(self, w: dict, chars: dict[str, np.ndarray], members: np.ndarray) -> dict[str, tuple]:
        """Each target spread's (group masks, members with that characteristic): one group, or the low
        and high groups of a quintile spread; as :func:`.spreads._group_spread` forms them."""
        out = {}
        for j in w["targets"]:
            c = GROUPS[j][0][0]
            mem = members & np.isfinite(chars[c])
            pct = pct_rank(np.nan_to_num(chars[c]), mem)
            sets = [(pct <= q) if tail == "low" else (pct > 1 - q) for _, q, tail in GROUPS[j]]
            out[j] = ([np.nan_to_num(g, nan=0).astype(bool) & mem for g in sets], mem)
        return out

    def steer(self, t: int, R: np.ndarray, lo: np.ndarray, hi: np.ndarray, chars: dict[str, np.ndarray],
              members: np.ndarray, trading: np.ndarray, project=None) -> np.ndarray | None:
        """The day's spread tilt (n,) or None outside the windows; remembers the day's groups.

        ``chars``: the characteristics known at t-1 (NaN where :mod:`.spreads` has none); ``members``:
        the index members of t-1; ``project``: maps a tilt to what remains of it after the index path's
        correction (the path tilt restores the bands' returns), so the solve counts only what survives.
        """
        self._groups, self._steering = [], None
        members = members & trading
        if members.sum() < 10:
            return None
        steering = None
        for w in self.windows:
            if w["sessions"][t]:
                self._groups.append((w, self._groups_of(w, chars, members)))
                if w["steer"][t]:
                    steering = self._groups[-1]
        if steering is None:
            return None
        w, groups = steering
        x = np.stack([self._exposure(j, chars, groups[j][1], trading) for j in w["targets"]])
        xp = np.stack([project(xk) for xk in x]) if project is not None else x
        rem = int(w["steer"][t:].sum())
        names = list(w["targets"])
        natural = self._spreads(np.clip(np.exp(R), lo, hi) - 1, names, groups)
        gap = np.array([w["targets"][j] - self.realised[w["name"]][j] for j in names])
        want = gap / rem + np.sqrt((rem - 1) / rem) * natural
        want = natural + np.clip(want - natural, -MAX_DAILY, MAX_DAILY)
        self._steering = (names, groups, x, xp, want)
        return self.refine(R, lo, hi)

    def refine(self, R: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
        """A tilt that moves the day's spreads of ``R`` (through the price limits) onto the day's
        steered values; stocks at a limit count as having no exposure and get no tilt."""
        if self._steering is None:
            return None
        names, groups, x, xp, want = self._steering
        e = np.exp(R)
        free = (e > lo) & (e < hi)
        now = self._spreads(np.clip(e, lo, hi) - 1, names, groups)
        M = np.array([self._spreads(xk * free * e, names, groups) for xk in xp]).T
        keep = np.abs(np.diag(M)) >= 0.1  # a group sitting at its price limits is not steered today
        a = np.zeros(len(x))
        if keep.any():
            Mk = M[np.ix_(keep, keep)]
            a[keep] = np.linalg.lstsq(Mk.T @ Mk + 1e-6 * np.eye(int(keep.sum())), Mk.T @ (want - now)[keep], rcond=None)[0]
        # stocks at a limit are left alone and no stock is pushed through one: a steered move cut by a
        # limit would come back through the limit carry the next day and feed on itself
        tilt = np.clip(a, -MAX_STEER, MAX_STEER) @ x
        return np.where(free, np.clip(R + tilt, np.log(lo), np.log(hi)) - R, 0.0)

    @staticmethod
    def _exposure(j: str, chars: dict[str, np.ndarray], mem: np.ndarray, trading: np.ndarray) -> np.ndarray:
        """Spread j's steering exposure: its group's indicator (minus the opposite group's for a quintile
        spread) over every trading stock, non-members included, by the members' quantile thresholds."""
        out = np.zeros(mem.size)
        for sign, (c, q, tail) in zip((1.0, -1.0), GROUPS[j]):
            v = chars[c]
            ok = trading & np.isfinite(v)
            if tail == "low":
                out += sign * (ok & (np.nan_to_num(v) <= np.quantile(v[mem], q)))
            else:
                out += sign * (ok & (np.nan_to_num(v) >= np.quantile(v[mem], 1 - q)))
        return out

    @staticmethod
    def _spreads(v: np.ndarray, names: list[str], groups: dict) -> np.ndarray:
        """Spreads of ``v``: a group's mean minus its members' mean, or the low group's minus the high's."""
        out = []
        for j in names:
            sets, mem = groups[j]
            if not all(g.any() for g in sets):
                out.append(0.0)
            elif len(sets) == 2:
                out.append(float(v[sets[0]].mean() - v[sets[1]].mean()))
            else:
                out.append(float(v[sets[0]].mean() - v[mem].mean()))
        return np.array(out)

    def record(self, change: np.ndarray) -> None:
        """Add the day's realised spreads (simple returns of the groups formed at t-1)."""
        ok = np.isfinite(change)
        v = np.nan_to_num(change)
        for w, groups in self._groups or []:
            here = {j: ([g & ok for g in sets], mem & ok) for j, (sets, mem) in groups.items()}
            for j, val in zip(here, self._spreads(v, list(here), here)):
                self.realised[w["name"]][j] += val
