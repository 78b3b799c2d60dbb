"""Cross-sectional OLS residuals: the arithmetic of label/factor neutralisation, free of Qlib.

For each day d and column j, over the names with a finite value, finite exposures and a group:

    e = y - [G X] b,   b = argmin ||y - [G X] b||^2

with G one dummy per group (industry) present that day, or a constant column when there are no groups,
and X the continuous exposures.  By Frisch-Waugh-Lovell this equals regressing the within-group
demeaned y on the within-group demeaned X, which is how it is computed (one ``lstsq`` per day, no
dummy matrix).  Optionally ``z = (e - mean e) / std(e, ddof=1)``, Qlib's ``CSZScoreNorm`` convention.
"""

from __future__ import annotations

import numpy as np

__all__ = ["residualize_xsection"]

_REL_TOL = 1e-12  # a column (or residual) this small relative to its scale counts as constant (zero)


def residualize_xsection(values: np.ndarray, exposures: np.ndarray | None, days: np.ndarray,
                         groups: np.ndarray | None = None, *, min_names: int = 10,
                         standardize: bool = True) -> np.ndarray:
    """Per-day OLS residuals of each column of ``values`` (n, c) on group dummies + ``exposures`` (n, m).

    ``days`` (n,) labels the cross-sections (any sortable values); ``groups`` (n,) are group codes (NaN =
    unknown).  Rows with a missing exposure or group stay NaN; a column's missing values are left out
    of that column's regression only.  A day-column is all NaN when fewer than ``min_names`` names
    qualify, when fewer than 2 residual degrees of freedom remain (n - groups - rank(X) < 2), or when
    the residual vanishes (the values lie in the span of the regressors).  Constant exposures are
    dropped (they are collinear with the dummies).  Returns float64 (n, c).
    """
    Y = np.asarray(values, dtype=np.float64)
    one_d = Y.ndim == 1
    Y = Y[:, None] if one_d else Y
    n = Y.shape[0]
    X = np.empty((n, 0)) if exposures is None else np.asarray(exposures, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    days = np.asarray(days)
    G = None if groups is None else np.asarray(groups, dtype=np.float64)
    if Y.ndim != 2 or X.ndim != 2 or days.shape != (n,) or (G is not None and G.shape != (n,)) or X.shape[0] != n:
        raise ValueError(f"residualize_xsection: values have {n} rows but exposures {X.shape}, "
                         f"days {days.shape}, groups {None if G is None else G.shape}")
    if min_names < 2:
        raise ValueError(f"residualize_xsection: min_names must be >= 2, got {min_names}")

    out = np.full(Y.shape, np.nan)
    if n == 0:
        return out[:, 0] if one_d else out
    row_ok = np.isfinite(X).all(axis=1)
    if G is not None:
        row_ok &= np.isfinite(G)
    _, day_id = np.unique(days, return_inverse=True)
    order = np.argsort(day_id, kind="stable")
    bounds = np.flatnonzero(np.diff(day_id[order])) + 1
    for idx in np.split(order, bounds):
        fin = np.isfinite(Y[idx]) & row_ok[idx, None]
        which = _pattern_ids(fin)
        for p in range(int(which.max()) + 1):  # one regression per set of columns sharing a NaN pattern
            cols = np.flatnonzero(which == p)
            rows = idx[fin[:, cols[0]]]
            if rows.size < min_names:
                continue
            out[np.ix_(rows, cols)] = _residual(Y[np.ix_(rows, cols)], X[rows], None if G is None else G[rows],
                                                standardize)
    return out[:, 0] if one_d else out


def _pattern_ids(mask: np.ndarray) -> np.ndarray:
    """Ids 0..k-1 of the distinct columns of a boolean (n, c) mask (equal columns share an id)."""
    if mask.shape[1] == 1:
        return np.zeros(1, dtype=np.intp)
    packed = np.ascontiguousarray(np.packbits(mask, axis=0).T)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return np.unique(keys, return_inverse=True)[1].ravel()


def _residual(Y: np.ndarray, X: np.ndarray, g: np.ndarray | None, standardize: bool) -> np.ndarray:
    """Residuals of one cross-section (all rows valid); NaN when fewer than 2 degrees of freedom remain."""
    n = Y.shape[0]
    gid = np.zeros(n, dtype=np.intp) if g is None else np.unique(g, return_inverse=True)[1].ravel()
    k = int(gid.max()) + 1
    E = _group_demean(Y, gid, k)
    rank = 0
    if X.shape[1]:
        Xc = X - X.mean(axis=0)
        sd = Xc.std(axis=0)
        keep = sd > _REL_TOL * np.maximum(np.abs(X).max(axis=0), np.finfo(float).tiny)
        if keep.any():
            Xd = _group_demean(Xc[:, keep] / sd[keep], gid, k)
            beta, _, rank, _ = np.linalg.lstsq(Xd, E, rcond=None)
            E = E - Xd @ beta
    if n - k - rank < 2:
        return np.full(Y.shape, np.nan)
    scale = np.abs(Y - Y.mean(axis=0)).max(axis=0)
    sd = E.std(axis=0, ddof=1)
    E[:, ~(sd > _REL_TOL * scale)] = np.nan
    if standardize:
        E = (E - E.mean(axis=0)) / sd
    return E


def _group_demean(A: np.ndarray, gid: np.ndarray, k: int) -> np.ndarray:
    """A minus its group means (rows grouped by ``gid`` in 0..k-1)."""
    sums = np.zeros((k, A.shape[1]))
    np.add.at(sums, gid, A)
    return A - (sums / np.bincount(gid, minlength=k)[:, None])[gid]
