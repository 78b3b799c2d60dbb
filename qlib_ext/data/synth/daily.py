"""Day-by-day simulation of the synthetic market's daily bars (vectorised over instruments).

Log return of stock i on day t (before price limits)::

    R_it = beta_i m_t + g_{ind(i),t} + sum_s X_is,t f_s,t + alpha_it + eps_it + J_it + carry_it

* ``m``: market factor, Student-t shocks with GARCH(1,1) variance; ``g``: industry factors;
* ``X``: style exposures from the state (size = normal score of the ln mcap rank, liquidity = z(ln 20d turnover),
  volatility = z(20d std), momentum = z(return t-252..t-21)), ``f``: their factor returns, with the
  regime drifts of the config (small caps win from 2021H2, crash 2024-01-22..02-07, rebound);
* ``alpha``: the planted, decaying price-volume alpha: ``alpha_t = strength_t (1-decay) E_t`` with
  ``E_t = decay E_{t-1} + S_{t-1}``, ``S`` the weighted sum of z-scored descriptors (5-day reversal,
  20-day low volatility, 20-day low turnover, weeks 2-4 reversal, 10-day latent intraday q),
  made cross-sectionally neutral to size so that size returns come from the regimes alone;
* ``eps``: idiosyncratic Student-t; ``J``: news jumps (up more often than down, small caps more);
* ``carry``: the part of yesterday's move cut off by a price limit (and moves missed while suspended).

The close is clipped to the limits (main board 10%, ChiNext 20% after its reform, STAR 20%) and
rounded to cents; a limit close can be a one-word board (open = high = low = close).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .indexes import BANDS
from .mechanisms import Mechanisms
from .minute import day_q
from .path import IndexPath, hat_basis, solve_tilts
from .universe import Universe, limit_pct

STYLES = ("size", "liquidity", "volatility", "momentum")
DESCRIPTORS = ("reversal_5d", "low_vol_20d", "low_turn_20d", "weekly_reversal", "intraday")


def zscore(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score over ``mask`` (others 0), clipped at +-4."""
    out = np.zeros_like(x, dtype=float)
    if mask.sum() < 3:
        return out
    v = x[mask]
    sd = v.std()
    if sd > 0:
        out[mask] = np.clip((v - v.mean()) / sd, -4, 4)
    return out


