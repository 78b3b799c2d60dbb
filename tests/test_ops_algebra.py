"""Minute algebra and factor library against an independent pure-Python loop, edge cases, scipy."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats

from qlib_ext.ops.algebra import Minutes
from qlib_ext.ops.batch import compute_factors
from qlib_ext.ops.library import MF_FIELDS, compute_library, mean_expressions

NAN = float("nan")


# ---- an independent reference: plain loops over one day's bars, float64, no numpy --------------
def reference(day: dict[str, list[float]]) -> dict[str, float]:
    o, h, lo, c, v, a = (day[f] for f in ("open", "high", "low", "close", "volume", "amount"))
    present = [t for t in range(240) if all(math.isfinite(x[t]) for x in (o, h, lo, c, v, a)) and c[t] > 0 and v[t] >= 0]
    if not present:
        return {f: NAN for f in MF_FIELDS}
    ref, r = {}, {}
    prev = None
    for t in present:
        ref[t] = o[t] if prev is None else c[prev]
        r[t] = c[t] / ref[t] - 1
        prev = t
    n = len(present)

    def ratio(x, y):
        return x / y if y != 0 else NAN

    def compound(ts):
        if not ts:
            return NAN
        p = 1.0
        for t in ts:
            p *= 1 + r[t]
        return p - 1

    def corr(xs, ys):
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
        sxx = sum((x - mx) ** 2 for x in xs)
        syy = sum((y - my) ** 2 for y in ys)
        return ratio(sxy, math.sqrt(sxx * syy)) if len(xs) >= 2 else NAN

    def top(ts, score, frac):
        k = math.ceil(Fraction(frac).limit_denominator(100) * len(ts))
        return sorted(ts, key=score, reverse=True)[:k]

    s2 = sum(r[t] ** 2 for t in present)
    vol_tot = sum(v[t] for t in present)
    traded = [t for t in present if v[t] > 0]
    smart = top(traded, lambda t: abs(r[t]) / math.sqrt(v[t]), 0.2)
    vwap_s = ratio(sum(a[t] for t in smart), sum(v[t] for t in smart))
    vwap_all = ratio(sum(a[t] for t in traded), sum(v[t] for t in traded))
    heavy = top(present, lambda t: v[t], 0.1)
    return {
        "mf_rvol": math.sqrt(s2),
        "mf_rskew": ratio(math.sqrt(n) * sum(r[t] ** 3 for t in present), s2**1.5),
        "mf_rkurt": ratio(n * sum(r[t] ** 4 for t in present), s2**2),
        "mf_downvol": ratio(sum(r[t] ** 2 for t in present if r[t] < 0), s2),
        "mf_corr_pv": corr([c[t] for t in present], [v[t] for t in present]),
        "mf_corr_vr": corr([v[t] for t in present], [r[t] for t in present]),
        "mf_ret_open30": compound([t for t in present if t < 30]),
        "mf_ret_close30": compound([t for t in present if t >= 210]),
        "mf_vshare_open30": ratio(sum(v[t] for t in present if t < 30), vol_tot),
        "mf_vshare_close30": ratio(sum(v[t] for t in present if t >= 210), vol_tot),
        "mf_trend": ratio(c[present[-1]] - o[present[0]], sum(abs(c[t] - ref[t]) for t in present)),
        "mf_smart": vwap_s / vwap_all - 1 if traded else NAN,
        "mf_amp": sum((h[t] - lo[t]) / ref[t] for t in present) / n,
        "mf_vhhi": ratio(sum((v[t] / vol_tot) ** 2 for t in present), 1.0) if vol_tot > 0 else NAN,
        "mf_topvol_ret": compound(heavy),
    }


def random_day(rng: np.random.Generator, p0: float = 12.3) -> dict[str, np.ndarray]:
    """A continuous (untied) random day: U-shaped volume, returns tilted toward volume."""
    r = rng.standard_normal(240) * 0.002
    close = p0 * np.exp(np.cumsum(r))
    opn = np.concatenate([[p0 * (1 + 0.001 * rng.standard_normal())], close[:-1]])
    high = np.maximum(opn, close) * (1 + 0.0005 * rng.random(240))
    low = np.minimum(opn, close) * (1 - 0.0005 * rng.random(240))
    vol = 1e4 * (1 + 2 * np.exp(-np.arange(240) / 15)) * np.exp(0.4 * rng.standard_normal(240) + 30 * r)
    amount = vol * (opn + high + low + close) / 4
    return {"open": opn, "high": high, "low": low, "close": close, "volume": vol, "amount": amount}


def check_day(day: dict[str, np.ndarray], rtol: float = 1e-9) -> None:
    got = compute_factors({k: v[None, :] for k, v in day.items()}, dtype="float64", device="cpu")
    want = reference({k: list(map(float, v)) for k, v in day.items()})
    for f in MF_FIELDS:
        g, w = float(got[f][0]), want[f]
        assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w, rel=rtol, abs=1e-12), (f, g, w)


def test_hand_computed_two_moves():
    """Open 10.00, +1 % at 09:31, back to 10.00 at 09:32, flat afterwards: closed-form values."""
    close = np.full(240, 10.0)
    close[0] = 10.1
    opn = np.concatenate([[10.0], close[:-1]])
    vol = np.full(240, 10.0)
    vol[0], vol[1] = 100.0, 300.0
    day = {"open": opn, "high": np.maximum(opn, close), "low": np.minimum(opn, close), "close": close,
           "volume": vol, "amount": vol * close}
    got = {k: float(v[0]) for k, v in compute_factors({k: v[None] for k, v in day.items()}, dtype="float64", device="cpu").items()}
    r0, r1 = 0.01, 10.0 / 10.1 - 1
    s2 = r0**2 + r1**2
    assert got["mf_rvol"] == pytest.approx(math.sqrt(s2))
    assert got["mf_rskew"] == pytest.approx(math.sqrt(240) * (r0**3 + r1**3) / s2**1.5)
    assert got["mf_rkurt"] == pytest.approx(240 * (r0**4 + r1**4) / s2**2)
    assert got["mf_downvol"] == pytest.approx(r1**2 / s2)
    assert got["mf_ret_open30"] == pytest.approx(0.0, abs=1e-15)          # back to the open by 10:00
    assert got["mf_ret_close30"] == 0.0
    assert got["mf_trend"] == pytest.approx(0.0, abs=1e-15)                # net 0 over a 0.2 path
    total_v = 100 + 300 + 238 * 10
    assert got["mf_vshare_open30"] == pytest.approx((100 + 300 + 28 * 10) / total_v)
    assert got["mf_vshare_close30"] == pytest.approx(300 / total_v)
    assert got["mf_vhhi"] == pytest.approx((100**2 + 300**2 + 238 * 10**2) / total_v**2)
    assert got["mf_amp"] == pytest.approx((0.1 / 10 + 0.1 / 10.1) / 240)
    # top 10 % by volume = 24 minutes: 09:31 (+1 %), 09:32 (back) and 22 flat ones (ties at 10 kept)
    assert got["mf_topvol_ret"] == pytest.approx(0.0, abs=1e-15)
    # smart: scores |r|/sqrt(v): 09:31 = 0.001, 09:32 = 0.00057, others 0 -> top 48 includes all
    # the zero-score ties, i.e. every minute: vwap(S) = vwap(all)
    assert got["mf_smart"] == pytest.approx(0.0, abs=1e-15)
    assert got["mf_corr_vr"] == pytest.approx(np.corrcoef(vol, np.r_[r0, r1, np.zeros(238)])[0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_days_match_reference(seed):
    check_day(random_day(np.random.default_rng(seed)))


def test_missing_and_zero_volume_minutes():
    rng = np.random.default_rng(5)
    day = random_day(rng)
    for f in day:                                  # missing minutes, including the first and the last
        day[f][[0, 1, 50, 51, 52, 119, 120, 239]] = np.nan
    day["volume"][[10, 11, 200]] = 0.0             # zero-volume minutes keep their (stale) prices
    day["amount"][[10, 11, 200]] = 0.0
    day["close"][[10, 11]] = day["close"][9]
    check_day(day)
    d = Minutes({k: v[None] for k, v in day.items()})
    assert float(d.n[0]) == 232
    assert int(d.count(d.up())[0]) + int(d.count(d.down())[0]) + int((d.ret[0][d.valid[0]] == 0).sum()) == 232
    ok = d.valid[0]
    np.testing.assert_allclose(d.bar_ret[0][ok], (day["close"] / day["open"] - 1)[ok], rtol=1e-9, atol=1e-15)
    assert (d.bar_ret[0][~ok] == 0).all() and (d.ret[0][~ok] == 0).all()
    # the gap's move is kept: 09:31..09:32 missing, 09:33's return is from the day's first present open
    assert float(d.ret[0, 2]) == pytest.approx(day["close"][2] / day["open"][2] - 1)
    assert float(d.ret[0, 53]) == pytest.approx(day["close"][53] / day["close"][49] - 1)


def test_suspended_constant_and_single_minute_days():
    nan_day = {f: np.full(240, np.nan) for f in ("open", "high", "low", "close")}
    nan_day |= {"volume": np.zeros(240), "amount": np.zeros(240)}           # suspended: as the generator writes it
    flat = {f: np.full(240, 11.0) for f in ("open", "high", "low", "close")}
    flat |= {"volume": np.full(240, 50.0), "amount": np.full(240, 550.0)}   # one-word limit board: locked all day
    one = {f: np.full(240, np.nan) for f in ("open", "high", "low", "close", "volume", "amount")}
    one |= {"open": np.r_[10.0, [np.nan] * 239], "close": np.r_[10.2, [np.nan] * 239],
            "high": np.r_[10.3, [np.nan] * 239], "low": np.r_[9.9, [np.nan] * 239],
            "volume": np.r_[5.0, [np.nan] * 239], "amount": np.r_[51.0, [np.nan] * 239]}
    bars = {f: np.stack([nan_day[f], flat[f], one[f]]) for f in flat}
    with np.errstate(all="raise"):                                          # no division warning anywhere
        got = compute_factors(bars, dtype="float64", device="cpu")
    assert all(np.isnan(got[f][0]) for f in MF_FIELDS)
    locked = {f: got[f][1] for f in MF_FIELDS}
    for f in ("mf_rskew", "mf_rkurt", "mf_downvol", "mf_corr_pv", "mf_corr_vr", "mf_trend"):
        assert np.isnan(locked[f]), f                                       # 0/0: NaN, not inf
    for f in ("mf_rvol", "mf_ret_open30", "mf_ret_close30", "mf_smart", "mf_amp", "mf_topvol_ret"):
        assert locked[f] == 0.0, f
    assert locked["mf_vhhi"] == pytest.approx(1 / 240)
    assert locked["mf_vshare_open30"] == pytest.approx(30 / 240)
    single = {f: got[f][2] for f in MF_FIELDS}
    assert single["mf_rvol"] == pytest.approx(0.02)
    assert single["mf_trend"] == pytest.approx(1.0)
    assert np.isnan(single["mf_corr_vr"]) and np.isnan(single["mf_ret_close30"])
    assert single["mf_vhhi"] == 1.0


def test_generic_reductions_match_scipy():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 240)) * 0.01 + 25.0                         # a price-like level
    y = rng.standard_normal((7, 240))
    mask = rng.random((7, 240)) > 0.3
    bars = {f: x for f in ("open", "high", "low", "close")} | {"volume": np.abs(y), "amount": np.abs(y)}
    d = Minutes(bars)
    for i in range(7):
        xi, yi = x[i][mask[i]], y[i][mask[i]]
        assert d.std(x, mask)[i] == pytest.approx(np.std(xi), rel=1e-9)
        assert d.skew(x, mask)[i] == pytest.approx(scipy.stats.skew(xi, bias=True), rel=1e-7)
        assert d.kurt(x, mask)[i] == pytest.approx(scipy.stats.kurtosis(xi, bias=True), rel=1e-7)
        assert d.corr(x, y, mask)[i] == pytest.approx(scipy.stats.pearsonr(xi, yi)[0], rel=1e-8)
        assert d.mean(y, mask)[i] == pytest.approx(yi.mean(), rel=1e-12)
    assert float(d.count(d.top(y, 0.25, mask))[0]) == math.ceil(0.25 * mask[0].sum())


def test_float32_close_to_float64():
    """float32 keeps small price moves (exact differences): within 1e-4 of each factor's spread."""
    rng = np.random.default_rng(3)
    days = [random_day(rng, p0=p) for p in rng.uniform(3, 300, 64)]
    bars = {f: np.stack([d[f] for d in days]) for f in days[0]}
    f64 = compute_factors(bars, dtype="float64", device="cpu")
    f32 = compute_factors({k: v.astype(np.float32) for k, v in bars.items()}, dtype="float32", device="cpu")
    for f in MF_FIELDS:
        if f == "mf_smart":
            continue          # a top-k selection may flip at the threshold under float32 rounding
        assert np.nanmax(np.abs(f32[f] - f64[f])) <= 1e-4 * np.nanstd(f64[f]) + 1e-7, f


