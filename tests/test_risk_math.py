"""Risk-model building blocks on small arrays, each against a brute-force or statsmodels computation."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from qlib_ext.risk.config import RiskConfig
from qlib_ext.risk.descriptors import beta_hsigma, cmra, dastd, market_return, rstr, share_turnover
from qlib_ext.risk.timeseries import window_sum, window_weights
from qlib_ext.risk.xsection import combine, impute, orthogonalize, standardize, winsorize


def _brute_window(x: np.ndarray, window: int, half_life: float | None, lag: int = 0) -> np.ndarray:
    lam = 1.0 if half_life is None else 0.5 ** (1 / half_life)
    out = np.zeros_like(x, dtype=float)
    for t in range(x.shape[0]):
        for k in range(window):
            if t - lag - k >= 0:
                out[t] += lam**k * x[t - lag - k]
    return out


@pytest.mark.parametrize("half_life,lag", [(None, 0), (4.0, 0), (7.5, 3)])
def test_window_sum_matches_loop(half_life, lag):
    x = np.random.default_rng(1).standard_normal((60, 3))
    np.testing.assert_allclose(window_sum(x, 10, half_life, lag), _brute_window(x, 10, half_life, lag), atol=1e-12)
    with pytest.raises(ValueError, match="finite"):
        window_sum(np.array([[np.nan]]), 3)


def _cross_section(seed: int = 0, T: int = 4, N: int = 200):
    rng = np.random.default_rng(seed)
    cap = np.exp(rng.normal(22, 1.2, (T, N)))
    x = rng.standard_t(3, (T, N)) + 0.3 * np.log(cap)
    x[0, :5] = np.nan
    cap[1, 5:9] = np.nan                     # not in the cross-section that day
    return x, cap


def test_standardize_cap_weighted_mean_equal_weighted_std():
    x, cap = _cross_section()
    z = standardize(x, cap)
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & np.isfinite(cap[t])
        assert np.isnan(z[t, ~ok]).all() and np.isfinite(z[t, ok]).all()
        assert abs(np.sum(cap[t, ok] * z[t, ok]) / cap[t, ok].sum()) < 1e-12
        assert np.std(z[t, ok]) == pytest.approx(1.0, abs=1e-12)
        # same as the textbook formula
        ref = (x[t, ok] - np.average(x[t, ok], weights=cap[t, ok])) / np.std(x[t, ok])
        np.testing.assert_allclose(z[t, ok], ref, atol=1e-12)


def test_winsorize_clips_then_restandardizes():
    x, cap = _cross_section(2)
    z = winsorize(x, cap, 3.0)
    raw = standardize(x, cap)
    assert np.nanmax(np.abs(raw)) > 4                                 # heavy tails were there
    for t in range(x.shape[0]):
        ok = np.isfinite(z[t])
        assert abs(np.average(z[t, ok], weights=cap[t, ok])) < 1e-12 and np.std(z[t, ok]) == pytest.approx(1, abs=1e-12)
        ref = standardize(np.clip(raw[t : t + 1], -3, 3), cap[t : t + 1])[0]
        np.testing.assert_allclose(z[t, ok], ref[ok], atol=1e-12)
        assert np.abs(z[t, ok]).max() < 3.5


def test_orthogonalize_equals_statsmodels_wls_residuals():
    rng = np.random.default_rng(3)
    T, N = 3, 150
    a, b = rng.standard_normal((T, N)), rng.standard_normal((T, N))
    y = 0.5 * a - 0.2 * b + rng.standard_normal((T, N))
    w = rng.uniform(1, 5, (T, N))
    y[1, :7] = np.nan
    res = orthogonalize(y, [a, b], w)
    for t in range(T):
        ok = np.isfinite(y[t])
        fit = sm.WLS(y[t, ok], sm.add_constant(np.column_stack([a[t, ok], b[t, ok]])), weights=w[t, ok]).fit()
        np.testing.assert_allclose(res[t, ok], fit.resid, atol=1e-10)
        assert np.isnan(res[t, ~ok]).all()
        assert abs(np.sum(w[t, ok] * res[t, ok] * a[t, ok])) < 1e-9


def test_combine_reweights_available_descriptors():
    p1 = np.array([[1.0, np.nan, np.nan]])
    p2 = np.array([[3.0, 2.0, np.nan]])
    out = combine([p1, p2], [0.75, 0.25])
    np.testing.assert_allclose(out[0, :2], [0.75 * 1 + 0.25 * 3, 2.0])
    assert np.isnan(out[0, 2])


def test_impute_is_the_industry_plus_size_regression_fit():
    rng = np.random.default_rng(4)
    T, N, K = 2, 300, 5
    industry = rng.integers(0, K, (T, N))
    size = rng.standard_normal((T, N))
    x = 0.4 * size + np.array([-1, 0, 1, 2, 0.5])[industry] + 0.3 * rng.standard_normal((T, N))
    w = rng.uniform(1, 3, (T, N))
    universe = np.ones((T, N), dtype=bool)
    universe[:, -3:] = False
    miss = rng.random((T, N)) < 0.1
    x_missing = np.where(miss, np.nan, x)
    out = impute(x_missing, size, industry, w, universe)
    for t in range(T):
        has = ~miss[t] & universe[t]
        D = np.eye(K)[industry[t]]
        fit = sm.WLS(x[t, has], np.column_stack([D[has], size[t, has]]), weights=w[t, has]).fit()
        want = np.column_stack([D, size[t]]) @ fit.params
        fill = miss[t] & universe[t]
        np.testing.assert_allclose(out[t, fill], want[fill], atol=1e-10)
        np.testing.assert_array_equal(out[t, ~miss[t]], x[t, ~miss[t]])       # observed values untouched
        assert np.isnan(out[t, miss[t] & ~universe[t]]).all()                # outside the universe: stays NaN


# ------------------------------------------------------------------------------------- descriptors
CFG = RiskConfig(beta_window=40, beta_half_life=10, beta_min_obs=15, dastd_window=30, dastd_half_life=8,
                 dastd_min_obs=10, rstr_window=50, rstr_half_life=20, rstr_lag=5, rstr_min_obs=20,
                 cmra_months=4, cmra_month_days=5, cmra_min_months=2, stom_days=5, stoq_months=2,
                 stoa_months=4, liquidity_min_obs=3)


def test_beta_exact_on_a_noiseless_stock():
    """r = 0.001 + 1.5 R exactly -> BETA = 1.5, HSIGMA = 0, whatever the weights."""
    mkt = np.random.default_rng(5).normal(0, 0.01, 80)
    ret = (0.001 + 1.5 * mkt)[:, None]
    beta, hsig = beta_hsigma(ret, mkt, CFG)
    assert np.isnan(beta[: CFG.beta_min_obs - 1]).all()                    # not enough history yet
    np.testing.assert_allclose(beta[CFG.beta_min_obs - 1 :, 0], 1.5, atol=1e-9)
    np.testing.assert_allclose(hsig[CFG.beta_min_obs - 1 :, 0], 0.0, atol=1e-7)


def test_beta_and_hsigma_equal_weighted_least_squares_by_hand():
    rng = np.random.default_rng(6)
    T = 90
    mkt = rng.normal(0, 0.01, T)
    ret = np.column_stack([0.8 * mkt + rng.normal(0, 0.02, T), 1.3 * mkt + rng.normal(0, 0.01, T)])
    ret[[50, 51, 70], 0] = np.nan                                        # suspended days are skipped
    beta, hsig = beta_hsigma(ret, mkt, CFG)
    wts = window_weights(CFG.beta_window, CFG.beta_half_life)
    for t in (60, 75, 89):
        for i in range(2):
            days = np.arange(t, t - CFG.beta_window, -1)
            ok = np.isfinite(ret[days, i])
            # np.polyfit weights multiply the unsquared residuals: sqrt of the regression weights
            b, a = np.polyfit(mkt[days][ok], ret[days, i][ok], 1, w=np.sqrt(wts[ok]))
            e = ret[days, i][ok] - a - b * mkt[days][ok]
            assert beta[t, i] == pytest.approx(b, rel=1e-9)
            assert hsig[t, i] == pytest.approx(np.sqrt(np.sum(wts[ok] * e**2) / wts[ok].sum()), rel=1e-8)


def test_dastd_rstr_cmra_turnover_by_hand():
    rng = np.random.default_rng(7)
    T = 80
    ret = rng.normal(0, 0.02, (T, 2))
    ret[30:33, 1] = np.nan
    listed = np.ones((T, 2), dtype=bool)
    listed[:12, 1] = False
    ret[:12, 1] = np.nan
    t = 70
    # DASTD
    w = window_weights(CFG.dastd_window, CFG.dastd_half_life)
    days = np.arange(t, t - CFG.dastd_window, -1)
    ok = np.isfinite(ret[days, 1])
    m = np.average(ret[days, 1][ok], weights=w[ok])
    want = np.sqrt(np.average((ret[days, 1][ok] - m) ** 2, weights=w[ok]))
    assert dastd(ret, CFG)[t, 1] == pytest.approx(want, rel=1e-9)
    # RSTR: weighted log returns from t-lag back over the window (missing days count 0)
    lr = np.log1p(np.nan_to_num(ret[:, 1]))
    w = window_weights(CFG.rstr_window, CFG.rstr_half_life)
    want = sum(w[k] * lr[t - CFG.rstr_lag - k] for k in range(CFG.rstr_window) if t - CFG.rstr_lag - k >= 0)
    assert rstr(ret, CFG)[t, 1] == pytest.approx(want, rel=1e-9)
    # CMRA: range of cumulative log returns over 1..4 months of 5 days
    z = [lr[t - 5 * k + 1 : t + 1].sum() for k in range(1, 5)]
    assert cmra(ret, listed, CFG)[t, 1] == pytest.approx(max(z) - min(z), rel=1e-9)
    young = cmra(ret, listed, CFG)[:, 1]
    assert np.isnan(young[12 + 2 * 5 - 2]) and np.isfinite(young[12 + 2 * 5 - 1])   # two full months needed
    # STOM / STOQ / STOA = ln(5 x mean turnover over 5 / 10 / 20 days)
    turn = rng.uniform(0.001, 0.05, (T, 1))
    turn[40:45] = 0.0                                                     # suspended: zero turnover counts
    stom, stoq, stoa = share_turnover(turn, CFG)
    for out, days in ((stom, 5), (stoq, 10), (stoa, 20)):
        assert out[t, 0] == pytest.approx(np.log(5 * turn[t - days + 1 : t + 1, 0].mean()), rel=1e-9)
    assert np.isnan(stom[44, 0])                                          # a whole month without trading


def test_market_return_weights_previous_caps():
    ret = np.array([[np.nan, np.nan, np.nan], [0.01, -0.02, np.nan], [0.03, 0.00, 0.05]])
    mcap = np.array([[1.0, 3.0, np.nan], [2.0, 3.0, 5.0], [2.0, 3.0, 5.0]])
    R = market_return(ret, mcap)
    assert np.isnan(R[0])
    assert R[1] == pytest.approx((1 * 0.01 + 3 * -0.02) / 4)
    assert R[2] == pytest.approx((2 * 0.03 + 3 * 0.0 + 5 * 0.05) / 10)
