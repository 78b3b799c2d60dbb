"""Raw Barra CNE5 price-volume descriptors as (days x stocks) panels, before any standardisation.

Inputs are daily panels: ``ret`` simple close-to-close returns (the dataset's ``$change``: last close
over the previous *traded* close, so a return after a suspension covers the whole gap), NaN when the
stock did not trade; ``turnover`` volume / float shares, 0 on suspended days, NaN when not listed;
``mcap`` total market value, NaN when not listed.  Every descriptor at day ``t`` uses data up to and
including ``t`` (known after the close).  The risk-free rate is taken as 0 (the dataset has none), so
"excess" returns are raw returns.  Definitions (CNE5 Descriptor Details, MSCI Barra, July 2012):

* BETA, HSIGMA: weighted regression ``r_t = a + b R_t + e_t`` over 252 days, half-life 63, ``R`` the
  cap-weighted market (:func:`market_return`); HSIGMA = weighted std of ``e``.
* DASTD: weighted std of daily returns over 252 days, half-life 42.
* CMRA: ``Z(T) = sum of ln(1+r)`` over the last ``21 T`` days, T = 1..12; CMRA = max Z - min Z
  (Barra writes ``ln(1+Z_max) - ln(1+Z_min)`` with Z a cumulative simple return: the same number).
* RSTR: ``sum_k w_k ln(1+r_{t-21-k})``, k < 504, half-life 126 (weights not normalised).
* STOM/STOQ/STOA: ``ln`` of the monthly share turnover averaged over 1/3/12 months of 21 days.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .config import RiskConfig
from .timeseries import shift, window_sum

DESCRIPTORS = ("beta", "hsigma", "dastd", "cmra", "rstr", "stom", "stoq", "stoa")


def market_return(ret: np.ndarray, mcap: np.ndarray) -> np.ndarray:
    """Cap-weighted market return ``R_t = sum_i m_{i,t-1} r_{i,t} / sum_i m_{i,t-1}`` (T,), weights = previous mcap."""
    w = shift(np.asarray(mcap, dtype=np.float64), 1, np.nan)
    ok = np.isfinite(w) & np.isfinite(ret) & (w > 0)
    num = np.where(ok, w * np.where(ok, ret, 0.0), 0.0).sum(axis=1)
    den = np.where(ok, w, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def beta_hsigma(ret: np.ndarray, mkt: np.ndarray, cfg: RiskConfig) -> tuple[np.ndarray, np.ndarray]:
    """BETA and HSIGMA from the weighted time-series regression of ``ret`` on the market ``mkt``.

    With normalised weights ``w``: ``b = cov_w(r, R) / var_w(R)``, ``HSIGMA^2 = var_w(r) - b cov_w(r, R)``
    (the weighted mean squared residual).  NaN where fewer than ``beta_min_obs`` days were observed.
    """
    y = np.asarray(ret, dtype=np.float64)
    x = np.broadcast_to(np.asarray(mkt, dtype=np.float64)[:, None], y.shape)
    m = np.isfinite(y) & np.isfinite(x)
    y0, x0, m0 = np.where(m, y, 0.0), np.where(m, x, 0.0), m.astype(np.float64)

    def s(v: np.ndarray) -> np.ndarray:
        return window_sum(v, cfg.beta_window, cfg.beta_half_life)

    sw = s(m0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = s(x0) / sw, s(y0) / sw
        vx = s(x0 * x0) / sw - mx * mx
        vy = s(y0 * y0) / sw - my * my
        cxy = s(x0 * y0) / sw - mx * my
        beta = cxy / vx
        hsig = np.sqrt(np.maximum(vy - beta * cxy, 0.0))
    enough = (window_sum(m0, cfg.beta_window) >= cfg.beta_min_obs) & (vx > 0)
    return np.where(enough, beta, np.nan), np.where(enough, hsig, np.nan)


def dastd(ret: np.ndarray, cfg: RiskConfig) -> np.ndarray:
    """DASTD: exponentially weighted std of daily returns (252 days, half-life 42), about the weighted mean."""
    y = np.asarray(ret, dtype=np.float64)
    m = np.isfinite(y)
    y0, m0 = np.where(m, y, 0.0), m.astype(np.float64)
    sw = window_sum(m0, cfg.dastd_window, cfg.dastd_half_life)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = window_sum(y0, cfg.dastd_window, cfg.dastd_half_life) / sw
        var = window_sum(y0 * y0, cfg.dastd_window, cfg.dastd_half_life) / sw - mean * mean
    enough = window_sum(m0, cfg.dastd_window) >= cfg.dastd_min_obs
    return np.where(enough, np.sqrt(np.maximum(var, 0.0)), np.nan)


def cmra(ret: np.ndarray, listed: np.ndarray, cfg: RiskConfig) -> np.ndarray:
    """CMRA: range of the cumulative log returns over the last 1..12 months (21 days each).

    A month count ``T`` is used only when the stock was listed on the first day of its ``21 T``-day
    span; NaN with fewer than ``cmra_min_months`` usable spans or when not listed on day t.
    """
    lr = np.log1p(np.where(np.isfinite(ret), ret, 0.0).astype(np.float64))
    cum = np.cumsum(lr, axis=0)
    listed = np.asarray(listed, dtype=bool)
    T = ret.shape[0]
    first = np.where(listed.any(axis=0), listed.argmax(axis=0), T)          # first listed day per stock
    t = np.arange(T)[:, None]
    zmax = np.full(ret.shape, -np.inf)
    zmin = np.full(ret.shape, np.inf)
    n = np.zeros(ret.shape, dtype=np.int32)
    for k in range(1, cfg.cmra_months + 1):                                # 12 spans, vectorised inside
        days = k * cfg.cmra_month_days
        z = cum - shift(cum, days)
        ok = (t - days + 1 >= first[None, :]) & (t - days + 1 >= 0)
        zmax = np.where(ok, np.maximum(zmax, z), zmax)
        zmin = np.where(ok, np.minimum(zmin, z), zmin)
        n += ok
    return np.where((n >= cfg.cmra_min_months) & listed, zmax - zmin, np.nan)


def rstr(ret: np.ndarray, cfg: RiskConfig) -> np.ndarray:
    """RSTR: weighted sum of log returns over 504 days lagged 21, half-life 126; NaN under ``rstr_min_obs`` days."""
    m = np.isfinite(ret)
    lr = np.log1p(np.where(m, ret, 0.0).astype(np.float64))
    out = window_sum(lr, cfg.rstr_window, cfg.rstr_half_life, lag=cfg.rstr_lag)
    enough = window_sum(m.astype(np.float64), cfg.rstr_window, lag=cfg.rstr_lag) >= cfg.rstr_min_obs
    return np.where(enough, out, np.nan)


def share_turnover(turnover: np.ndarray, cfg: RiskConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STOM, STOQ, STOA: ``ln(21 x mean daily turnover)`` over 21, 63 and 252 days.

    Equal to Barra's ``ln(sum_21 V/S)``, ``ln(1/3 sum_3 exp(STOM))``, ``ln(1/12 sum_12 exp(STOM))`` when
    the stock was listed through the window; a younger stock averages over its listed days
    (``liquidity_min_obs`` at least).  Turnover uses float shares (the dataset's ``$turnover``) where
    Barra uses shares outstanding: in A-shares only the float trades.  ln(0) (no trade at all) is NaN.
    """
    m = np.isfinite(turnover)
    v, m0 = np.where(m, turnover, 0.0).astype(np.float64), m.astype(np.float64)
    out = []
    for months in (1, cfg.stoq_months, cfg.stoa_months):
        days = months * cfg.stom_days
        n = window_sum(m0, days)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = window_sum(v, days) / n
            val = np.log(cfg.stom_days * mean)
        out.append(np.where((n >= cfg.liquidity_min_obs) & np.isfinite(val) & m, val, np.nan))
    return out[0], out[1], out[2]


