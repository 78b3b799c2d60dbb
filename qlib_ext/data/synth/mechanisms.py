"""The report's mechanisms as knobs of the synthetic market (issue 21); all off unless ``mechanisms:`` is set.

* ``spreads``: steered cross-sectional spreads.  For each window of the targets file
  (``spread_targets.csv``, derived from the real fixture by :mod:`.spreads`), the generator adds a
  smooth tilt ``sum_k a_k x_k`` (``x_k``: normal scores over the trading stocks of the sort
  characteristics, known at t-1) to the day's returns, solving the ``a_k`` so that the day's group
  spreads among the index members follow a Brownian bridge to the window's total::

      target_j,t = gap_j,t / rem_t + sqrt((rem_t - 1) / rem_t) * natural_j,t

  (``gap``: target minus the realised sum so far, ``rem``: sessions left, ``natural``: the day's own
  spread before the tilt).  Crash/rebound decile windows take precedence over the half-year style
  windows (size and liquidity quintiles) that overlap them; the index path tilt comes after, so the
  index closes stay on their targets.
* ``unwind``: crowded-alpha unwind: on ``start..end`` the planted alpha's strength is
  ``-months * 21 / sessions`` times its calendar strength, i.e. the window takes back ``months``
  months of the alpha's normal payoff.
* ``alpha_noise``: monthly strength multiplier ``1 + sd * x_m``, ``x`` a unit-variance AR(1) over
  calendar months with coefficient ``rho`` (some months negative).
* ``tails``: after the size neutralisation, the signal ``s`` (z units) becomes
  ``s + top * (-q)+ (s - k)+ - bottom * q+ (-s - k)+`` (``q``: size normal score): beyond ``k`` standard
  units, small caps rise further into the top tail and large caps sink further into the bottom one; the
  bulk is untouched.
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
MAX_STEER = 0.08


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
    return 1.0 + sd * x[np.asarray(months - m0)]


class Mechanisms:
    """State of the issue-21 mechanisms for a calendar ``days`` (``cfg['mechanisms']``)."""

    def __init__(self, mcfg: dict, days: pd.DatetimeIndex, seed: int):
        self.cfg, self.days = mcfg, days
        T = len(days)
        nz = mcfg.get("alpha_noise")
        self.noise = monthly_noise(days, float(nz["sd"]), float(nz.get("rho", 0.5)), seed) if nz else np.ones(T)
        self.unwind = np.zeros(T, dtype=bool)
        uw = mcfg.get("unwind")
        self.unwind_mult = 0.0
        if uw:
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
        self.debug: list | None = None

    def _windows(self, scfg: dict | None) -> list[dict]:
        if not scfg:
            return []
        tab = read_spread_targets(scfg.get("targets", "spread_targets.csv"))
        scale = float(scfg.get("scale", 1.0))
        out = []
        for name, g in tab.groupby("window", sort=False):
            sess = (self.days >= g["start"].iloc[0]) & (self.days <= g["end"].iloc[0])
            if not sess.any():
                continue
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

    def shape_signal(self, t: int, signal: np.ndarray, size: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Tail size loadings, then size neutralisation, then the ``size_tilt`` of session t (if any)."""
        beta = (signal[mask] @ size[mask]) / max(size[mask] @ size[mask], 1e-12)
        out = np.where(mask, signal - beta * size, 0.0)
        sd = out[mask].std() if mask.sum() > 2 else 0.0
        if self.tails and sd > 0:
            z, k = out / sd, float(self.tails.get("k", 1.0))
            up = float(self.tails.get("top", 0)) * np.maximum(-size, 0) * np.maximum(z - k, 0)
            down = float(self.tails.get("bottom", 0)) * np.maximum(size, 0) * np.maximum(-z - k, 0)
            out = np.where(mask, out + sd * (up - down), 0.0)
        rho = self.size_tilt[t]
        if rho and mask.sum() > 2:  # corr(out + b size, size) = rho, out orthogonal to size
            b = rho / np.sqrt(1 - rho**2) * out[mask].std() / max(size[mask].std(), 1e-12)
            out = np.where(mask, out + b * size, 0.0)
        return out

    # -- steered spreads -------------------------------------------------------------------
    def _groups_of(self, w: dict, chars: dict[str, np.ndarray], mem: np.ndarray) -> dict[str, list[np.ndarray]]:
        """Each target spread's group masks (one, or low and high for the quintile spreads) among ``mem``."""
        pct = {k: pct_rank(chars[k], mem) for k in {g[0] for j in w["targets"] for g in GROUPS[j]}}
        out = {}
        for j in w["targets"]:
            sets = [(pct[c] <= q) if tail == "low" else (pct[c] > 1 - q) for c, q, tail in GROUPS[j]]
            out[j] = [np.nan_to_num(s, nan=0).astype(bool) & mem for s in sets]
        return out

    def steer(self, t: int, R: np.ndarray, lo: np.ndarray, hi: np.ndarray, chars: dict[str, np.ndarray],
              members: np.ndarray, trading: np.ndarray, valid: np.ndarray, project=None) -> np.ndarray | None:
        """The day's spread tilt (n,) or None outside the windows; remembers the day's groups.

        ``project``: maps a tilt to what remains of it after the index path's correction (the path tilt
        restores the bands' returns), so the solve counts only the part of each exposure that survives.
        """
        self._groups, self._steering = [], None
        mem = members & trading & valid
        if mem.sum() < 10:
            return None
        steering = None
        for w in self.windows:
            if w["sessions"][t]:
                self._groups.append((w, self._groups_of(w, chars, mem), mem))
                if w["steer"][t]:
                    steering = self._groups[-1]
        if steering is None:
            return None
        w, groups, _ = steering
        x = np.stack([self._exposure(j, chars, mem, trading & valid) for j in w["targets"]])
        xp = np.stack([project(xk) for xk in x]) if project is not None else x
        rem = int(w["steer"][t:].sum())
        names = list(w["targets"])
        natural = self._spreads(np.clip(np.exp(R), lo, hi) - 1, names, groups, mem)
        gap = np.array([w["targets"][j] - self.realised[w["name"]][j] for j in names])
        want = gap / rem + np.sqrt((rem - 1) / rem) * natural
        self._steering = (names, groups, mem, x, xp, want)
        if self.debug is not None:
            self.debug.append((t, w["name"], rem, natural.round(4), want.round(4)))
        return self.refine(R, lo, hi)

    def refine(self, R: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
        """A tilt that moves the day's spreads of ``R`` (through the price limits) onto the day's
        steered values; exposures of stocks at a limit count as zero."""
        if self._steering is None:
            return None
        names, groups, mem, x, xp, want = self._steering
        e = np.exp(R)
        free = (e > lo) & (e < hi)
        now = self._spreads(np.clip(e, lo, hi) - 1, names, groups, mem)
        M = np.array([[self._spread(xk * free * e, groups[j], mem) for xk in xp] for j in names])
        a = np.linalg.lstsq(M.T @ M + 1e-6 * np.eye(len(x)), M.T @ (want - now), rcond=None)[0]
        if self.debug is not None:
            self.debug.append(("refine", (want - now).round(4), a.round(4), np.linalg.cond(M).round(1)))
        return np.clip(a, -MAX_STEER, MAX_STEER) @ x

    @staticmethod
    def _exposure(j: str, chars: dict[str, np.ndarray], mem: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Spread j's steering exposure: its group's indicator (minus the opposite group's for a quintile
        spread) over every trading stock, non-members included, by the members' quantile thresholds."""
        out = np.zeros(mem.size)
        for sign, (c, q, tail) in zip((1.0, -1.0), GROUPS[j]):
            v = chars[c]
            if tail == "low":
                out += sign * (ok & (v <= np.quantile(v[mem], q)))
            else:
                out += sign * (ok & (v >= np.quantile(v[mem], 1 - q)))
        return out

    def _spreads(self, v: np.ndarray, names: list[str], groups: dict, mem: np.ndarray) -> np.ndarray:
        return np.array([self._spread(v, groups[j], mem) for j in names])

    @staticmethod
    def _spread(v: np.ndarray, sets: list[np.ndarray], mem: np.ndarray) -> float:
        if len(sets) == 2:
            return float(v[sets[0]].mean() - v[sets[1]].mean()) if sets[0].any() and sets[1].any() else 0.0
        return float(v[sets[0]].mean() - v[mem].mean()) if sets[0].any() else 0.0

    def record(self, change: np.ndarray) -> None:
        """Add the day's realised spreads (simple returns of the groups formed at t-1)."""
        for w, groups, mem in self._groups or []:
            ok = mem & np.isfinite(change)
            for j, sets in groups.items():
                self.realised[w["name"]][j] += self._spread(np.nan_to_num(change), [s & ok for s in sets], ok)