def rank_normal(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Cross-sectional normal scores of ranks over ``mask`` (others 0): bounded, tail-free z."""
    from scipy.special import ndtri

    out = np.zeros_like(x, dtype=float)
    k = int(mask.sum())
    if k < 3:
        return out
    ranks = np.argsort(np.argsort(x[mask], kind="stable"), kind="stable")
    out[mask] = ndtri((ranks + 0.5) / k)
    return out


def alpha_multiplier(calendar, day: pd.Timestamp) -> float:
    """Strength multiplier of the alpha calendar ``[[date, mult], ...]`` on ``day``: linear between the
    dated knots, flat before the first and after the last; 1 without a calendar."""
    if not calendar:
        return 1.0
    x = [float(pd.Timestamp(d).value) for d, _ in calendar]
    return float(np.interp(float(day.value), x, [float(m) for _, m in calendar]))


def _student(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Unit-variance Student-t draws."""
    return rng.standard_t(df, size) * np.sqrt((df - 2) / df)


class DailySimulator:
    """Holds the market state; :meth:`step` advances one session and returns that day's fields."""

    STEER_PASSES = 3  # steered-spread / index-path alternations on a steered session (mechanisms)

    def __init__(self, cfg: dict, universe: Universe, days: pd.DatetimeIndex, rng: np.random.Generator):
        self.cfg, self.u, self.days, self.rng = cfg, universe, days, rng
        n = universe.n
        self.n = n
        self.price = universe.init_price.astype(float).copy()     # last traded close
        self.carry = np.zeros(n)
        self.susp_left = np.zeros(n, dtype=np.int64)
        self.turn_state = np.zeros(n)
        self.prev_up = np.zeros(n, dtype=bool)
        self.prev_dn = np.zeros(n, dtype=bool)
        self.alpha_e = np.zeros(n)
        self.signal = np.zeros(n)
        self.r20 = np.zeros((20, n))
        self.t20 = np.zeros((20, n))
        self.q10 = np.zeros((10, n))
        self.r252 = np.zeros((252, n))
        self.listed_sessions = np.zeros(n, dtype=np.int64)
        ret = cfg["returns"]
        self.h = ret["market_vol"] ** 2
        self.last_m_shock = 0.0
        self.regimes = [
            (pd.Timestamp(r["start"]), pd.Timestamp(r["end"]), r) for r in cfg.get("regimes", [])
        ]
        self.t0 = days[0]
        self.path = IndexPath(cfg, days) if cfg.get("path") else None
        self.style_rows: list[tuple] = []
        mcfg = cfg.get("mechanisms")
        self.mech = Mechanisms(mcfg, days, int(cfg["seed"])) if mcfg else None
        if self.mech is not None:  # the dataset's own fields, as :mod:`.spreads` reads them (NaN = none)
            self.m_change = np.full((20, n), np.nan)
            self.m_turn = np.full((20, n), np.nan)
            self.m_close = np.full((6, n), np.nan)
        self.alpha_rows: list[tuple] = []

    # -- helpers ---------------------------------------------------------------------------
    def _regime(self, day: pd.Timestamp) -> dict:
        out = {"market": 0.0, "vol_mult": 1.0, **{s: 0.0 for s in STYLES}}
        for start, end, r in self.regimes:
            if start <= day <= end:
                out.update({k: v for k, v in r.items() if k not in ("start", "end")})
        return out

    def exposures(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Style exposures X_s (z-scores over ``mask``) from the current state."""
        mcap = self.price * self.u.total_shares
        turn20 = self.t20.mean(axis=0)
        mom = self.r252.sum(axis=0) - self._last(self.r252, 21).sum(axis=0)
        return {
            "size": rank_normal(np.log(mcap), mask),
            "liquidity": zscore(np.log(np.maximum(turn20, 1e-6)), mask),
            "volatility": zscore(self.r20.std(axis=0), mask),
            "momentum": zscore(mom, mask),
        }

    def _last(self, ring: np.ndarray, k: int) -> np.ndarray:
        """The last k rows written to a ring buffer indexed by session count."""
        L = ring.shape[0]
        idx = (np.arange(self._t - k + 1, self._t + 1)) % L
        return ring[idx]

    # -- one session -----------------------------------------------------------------------
    def _path_tilt(self, t: int, R, prev, up, dn, trading, listed, book) -> np.ndarray | None:
        """Per-stock drift (market + size-band tilts) that puts the bands on their target path."""
        W = np.stack([book.prev_w[b] for b in BANDS])
        tot = W.sum(axis=1)
        if t == 0 or (tot <= 0).any():
            return None
        lo, hi = dn / prev, up / prev
        ratio = np.where(trading, np.clip(np.exp(R), lo, hi), 1.0)
        natural = np.log(W @ ratio / tot)
        target = self.path.targets(t, np.array([book.level[b] for b in BANDS]), natural)
        if target is None:
            return None
        phi = self._band_basis(W, listed)
        d = solve_tilts(R, lo, hi, trading, W, phi, target)
        return phi @ d

    def _band_basis(self, W: np.ndarray, listed: np.ndarray) -> np.ndarray:
        """The path tilt's (n, 3) hat basis of the size score, knots at the bands' weighted mean scores."""
        s = rank_normal(np.log(self.price * self.u.total_shares), listed)
        k300, k500, k1000 = W @ s / W.sum(axis=1)
        k500 = max(k500, k1000 + 0.05)
        k300 = max(k300, k500 + 0.05)
        return hat_basis(s, np.array([k1000, k500, k300]))

    def step(self, t: int, book=None) -> dict[str, np.ndarray]:
        """Simulate session ``t``; returns float arrays (n,) of the day's fields (NaN = not listed).

        ``book`` (the :class:`~.indexes.IndexBook`, updated through t-1) lets the index path steer the
        day's band returns (:mod:`.path`); without it the market runs free.
        """
        cfg, u, rng, n = self.cfg, self.u, self.rng, self.n
        ret, turn_cfg, sus = cfg["returns"], cfg["turnover"], cfg["suspension"]
        self._t = t - 1  # ring buffers hold data through t-1
        day = self.days[t]
        reg = self._regime(day)
        vm = reg["vol_mult"]

        listed = (u.list_idx <= t) & (t <= u.delist_idx)
        new = u.list_idx == t
        self.price[new] = u.init_price[new]

        # suspensions: ongoing spells tick down, new spells start (not on the first 5 days of a listing)
        self.susp_left = np.maximum(self.susp_left - 1, 0)
        p_start = sus["start_prob_pre2019"] if day < pd.Timestamp("2019-06-01") else sus["start_prob"]
        starts = listed & (self.susp_left == 0) & (self.listed_sessions >= 5) & (rng.random(n) < p_start)
        lengths = 1 + np.minimum(np.floor(rng.lognormal(sus["log_len_mu"], sus["log_len_sigma"], n)), sus["max_len"])
        self.susp_left[starts] = lengths[starts].astype(np.int64)
        paused = listed & (self.susp_left > 0)
        trading = listed & ~paused

        # factor returns
        a, b = ret["garch"]
        omega = ret["market_vol"] ** 2 * (1 - a - b)
        self.h = omega + a * self.last_m_shock**2 + b * self.h
        m_shock = np.sqrt(self.h) * _student(rng, ret["tail_df"], None)
        self.last_m_shock = m_shock
        m = reg["market"] + vm * m_shock
        g = vm * ret["industry_vol"] * rng.standard_normal(31)
        X = self.exposures(trading)
        systematic = u.beta * m + g[u.industry_idx]
        for s in STYLES:
            systematic += X[s] * (reg[s] + vm * ret["style_vol"][s] * rng.standard_normal())

        # planted alpha (signal computed from data through t-1)
        acfg = cfg["alpha"]
        years = (day - self.t0).days / 365.25
        strength = acfg["strength"] * 0.5 ** (years / acfg["half_life_years"]) * alpha_multiplier(acfg.get("calendar"), day)
        if self.mech is not None:
            strength *= self.mech.strength_mult(t)
        self.alpha_e = acfg["decay"] * self.alpha_e + self.signal
        alpha = strength * (1 - acfg["decay"]) * self.alpha_e

        vol_state = np.sqrt(self.h) / ret["market_vol"]
        eps = u.idio_vol * np.sqrt(vol_state) * vm * _student(rng, ret.get("idio_tail_df", ret["tail_df"]), n)
        jump_draw = rng.random(n)
        jump_size = rng.uniform(*ret["jump_size"], n)
        jump = np.where(jump_draw < ret["jump_up_prob"] * u.jump_scale, jump_size, 0.0)
        jump = np.where(jump_draw > 1 - ret["jump_down_prob"] * u.jump_scale, -jump_size, jump)
        # jumps are compensated (zero mean) so they create limit days without a price drift
        mean_jump = np.mean(ret["jump_size"]) * u.jump_scale * (ret["jump_up_prob"] - ret["jump_down_prob"])
        R = systematic + alpha + eps + jump - mean_jump + self.carry

        prev = self.price.copy()
        lim = limit_pct(u, day, cfg)
        up = np.round(prev * (1 + lim), 2)
        dn = np.round(prev * (1 - lim), 2)
        steered = False
        if self.mech is not None and book is not None and t > 0:
            tilt = self._steer(t, R, prev, up, dn, trading, book)
            if tilt is not None:
                steered = True
                systematic = systematic + tilt
                R = R + tilt
        for it in range(self.STEER_PASSES if steered else 1):
            if it:  # the path tilt moved the spreads: correct them, then put the bands back on the path
                tilt = self.mech.refine(R, dn / prev, up / prev)
                systematic, R = systematic + tilt, R + tilt
            if self.path is not None and book is not None:
                tilt = self._path_tilt(t, R, prev, up, dn, trading, listed, book)
                if tilt is not None:
                    systematic = systematic + tilt
                    R = R + tilt

        # suspended: no trade, the systematic move waits in the carry
        self.carry = np.where(paused, self.carry + systematic, 0.0)
        close = np.clip(np.round(prev * np.exp(R), 2), dn, up)
        at_up, at_dn = close >= up - 1e-9, close <= dn + 1e-9
        realised = np.log(close / prev)
        cut = (at_up | at_dn) & trading
        self.carry = np.where(cut, ret["limit_carry"] * (R - realised), self.carry)

        gap = 0.3 * systematic + 0.3 * u.idio_vol * rng.standard_normal(n) + 0.8 * jump
        opn = np.clip(np.round(prev * np.exp(gap), 2), dn, up)
        streak = np.where(at_up, self.prev_up, self.prev_dn)
        p_one = np.where(streak, ret["oneword_prob_streak"], ret["oneword_prob_fresh"])
        oneword = cut & (rng.random(n) < p_one)
        opn = np.where(oneword, close, opn)
        wick = 0.45 * u.idio_vol * np.sqrt(vol_state) * vm
        high = np.minimum(np.round(np.maximum(opn, close) * np.exp(np.abs(rng.standard_normal(n)) * wick), 2), up)
        low = np.maximum(np.round(np.minimum(opn, close) * np.exp(-np.abs(rng.standard_normal(n)) * wick), 2), dn)
        high = np.where(oneword, close, np.maximum(high, np.maximum(opn, close)))
        low = np.where(oneword, close, np.minimum(low, np.minimum(opn, close)))

        # turnover: persistent stock shock + big-move days; locked boards trade little
        self.turn_state = turn_cfg["ar"] * self.turn_state + turn_cfg["shock_vol"] * rng.standard_normal(n)
        turnover = u.base_turnover * np.exp(self.turn_state + turn_cfg["abs_return_loading"] * np.abs(realised) / u.idio_vol)
        if self.mech is not None:
            turnover = turnover * self.mech.turnover_mult(t, self.alpha_e, trading)
        turnover = np.clip(np.where(oneword, turnover * turn_cfg["oneword_mult"], turnover), 1e-5, 0.6)
        volume = np.maximum(np.round(turnover * u.float_shares, -2), 100.0)
        turnover = volume / u.float_shares

        if self.mech is not None:
            change = np.where(trading, close / prev - 1, np.nan)
            self.mech.record(change)
            self._alpha_row(day, trading, change, alpha)
            was = np.isfinite(self.m_close[(t - 1) % 6])
            self.m_change[t % 20] = np.where(was, change, np.nan)
            self.m_turn[t % 20] = np.where(trading, turnover, np.where(paused, 0.0, np.nan))
            self.m_close[t % 6] = np.where(trading, close, np.nan)

        # state updates for trading stocks
        self.price = np.where(trading, close, self.price)
        self.prev_up, self.prev_dn = at_up & trading, at_dn & trading
        r = np.where(trading, realised, 0.0)
        q = day_q(cfg["seed"], t, u.q_stock, cfg["intraday"]["q_persistence"])
        k = t % 20
        self.r20[k] = r
        self.t20[k] = np.where(trading, turnover, self.t20[(t - 1) % 20])
        self.q10[t % 10] = np.where(trading, q, 0.0)
        self.r252[t % 252] = r
        self.listed_sessions += listed
        self._t = t
        self._update_signal(trading)
        self._style_row(day, trading, turnover)

        nan = np.full(n, np.nan)
        tr = trading
        out = {
            "open": np.where(tr, opn, nan), "high": np.where(tr, high, nan), "low": np.where(tr, low, nan),
            "close": np.where(tr, close, nan), "volume": np.where(tr, volume, np.where(paused, 0.0, nan)),
            "turnover": np.where(tr, turnover, np.where(paused, 0.0, nan)),
            "change": np.where(tr, close / prev - 1, nan),
            "up_limit": np.where(tr, up, nan), "down_limit": np.where(tr, dn, nan),
            "paused": np.where(listed, paused.astype(float), nan),
            "mcap": np.where(listed, self.price * u.total_shares, nan),
            "float_mcap": np.where(listed, self.price * u.float_shares, nan),
            "total_shares": np.where(listed, u.total_shares, nan),
            "float_shares": np.where(listed, u.float_shares, nan),
            "industry": np.where(listed, u.industry.astype(float), nan),
            "factor": np.where(listed, 1.0, nan),
            "_q": q, "_listed": listed, "_trading": trading,
        }
        return out

    def _update_signal(self, mask: np.ndarray) -> None:
        """Composite alpha signal from descriptors known at the end of the current session."""
        w = self.cfg["alpha"]["weights"]
        ret5 = self._last(self.r20, 5).sum(axis=0)
        ret20 = self.r20.sum(axis=0)
        desc = {
            "reversal_5d": -zscore(ret5, mask),
            "low_vol_20d": -zscore(self.r20.std(axis=0), mask),
            "low_turn_20d": -zscore(np.log(np.maximum(self.t20.mean(axis=0), 1e-6)), mask),
            "weekly_reversal": -zscore(ret20 - ret5, mask),
            "intraday": -zscore(self.q10.mean(axis=0), mask),
        }
        signal = sum(w[k] * desc[k] for k in DESCRIPTORS)
        # planted alpha is size-neutral: size moves come from the regimes, not from the alpha
        size = rank_normal(np.log(self.price * self.u.total_shares), mask)
        if self.mech is not None:
            self.signal = self.mech.shape_signal(self._t, signal, size, mask)
            return
        beta = (signal[mask] @ size[mask]) / max(size[mask] @ size[mask], 1e-12)
        self.signal = np.where(mask, signal - beta * size, 0.0)

    def _chars(self) -> dict[str, np.ndarray]:
        """Sort characteristics of :mod:`.spreads` through the last session, from the fields as written:
        NaN where the dataset's rolling windows have none (fewer than 15 of 20 values, a suspended end)."""
        t = self._t
        last, first = self.m_close[t % 6], self.m_close[(t - 5) % 6]
        n_chg, n_turn = np.isfinite(self.m_change).sum(axis=0), np.isfinite(self.m_turn).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            vol = np.nanstd(np.where(n_chg >= 2, self.m_change, 0.0), axis=0, ddof=1)
            turn = np.nansum(self.m_turn, axis=0) / n_turn
        return {"size": np.where(np.isfinite(last), self.price * self.u.total_shares, np.nan),
                "reversal": -(last / first - 1), "low_vol": np.where(n_chg >= 15, vol, np.nan),
                "low_turn": np.where(n_turn >= 15, turn, np.nan)}

    def _steer(self, t, R, prev, up, dn, trading, book) -> np.ndarray | None:
        """The mechanisms' spread tilt of session t (index members of t-1, characteristics through t-1)."""
        members = np.zeros(self.n, dtype=bool)
        for b in BANDS:
            members |= book.prev_w[b] > 0
        project = None
        if self.path is not None:
            W = np.stack([book.prev_w[b] for b in BANDS]) * trading
            if (W.sum(axis=1) > 0).all():
                listed = (self.u.list_idx <= t) & (t <= self.u.delist_idx)
                phi = self._band_basis(np.stack([book.prev_w[b] for b in BANDS]), listed)
                A = np.linalg.pinv(W @ phi)

                def project(x: np.ndarray) -> np.ndarray:  # what the path tilt leaves of a tilt x
                    return x - phi @ (A @ (W @ x))
        return self.mech.steer(t, R, dn / prev, up / prev, self._chars(), members, trading, project)

    def _alpha_row(self, day, trading, change, alpha) -> None:
        """Daily factor-level facts of the planted composite known at t-1 (``meta/planted_alpha_daily.csv``):
        rank IC with the day's return; top-decile excess (realised and planted) of the composite neutralised on
        industry, size, ret_10, std_10d, turn_10d; turn_10d of its top 5% over its bottom 5%; the mean size
        (z of ln mcap over the trading stocks) of its top and bottom 5%."""
        mask = trading & (self.listed_sessions >= 20)
        k = int(mask.sum())
        if k < 20:
            return
        comp = self.alpha_e[mask]
        r = change[mask]
        r10, t10 = self._last(self.r20, 10), self._last(self.t20, 10)
        lmcap = np.log(self.price * self.u.total_shares)[mask]
        styles = [lmcap, r10.sum(axis=0)[mask], r10.std(axis=0)[mask], t10.mean(axis=0)[mask]]
        X = np.column_stack([np.eye(31)[self.u.industry_idx[mask]]] + [(v - v.mean()) / (v.std() + 1e-12) for v in styles])
        resid = comp - X @ np.linalg.lstsq(X, comp, rcond=None)[0]
        top = _rank(resid) >= k - max(k // 10, 1)
        n5 = max(int(round(0.05 * k)), 1)
        order = np.argsort(comp, kind="stable")
        hi, lo = order[-n5:], order[:n5]
        turn = t10.mean(axis=0)[mask]
        z = (lmcap - lmcap.mean()) / lmcap.std()
        self.alpha_rows.append((
            day, k, self.mech.strength_mult(self._t + 1), float(np.corrcoef(_rank(comp), _rank(r))[0, 1]), float(r[top].mean() - r.mean()),
            float(alpha[mask][top].mean() - alpha[mask].mean()), float(turn[hi].mean() / turn[lo].mean()),
            float(z[hi].mean()), float(z[lo].mean()),
        ))

    def _style_row(self, day: pd.Timestamp, trading: np.ndarray, turnover: np.ndarray) -> None:
        """Daily rank correlations of the planted composite (tomorrow's expected alpha) with styles."""
        mask = trading & (self.listed_sessions >= 20)
        if mask.sum() < 10:
            return
        comp = self.cfg["alpha"]["decay"] * self.alpha_e + self.signal
        r10 = self._last(self.r20, 10)
        t10 = self._last(self.t20, 10)
        cols = {"ret_10": r10.sum(axis=0), "std_10d": r10.std(axis=0), "turn_10d": t10.mean(axis=0),
                "size": np.log(self.price * self.u.total_shares)}
        a = _rank(comp[mask])
        self.style_rows.append((day, *(float(np.corrcoef(a, _rank(v[mask]))[0, 1]) for v in cols.values())))


STYLE_COLUMNS = ("ret_10", "std_10d", "turn_10d", "size")
ALPHA_COLUMNS = ("n", "mult", "ic", "long_excess", "long_planted", "crowding", "top_size", "bottom_size")


def _rank(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)
