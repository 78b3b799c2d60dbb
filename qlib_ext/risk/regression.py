"""Daily factor returns by cross-sectional WLS with the cap-weighted industry returns summing to zero.

For each day ``t`` with exposures, regress the next session's close-to-close return
``r_{i,t+1}`` (``$change``) on ``[country = 1, industry dummies, styles]`` at ``t``, with regression
weights ``sqrt(mcap_{i,t})`` (Barra USE4/CNE5), subject to ``sum_j c_j f_j = 0`` over industries, where
``c_j`` is the total mcap of industry ``j``'s regression stocks (USE4 notes, "the cap-weighted
industry factor returns sum to zero", which makes the country factor the cap-weighted market).
The constraint is solved by substitution: the largest industry ``k`` is eliminated with
``f_k = -sum_{j != k} (c_j / c_k) f_j``, i.e. column ``j`` becomes ``D_j - (c_j / c_k) D_k``.

Dating: the factor and specific returns are stamped with the day they are *realised* (``t+1``); the
exposures with the day they are known (``t``).  A stock enters the regression on ``t`` if it has
exposures, traded on ``t`` (so ``r_{t+1}`` is a one-session return) and trades on ``t+1``.
R^2 is the weighted, centred ``1 - sum w u^2 / sum w (r - r_w)^2``.

All days are solved at once, in blocks of days: the weighted normal equations ``Z'WZ f = Z'Wy`` of
the design ``Z = [1, D, X]`` are assembled from per-(day, industry) sums (``np.bincount``; the
dummy matrix ``D`` is never formed), reduced by the substitution ``f = M f_r``, and solved as a
batch of small (1 + K - 1 + S)-square systems.  Weights are normalised per day (scale-free).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class RegressionResult:
    """Panels of the daily regressions, rows = realised dates (row 0 is always empty)."""

    factor_returns: np.ndarray    # (T, 1 + K + S): country, industries 0..K-1, styles; NaN = no factor
    specific_returns: np.ndarray  # (T, N) float32, NaN outside the regression
    r2: np.ndarray                # (T,)
    n_obs: np.ndarray             # (T,) int


def regression_sample(styles: np.ndarray, industry: np.ndarray, mcap: np.ndarray, ret_t: np.ndarray,
                      ret_next: np.ndarray) -> np.ndarray:
    """Stocks in the regression of days t -> t+1 (see the module docstring); any leading shape."""
    return (np.isfinite(styles).all(axis=-1) & (industry >= 0) & np.isfinite(mcap) & (mcap > 0)
            & np.isfinite(ret_t) & np.isfinite(ret_next))


def substitution_matrix(cap_by_industry: np.ndarray, n_styles: int) -> tuple[np.ndarray, np.ndarray]:
    """Per day ``M`` (B, P, P-1) with ``f = M f_r`` imposing ``sum_j c_j f_j = 0``, and the eliminated
    (largest) industry (B,).  Order of ``f``: country, industries 0..K-1, styles; of ``f_r``: country,
    industries except the eliminated one, styles."""
    B, K = cap_by_industry.shape
    P = 1 + K + n_styles
    k = np.argmax(cap_by_industry, axis=1)
    M = np.zeros((B, P, P - 1))
    M[:, 0, 0] = 1.0
    j = np.arange(K)[None, :]
    red = 1 + j - (j > k[:, None])                                    # reduced column of industry j
    bb, jj = np.nonzero(j != k[:, None])
    rr = red[bb, jj]
    M[bb, 1 + jj, rr] = 1.0
    ck = cap_by_industry[np.arange(B), k]
    with np.errstate(invalid="ignore", divide="ignore"):
        M[bb, 1 + k[bb], rr] = -cap_by_industry[bb, jj] / ck[bb]
    s = np.arange(n_styles)
    M[:, 1 + K + s, K + s] = 1.0
    return M, k


def _solve_block(X: np.ndarray, ind: np.ndarray, cap: np.ndarray, y: np.ndarray, m: np.ndarray,
                 K: int, min_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factor returns (B, P), residuals (B, N), R^2 (B,) for a block of B days (inputs 0 outside ``m``)."""
    B, N, S = X.shape
    P = 1 + K + S
    n = m.sum(axis=1)
    w = np.sqrt(cap)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    g = (np.arange(B)[:, None] * K + ind)[m]

    def gsum(v: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=v[m], minlength=B * K).reshape(B, K)

    Xw = X * w[:, :, None]
    sw_ind, c = gsum(w), gsum(cap)
    A = np.zeros((B, P, P))
    A[:, 0, 0] = w.sum(axis=1)
    A[:, 0, 1:1 + K] = A[:, 1:1 + K, 0] = sw_ind
    A[:, 1 + np.arange(K), 1 + np.arange(K)] = sw_ind
    A[:, 0, 1 + K:] = A[:, 1 + K:, 0] = Xw.sum(axis=1)
    DS = np.stack([gsum(Xw[:, :, s]) for s in range(S)], axis=2)
    A[:, 1:1 + K, 1 + K:] = DS
    A[:, 1 + K:, 1:1 + K] = DS.transpose(0, 2, 1)
    A[:, 1 + K:, 1 + K:] = Xw.transpose(0, 2, 1) @ X
    b = np.concatenate([(w * y).sum(axis=1)[:, None], gsum(w * y), np.einsum("bns,bn->bs", Xw, y)], axis=1)

    M, k = substitution_matrix(c, S)
    Ar = M.transpose(0, 2, 1) @ A @ M
    br = np.einsum("bpq,bp->bq", M, b)
    ok = n >= min_obs
    absent = (c <= 0) & (np.arange(K)[None, :] != k[:, None])       # no stock: pin f_j = 0, then NaN
    bb, jj = np.nonzero(absent)
    red = 1 + jj - (jj > k[bb])
    Ar[bb, red, red] = 1.0
    Ar[~ok] = np.eye(P - 1)
    f = np.einsum("bpq,bq->bp", M, np.linalg.solve(Ar, br[:, :, None])[:, :, 0])
    fitted = f[:, [0]] + np.take_along_axis(f[:, 1:1 + K], ind, axis=1) + np.einsum("bns,bs->bn", X, f[:, 1 + K:])
    resid = y - fitted
    ybar = (w * y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - (w * resid**2).sum(axis=1) / (w * (y - ybar[:, None]) ** 2 * m).sum(axis=1)
    f[:, 1:1 + K][absent] = np.nan
    f[~ok] = np.nan
    r2[~ok] = np.nan
    resid = np.where(m & ok[:, None], resid, np.nan)
    return f, resid, r2


def factor_returns(styles: np.ndarray, industry: np.ndarray, mcap: np.ndarray, ret: np.ndarray,
                   n_industries: int, tick: Callable[[int], None] | None = None,
                   min_obs: int | None = None, block: int = 64) -> RegressionResult:
    """Factor returns, specific returns and R^2 for every day (see the module docstring).

    ``styles`` (T, N, S) exposures at t (pass the stored float32 values so the store reproduces);
    ``industry`` (T, N) codes 0..K-1 (-1 none); ``mcap`` (T, N); ``ret`` (T, N) returns realised on
    each day.  ``min_obs`` (default: number of factors + 10) leaves thin days empty.
    """
    T, N, S = styles.shape
    K = n_industries
    out_f = np.full((T, 1 + K + S), np.nan)
    out_u = np.full((T, N), np.nan, dtype=np.float32)
    r2 = np.full(T, np.nan)
    n_obs = np.zeros(T, dtype=np.int64)
    min_obs = (1 + K + S + 10) if min_obs is None else min_obs
    for t0 in range(0, T - 1, block):
        t1 = min(t0 + block, T - 1)
        sl, nx = slice(t0, t1), slice(t0 + 1, t1 + 1)
        m = regression_sample(styles[sl], industry[sl], mcap[sl], ret[sl], ret[nx])
        X = np.where(m[:, :, None], styles[sl], 0.0).astype(np.float64)
        f, u, r = _solve_block(X, np.where(m, industry[sl], 0).astype(np.intp), np.where(m, mcap[sl], 0.0).astype(np.float64),
                               np.where(m, ret[nx], 0.0).astype(np.float64), m, K, min_obs)
        out_f[nx], out_u[nx], r2[nx], n_obs[nx] = f, u, r, m.sum(axis=1)
        if tick is not None:
            tick(t1 - t0)
    return RegressionResult(out_f, out_u, r2, n_obs)
