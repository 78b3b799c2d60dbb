"""residualize_xsection against statsmodels OLS with explicit dummies, and its edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from qlib_ext.processors import residualize_xsection


def _cross_sections(seed: int = 0, n_days: int = 6, n: int = 80, m: int = 3, c: int = 2):
    """Random stacked cross-sections with group effects, exposures and scattered NaNs."""
    rng = np.random.default_rng(seed)
    days = np.repeat(np.arange(n_days), n)
    groups = rng.integers(0, 7, n_days * n).astype(float) * 10000 + 110000
    X = rng.standard_normal((n_days * n, m)) * [1.0, 5.0, 0.01] + [0.0, 23.0, 0.0]
    Y = X @ rng.standard_normal((m, c)) + (groups[:, None] / 1e5) + rng.standard_normal((n_days * n, c))
    Y[rng.random(Y.shape) < 0.05] = np.nan
    X[rng.random(X.shape) < 0.02] = np.nan
    groups[rng.random(groups.shape) < 0.02] = np.nan
    perm = rng.permutation(len(days))  # rows need not be sorted by day
    return Y[perm], X[perm], days[perm], groups[perm]


def _statsmodels_resid(y, X, g, standardize):
    """OLS of y on [industry dummies | X] (or [1 | X] without groups) with statsmodels, NaN rows dropped."""
    ok = np.isfinite(y) & np.isfinite(X).all(1) & (np.isfinite(g) if g is not None else True)
    parts = [X[ok]]
    if g is None:
        parts.insert(0, np.ones((ok.sum(), 1)))
    else:
        parts.insert(0, pd.get_dummies(g[ok]).to_numpy(float))
    e = sm.OLS(y[ok], np.column_stack(parts)).fit().resid
    out = np.full(y.shape, np.nan)
    out[ok] = (e - e.mean()) / e.std(ddof=1) if standardize else e
    return out


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("with_groups", [True, False])
def test_matches_statsmodels(standardize, with_groups):
    Y, X, days, groups = _cross_sections()
    g = groups if with_groups else None
    got = residualize_xsection(Y, X, days, g, min_names=10, standardize=standardize)
    assert got.shape == Y.shape and np.isfinite(got).mean() > 0.85
    for d in np.unique(days):
        rows = days == d
        for j in range(Y.shape[1]):
            want = _statsmodels_resid(Y[rows, j], X[rows], None if g is None else g[rows], standardize)
            np.testing.assert_allclose(got[rows, j], want, rtol=0, atol=1e-8, equal_nan=True)


def test_orthogonal_and_standardized():
    Y, X, days, groups = _cross_sections(seed=1)
    z = residualize_xsection(Y, X, days, groups)
    for d in np.unique(days):
        for j in range(Y.shape[1]):
            ok = (days == d) & np.isfinite(z[:, j])
            zz = z[ok, j]
            assert abs(zz.mean()) < 1e-12 and abs(zz.std(ddof=1) - 1) < 1e-12
            for k in range(X.shape[1]):
                assert abs(np.corrcoef(zz, X[ok, k])[0, 1]) < 1e-8
            for gv in np.unique(groups[ok]):
                assert abs(zz[groups[ok] == gv].mean()) < 1e-10


def test_missing_rows_constant_columns_and_one_dimensional():
    Y, X, days, groups = _cross_sections(seed=2, c=1)
    base = residualize_xsection(Y[:, 0], X, days, groups)
    assert base.ndim == 1
    # a constant exposure (and one constant inside every group) adds nothing: it is collinear with the dummies
    Xc = np.column_stack([X, np.full(len(Y), 3.7), groups / 1e4])
    np.testing.assert_allclose(residualize_xsection(Y[:, 0], Xc, days, groups), base, atol=1e-10, equal_nan=True)
    # rows missing an exposure, a group or the value are NaN; the others are the regression without them
    miss = ~np.isfinite(X).all(1) | np.isnan(groups) | np.isnan(Y[:, 0])
    assert miss.any() and np.isnan(base[miss]).all() and np.isfinite(base[~miss]).all()
    keep = ~miss
    np.testing.assert_allclose(residualize_xsection(Y[keep, 0], X[keep], days[keep], groups[keep]), base[keep],
                               atol=1e-10)


def test_columns_sharing_a_nan_pattern():
    Y, X, days, groups = _cross_sections(seed=4, c=2)
    Y3 = np.column_stack([Y, 2.0 * Y[:, 0] + 1.0])  # same NaNs as column 0: regressed together
    z = residualize_xsection(Y3, X, days, groups)
    np.testing.assert_allclose(z[:, 2], z[:, 0], atol=1e-10, equal_nan=True)  # z-score is affine-invariant
    np.testing.assert_allclose(z[:, :2], residualize_xsection(Y, X, days, groups), atol=1e-12, equal_nan=True)
    assert not np.allclose(z[:, 1], z[:, 0], equal_nan=True)


def test_too_few_names_and_degenerate_days():
    rng = np.random.default_rng(3)
    n = 30
    days = np.repeat([0, 1, 2, 3], n)
    X = rng.standard_normal((4 * n, 2))
    groups = np.tile(np.arange(n) % 5, 4).astype(float)
    y = rng.standard_normal(4 * n)
    y[n:2 * n][8:] = np.nan  # day 1: only 8 names with a value
    groups[2 * n:3 * n] = np.arange(n)  # day 2: every name its own industry -> no degrees of freedom
    y[3 * n:] = 2.0 * X[3 * n:, 0] + groups[3 * n:]  # day 3: fully explained -> zero residual
    z = residualize_xsection(y, X, days, groups, min_names=10)
    assert np.isfinite(z[:n]).all()
    assert np.isnan(z[n:]).all()
    # with a lower threshold day 1 is computed: 8 names - 5 groups - 2 exposures = 1 dof < 2 -> still NaN
    z8 = residualize_xsection(y, X, days, groups, min_names=8)
    assert np.isnan(z8[n:2 * n]).all()
    y[n:2 * n][8:10] = 0.5  # 10 names, 3 dof
    assert np.isfinite(residualize_xsection(y, X, days, groups, min_names=8)[n:2 * n][:10]).all()


def test_bad_shapes():
    with pytest.raises(ValueError, match="rows"):
        residualize_xsection(np.zeros(5), np.zeros((4, 1)), np.zeros(5))
    with pytest.raises(ValueError, match="min_names"):
        residualize_xsection(np.zeros(5), None, np.zeros(5), min_names=1)
