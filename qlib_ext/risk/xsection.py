"""Cross-sectional operations on (days x stocks) panels, vectorised over days: standardise, winsorise,
orthogonalise, combine descriptors, impute missing exposures.

Conventions (Barra USE4 Methodology Notes, Menchero et al. 2011, sec. "Descriptor standardization";
CNE5 follows USE4): a standardised variable has **cap-weighted mean 0 and equal-weighted standard
deviation 1**, so the cap-weighted market portfolio has zero exposure to every style.  NaN marks
"not in the cross-section"; every row (day) is treated independently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & np.isfinite(w) & (w > 0)


def standardize(x: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """``(x - sum(cap x)/sum(cap)) / std(x)`` per day: cap-weighted mean 0, equal-weighted std 1 (ddof 0).

    Stocks with NaN ``x`` or without a positive ``cap`` are NaN in the result; days with fewer than
    two such stocks or a constant ``x`` are all NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    ok = _valid(x, cap)
    x0, w0 = np.where(ok, x, 0.0), np.where(ok, cap, 0.0)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cw = np.einsum("tn,tn->t", w0, x0) / w0.sum(axis=1)
        mean_ew = x0.sum(axis=1) / n
        d = x0 - mean_ew[:, None]
        d *= ok
        sd = np.sqrt(np.einsum("tn,tn->t", d, d) / n)
        good = (n >= 2) & (sd > 0)
        scale = np.where(good, 1.0 / sd, np.nan)
        d += (mean_ew - mean_cw)[:, None]            # x - mean_cw on valid entries
        d *= scale[:, None]
        d[~ok] = np.nan
    return d


def winsorize(x: np.ndarray, cap: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """Standardise, clip at ``+-limit`` equal-weighted std, standardise again (so the result is exactly
    mean 0 / std 1; a clipped value may end slightly beyond ``limit``).  One pass, not iterated."""
    return standardize(np.clip(standardize(x, cap), -limit, limit), cap)


def orthogonalize(y: np.ndarray, against: Sequence[np.ndarray], w: np.ndarray, block: int = 128) -> np.ndarray:
    """Residual of the per-day weighted regression ``y ~ 1 + against`` (weights ``w``).

    The residual has weighted mean 0 and zero weighted covariance with every regressor; any affine
    rescaling of it keeps the zero covariance with a regressor whose ``w``-weighted mean is 0.
    Solved in blocks of ``block`` days with batched normal equations (at most 3 regressors + 1).
    """
    y = np.asarray(y, dtype=np.float64)
    T, N = y.shape
    ok = _valid(y, w)
    for a in against:
        ok &= np.isfinite(a)
    out = np.full((T, N), np.nan)
    p = len(against) + 1
    for t0 in range(0, T, block):
        sl = slice(t0, min(t0 + block, T))
        m = ok[sl]
        Z = np.ones((m.shape[0], N, p))
        for j, a in enumerate(against):
            Z[:, :, j + 1] = np.where(m, a[sl], 0.0)
        Z *= m[:, :, None]
        W = np.where(m, w[sl], 0.0)
        y0 = np.where(m, y[sl], 0.0)
        A = np.einsum("tnp,tn,tnq->tpq", Z, W, Z)
        c = np.einsum("tnp,tn->tp", Z, W * y0)
        b = np.einsum("tpq,tq->tp", np.linalg.pinv(A), c)
        resid = y0 - np.einsum("tnp,tp->tn", Z, b)
        out[sl] = np.where(m & (m.sum(axis=1) > p)[:, None], resid, np.nan)
    return out


def combine(parts: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of standardised descriptors, reweighted over the descriptors a stock has
    (Barra's practice for a missing descriptor); NaN when it has none."""
    if len(parts) != len(weights):
        raise ValueError(f"{len(parts)} descriptors but {len(weights)} weights")
    num = np.zeros(parts[0].shape)
    den = np.zeros(parts[0].shape)
    for x, wt in zip(parts, weights):
        ok = np.isfinite(x)
        num += np.where(ok, wt * np.where(ok, x, 0.0), 0.0)
        den += wt * ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def impute(x: np.ndarray, size: np.ndarray, industry: np.ndarray, w: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """Fill missing ``x`` inside ``universe`` with the fit of ``x ~ industry dummies + size`` (weights ``w``).

    Barra's rule for a stock without the history a descriptor needs (USE4 notes: regression on
    industry and size over the stocks that have it).  Solved for all days at once: the size slope
    is the within-industry weighted regression slope, each industry's intercept its weighted mean of
    ``x - b size``.  An industry with no stock having ``x`` that day gets the pooled intercept.
    ``industry`` holds integer codes 0..K-1 (-1 = none).
    """
    x = np.asarray(x, dtype=np.float64)
    T, N = x.shape
    has = np.isfinite(x) & np.isfinite(size) & np.isfinite(w) & (w > 0) & (industry >= 0) & universe
    need = universe & ~np.isfinite(x) & np.isfinite(size) & (industry >= 0)
    if not need.any():
        return x
    K = int(industry.max()) + 1
    g = np.arange(T)[:, None] * K + np.where(industry >= 0, industry, 0)     # (day, industry) group id

    def gsum(v: np.ndarray) -> np.ndarray:
        return np.bincount(g[has], weights=v[has], minlength=T * K).reshape(T, K)

    ww = np.where(has, w, 0.0)
    sw, sws, swx = gsum(ww), gsum(ww * size), gsum(ww * np.where(has, x, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        ms, mx = sws / sw, swx / sw                                          # industry means (T, K)
        ds = np.where(has, size - np.take_along_axis(ms, np.maximum(industry, 0), 1), 0.0)
        dx = np.where(has, x - np.take_along_axis(mx, np.maximum(industry, 0), 1), 0.0)
        sxx = (ww * ds * ds).sum(axis=1)
        b = np.where(sxx > 0, (ww * ds * dx).sum(axis=1) / sxx, 0.0)         # (T,)
        a = mx - b[:, None] * ms                                             # industry intercepts
        pooled = (ww * (np.where(has, x, 0.0) - b[:, None] * np.where(has, size, 0.0))).sum(axis=1) / ww.sum(axis=1)
    a = np.where(sw > 0, a, pooled[:, None])
    fit = np.take_along_axis(a, np.maximum(industry, 0), 1) + b[:, None] * size
    return np.where(need & np.isfinite(fit), fit, x)