def test_torch_path_matches_numpy():
    pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    days = [random_day(rng) for _ in range(50)]
    bars = {f: np.stack([d[f] for d in days]).reshape(5, 10, 240) for f in days[0]}
    for f in bars:
        bars[f][0, 0, 3:9] = np.nan                     # missing minutes
        bars[f][1, 2] = np.nan                           # a suspended day
    a = compute_factors(bars, dtype="float64", device="cpu")
    b = compute_factors(bars, dtype="float64", device="torch-cpu", rows_per_block=7)
    for f in MF_FIELDS:
        np.testing.assert_allclose(b[f], a[f], rtol=1e-6, atol=1e-12, err_msg=f)
        assert np.isnan(a[f][1, 2])
    a32 = compute_factors(bars, device="cpu")
    b32 = compute_factors(bars, device="torch-cpu")
    eps32 = float(np.finfo(np.float32).eps)
    for f in MF_FIELDS:       # float32: a few ulps of the quantities (mf_smart is a ratio of two ~1 numbers, minus 1)
        assert np.nanmax(np.abs(a32[f] - b32[f])) <= 1e-5 * np.nanstd(a[f]) + 4 * eps32 * (f == "mf_smart") + 1e-8, f


def test_library_names_and_expressions():
    assert len(MF_FIELDS) >= 15 and all(f.startswith("mf_") and f == f.lower() for f in MF_FIELDS)
    exprs = mean_expressions(20, ["rskew", "mf_corr_vr"])
    assert exprs == {"mf_rskew_mean20": "Mean($mf_rskew, 20)", "mf_corr_vr_mean20": "Mean($mf_corr_vr, 20)"}
    assert mean_expressions(5, ["MinTrend"], ops=True) == {"mf_trend_mean5": "Mean(MinTrend(), 5)"}
    with pytest.raises(KeyError, match="nosuch"):
        compute_library({f: np.zeros((1, 240)) for f in ("open", "high", "low", "close", "volume", "amount")}, ["nosuch"])