def compute_descriptors(ret: np.ndarray, mcap: np.ndarray, turnover: np.ndarray, cfg: RiskConfig,
                        chunk: int = 500, tick: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """All raw descriptors (float32 panels), computed in blocks of ``chunk`` stocks to bound memory.

    Memory: about 30 float64 arrays of (days x chunk) at a time, plus the float32 outputs.
    """
    ret = np.asarray(ret, dtype=np.float32)
    T, N = ret.shape
    if mcap.shape != (T, N) or turnover.shape != (T, N):
        raise ValueError(f"panel shapes differ: ret {ret.shape}, mcap {mcap.shape}, turnover {turnover.shape}")
    listed = np.isfinite(mcap)
    mkt = market_return(ret, mcap)
    out = {name: np.full((T, N), np.nan, dtype=np.float32) for name in DESCRIPTORS}
    for a in range(0, N, chunk):
        sl = slice(a, min(a + chunk, N))
        r = ret[:, sl]
        out["beta"][:, sl], out["hsigma"][:, sl] = beta_hsigma(r, mkt, cfg)
        out["dastd"][:, sl] = dastd(r, cfg)
        out["cmra"][:, sl] = cmra(r, listed[:, sl], cfg)
        out["rstr"][:, sl] = rstr(r, cfg)
        out["stom"][:, sl], out["stoq"][:, sl], out["stoa"][:, sl] = share_turnover(turnover[:, sl], cfg)
        if tick is not None:
            tick(sl.stop - sl.start)
    for name in DESCRIPTORS:                         # a descriptor exists only on listed days
        out[name][~listed] = np.nan
    return out
