"""Factor covariance and specific risk: zero-mean exponentially weighted moments of daily returns.

* Factor covariance at day ``t`` (returns realised up to and including ``t``):
  ``V_t = D_t C_t D_t`` where ``C_t`` is the correlation of the EWMA second-moment matrix with
  half-life ``cov_corr_half_life`` (default 480 days) and ``D_t`` the EWMA volatilities with the
  shorter ``cov_vol_half_life`` (default 90): Barra's split of a fast volatility and a slow
  correlation (USE4 notes, "factor covariance matrix"), here without the Newey-West serial
  correction and without the volatility regime adjustment.  Daily units (variance of a daily return).
  Means are taken as 0 (daily factor means are noise next to the volatility).  A factor absent on
  a day (an industry without stocks) contributes 0 to that day's moments.
* Specific risk of stock ``i`` at ``t``: ``sqrt(EWMA of u_i^2)`` with half-life ``specific_half_life``
  over the days it was in the regression (daily std); no structural / Bayesian shrinkage.

Both are NaN until ``*_min_obs`` observations exist.  Weights are normalised over observed days.
:func:`check_risk_panels` checks both against the optimizer's input rules before a store is written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ..optim.checks import PSD_RTOL, SYM_RTOL
from .config import RiskConfig
from .timeseries import decay


def _ewm_mean(x: np.ndarray, obs: np.ndarray, half_life: float) -> np.ndarray:
    """``sum_k lam^k x_{t-k} / sum_k lam^k obs_{t-k}`` along axis 0 (x already 0 where unobserved)."""
    lam = decay(half_life)
    num = lfilter([1.0], [1.0, -lam], x, axis=0)
    den = lfilter([1.0], [1.0, -lam], obs.astype(np.float64), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den.reshape(den.shape + (1,) * (num.ndim - den.ndim))


def factor_covariance(f: np.ndarray, cfg: RiskConfig) -> np.ndarray:
    """(T, K, K) covariance of the factor returns ``f`` (T, K); rows without any return are skipped."""
    obs = np.isfinite(f).any(axis=1)
    f0 = np.where(np.isfinite(f), f, 0.0)
    outer = f0[:, :, None] * f0[:, None, :]
    corr_m = _ewm_mean(outer, obs, cfg.cov_corr_half_life)
    var_fast = _ewm_mean(f0 * f0, obs, cfg.cov_vol_half_life)
    d_slow = np.sqrt(np.einsum("tkk->tk", corr_m))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = corr_m / (d_slow[:, :, None] * d_slow[:, None, :])
    corr = np.where(np.isfinite(corr), corr, 0.0)
    K = f.shape[1]
    idx = np.arange(K)
    corr[:, idx, idx] = 1.0
    vol = np.sqrt(var_fast)
    cov = corr * vol[:, :, None] * vol[:, None, :]
    enough = np.cumsum(obs) >= cfg.cov_min_obs
    cov[~enough] = np.nan
    return cov


def specific_risk(u: np.ndarray, listed: np.ndarray, cfg: RiskConfig) -> np.ndarray:
    """(T, N) float32 specific volatility (daily std) from the specific returns ``u`` (NaN = not observed)."""
    obs = np.isfinite(u)
    u0 = np.where(obs, u, 0.0).astype(np.float64)
    var = _ewm_mean(u0 * u0, obs, cfg.specific_half_life)
    enough = np.cumsum(obs, axis=0) >= cfg.specific_min_obs
    return np.where(enough & listed, np.sqrt(var), np.nan).astype(np.float32)


def check_risk_panels(dates: pd.DatetimeIndex, cov: np.ndarray, factors: list[str], spec: np.ndarray,
                      instruments: list[str], write: np.ndarray) -> None:
    """ValueError naming the first date (and factor or stock) where what the store would hold breaks the
    optimizer's rules (:mod:`qlib_ext.optim.checks`): on the dates written (``write``), from the first
    complete covariance on, every covariance finite, symmetric and PSD within the same tolerances; every
    specific risk present finite and >= 0.  Run before anything is written, so the old store stays."""
    start = np.isfinite(cov).all(axis=(1, 2))
    after = write & (np.cumsum(start) > 0)
    fix = "nothing was written (the old store is kept); check the factor returns of these dates"
    for t in np.flatnonzero(after & ~start)[:1]:
        i, j = np.argwhere(~np.isfinite(cov[t]))[0]
        raise ValueError(f"risk build: factor covariance of {dates[t].date()} has non-finite entries, first "
                         f"[{factors[i]!r}, {factors[j]!r}] = {cov[t, i, j]}; {fix}")
    idx = np.flatnonzero(after & start)
    if len(idx):
        C = cov[idx]
        scale = np.abs(C).max(axis=(1, 2))
        asym = np.abs(C - C.transpose(0, 2, 1)).max(axis=(1, 2))
        for k in np.flatnonzero(asym > SYM_RTOL * scale)[:1]:
            i, j = np.unravel_index(int(np.argmax(np.abs(C[k] - C[k].T))), C[k].shape)
            raise ValueError(f"risk build: factor covariance of {dates[idx[k]].date()} is not symmetric at "
                             f"[{factors[i]!r}, {factors[j]!r}]; {fix}")
        vals = np.linalg.eigvalsh((C + C.transpose(0, 2, 1)) / 2)
        low = vals[:, 0] < -PSD_RTOL * np.maximum(vals[:, -1], 0.0)
        for k in np.flatnonzero(low)[:1]:
            vec = np.linalg.eigh((C[k] + C[k].T) / 2)[1][:, 0]
            load = [factors[i] for i in np.argsort(-np.abs(vec))[:3]]
            raise ValueError(f"risk build: factor covariance of {dates[idx[k]].date()} is not positive "
                             f"semidefinite: most negative eigenvalue {vals[k, 0]:.6g} (largest {vals[k, -1]:.6g}; "
                             f"tolerance {PSD_RTOL:g} x largest), along {load}; {fix}")
    s = spec[write]
    bad = ~np.isnan(s) & ~(np.isfinite(s) & (s >= 0))
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise ValueError(f"risk build: specific risk of {instruments[n]} on {dates[np.flatnonzero(write)[t]].date()} "
                         f"is {s[t, n]} (not finite and >= 0); {fix}")
