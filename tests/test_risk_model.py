"""The risk model built on the tiny market: exposures, constrained WLS factor returns, covariance, store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from qlib_ext.data.panel import read_panel
from qlib_ext.risk import (
    STYLES,
    build_risk,
    load_covariance,
    load_exposures,
    load_factor_returns,
    load_meta,
    load_regression_stats,
    load_specific_returns,
    load_specific_risk,
    store_path,
)

DAY_ONLY = shutil.ignore_patterns("*.1min.bin", "1min.txt", "risk", ".staging")


@pytest.fixture(scope="module")
def built(tiny_market, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("risk_model") / "qlib_data"
    shutil.copytree(tiny_market, data, ignore=DAY_ONLY)
    build_risk(data, progress=False, export_qlib=False)
    return data


@pytest.fixture(scope="module")
def panels(built) -> dict[str, pd.DataFrame]:
    return {f: read_panel(built, f) for f in ("mcap", "change", "industry")}


def _long(panel: pd.DataFrame, index: pd.MultiIndex) -> np.ndarray:
    s = panel.stack()
    s.index.names = ["datetime", "instrument"]
    return s.reindex(index).to_numpy(dtype=np.float64)


def test_exposures_cap_weighted_mean_zero_equal_weighted_std_one(built, panels):
    e = load_exposures(built)
    assert list(e.columns) == [*STYLES, "industry"] and len(e) > 50_000
    cap = _long(panels["mcap"], e.index)
    assert np.isfinite(cap).all() and np.isfinite(e[list(STYLES)].to_numpy()).all()
    days = e.index.get_level_values("datetime")
    for s in STYLES:
        x = e[s].to_numpy(dtype=np.float64)
        cw = pd.Series(x * cap).groupby(days).sum() / pd.Series(cap).groupby(days).sum()
        sd = pd.Series(x).groupby(days).std(ddof=0)
        assert cw.abs().max() < 2e-6, s
        assert (sd - 1).abs().max() < 2e-6, s
    # winsorised: size at most a little past 3 std (clip then re-standardise)
    assert e["size"].abs().max() < 3.6


def test_size_is_winsorised_standardised_ln_mcap(built, panels):
    e = load_exposures(built)
    cap = pd.Series(_long(panels["mcap"], e.index), index=e.index)

    def by_hand(c: pd.Series) -> pd.Series:
        def std(x):
            return (x - np.average(x, weights=c)) / x.std(ddof=0)
        return std(std(np.log(c)).clip(-3, 3))

    want = cap.groupby(level="datetime", group_keys=False).apply(by_hand)
    np.testing.assert_allclose(e["size"].to_numpy(), want.reindex(e.index).to_numpy(), atol=2e-6)


def test_orthogonalised_styles_have_zero_cap_weighted_covariance(built, panels):
    e = load_exposures(built)
    cap = _long(panels["mcap"], e.index)
    days = e.index.get_level_values("datetime")

    def cw_cov(a: str, b: str | np.ndarray) -> pd.Series:
        y = e[b].to_numpy(np.float64) if isinstance(b, str) else b
        return pd.Series(cap * e[a].to_numpy(np.float64) * y).groupby(days).sum() / pd.Series(cap).groupby(days).sum()

    size = e["size"].to_numpy(np.float64)
    assert cw_cov("size", size**3).abs().min() > 0.5          # the raw cube is far from orthogonal ...
    for a, b in (("nonlinear_size", "size"), ("residual_volatility", "size"),
                 ("residual_volatility", "beta"), ("liquidity", "size")):
        assert cw_cov(a, b).abs().max() < 2e-6, (a, b)        # ... the exposures are
    # and nonlinear size still carries the cubic shape: it correlates with the size-cube residual
    resid = size**3 - np.polyval(np.polyfit(size, size**3, 1), size)
    assert np.corrcoef(resid, e["nonlinear_size"])[0, 1] > 0.5


def _regression_inputs(built, panels, day: pd.Timestamp, nxt: pd.Timestamp):
    e = load_exposures(built, day, day).droplevel("datetime")
    chg = panels["change"]
    y = chg.loc[nxt].reindex(e.index)
    ok = y.notna() & chg.loc[day].reindex(e.index).notna()
    e, y = e[ok], y[ok].to_numpy(np.float64)
    cap = panels["mcap"].loc[day].reindex(e.index).to_numpy(np.float64)
    return e, y, cap


def test_factor_returns_equal_independent_constrained_wls(built, panels):
    """statsmodels WLS eliminating the *smallest* industry, and the KKT system, vs the store."""
    meta = load_meta(built)
    f_store = load_factor_returns(built)
    stats = load_regression_stats(built)
    spec = load_specific_returns(built)
    cal = panels["change"].index
    days = f_store.index[[5, 150, 300, len(f_store) // 2, -1]]
    for nxt in days:
        day = cal[cal.get_loc(nxt) - 1]
        e, y, cap = _regression_inputs(built, panels, day, nxt)
        codes = np.array(meta["industries"])
        D = (e["industry"].to_numpy()[:, None] == codes[None, :]).astype(float)
        c = cap @ D
        present = np.flatnonzero(c > 0)
        drop = present[np.argmin(c[present])]
        keep = present[present != drop]
        Dr = D[:, keep] - np.outer(D[:, drop], c[keep] / c[drop])
        S = e[list(STYLES)].to_numpy(np.float64)
        X = np.column_stack([np.ones(len(y)), Dr, S])
        fit = sm.WLS(y, X, weights=np.sqrt(cap)).fit()
        f_ind = np.full(codes.size, np.nan)
        f_ind[keep] = fit.params[1 : 1 + keep.size]
        f_ind[drop] = -c[keep] @ f_ind[keep] / c[drop]
        want = np.concatenate([[fit.params[0]], f_ind, fit.params[1 + keep.size :]])
        got = f_store.loc[nxt, meta["factors"]].to_numpy()
        np.testing.assert_allclose(got, want, atol=1e-8, rtol=0)
        assert stats.loc[nxt, "r2"] == pytest.approx(fit.rsquared, abs=1e-8)
        assert stats.loc[nxt, "n_obs"] == len(y)
        # KKT: min sum w (y - Z f)^2  s.t.  c' f_ind = 0, over present industries
        Z = np.column_stack([np.ones(len(y)), D[:, present], S])
        w = np.sqrt(cap)
        C = np.concatenate([[0.0], c[present], np.zeros(len(STYLES))])
        kkt = np.block([[Z.T @ (w[:, None] * Z), C[:, None]], [C[None, :], np.zeros((1, 1))]])
        sol = np.linalg.solve(kkt, np.concatenate([Z.T @ (w * y), [0.0]]))[:-1]
        np.testing.assert_allclose(got[np.r_[0, 1 + present, 1 + codes.size + np.arange(len(STYLES))]], sol,
                                   atol=1e-8, rtol=0)
        # specific returns = r - X f, stored as float32
        u = spec.xs(nxt, level="datetime").reindex(e.index).to_numpy()
        np.testing.assert_allclose(u, fit.resid, atol=1e-6)


def test_industry_constraint_and_sample_on_every_day(built, panels):
    meta = load_meta(built)
    f = load_factor_returns(built)
    e = load_exposures(built)
    chg, cal = panels["change"], panels["change"].index
    pos = cal.get_indexer(e.index.get_level_values("datetime"))
    inst = panels["change"].columns.get_indexer(e.index.get_level_values("instrument"))
    ret_t, ret_n = chg.to_numpy()[pos, inst], chg.to_numpy()[np.minimum(pos + 1, len(cal) - 1), inst]
    ok = np.isfinite(ret_t) & np.isfinite(ret_n) & (pos + 1 < len(cal))
    cap = panels["mcap"].to_numpy()[pos, inst].astype(np.float64)
    caps = pd.DataFrame({"nxt": cal[np.minimum(pos + 1, len(cal) - 1)][ok], "ind": e["industry"].to_numpy()[ok],
                         "cap": cap[ok]}).groupby(["nxt", "ind"])["cap"].sum().unstack("ind")
    caps = caps.reindex(index=f.index, columns=meta["industries"]).fillna(0.0)
    ind_cols = [c for c in meta["factors"] if c.startswith("ind_")]
    fi = f[ind_cols].to_numpy()
    total = np.nansum(caps.to_numpy() * fi, axis=1)
    scale = np.nansum(caps.to_numpy() * np.abs(fi), axis=1)
    assert (np.abs(total) <= 1e-10 * scale).all()
    assert (scale > 0).all() and len(f) > 600


def test_covariance_and_specific_risk_by_hand(built):
    meta, cfg = load_meta(built), load_meta(built)["config"]
    f = load_factor_returns(built)[meta["factors"]]
    date = f.index[-1]
    cov = load_covariance(built, date)
    assert list(cov.index) == list(cov.columns) == meta["factors"]
    F = np.nan_to_num(f.to_numpy())
    age = np.arange(len(F))[::-1]
    wc = 0.5 ** (age / cfg["cov_corr_half_life"])
    wv = 0.5 ** (age / cfg["cov_vol_half_life"])
    m2 = (F * wc[:, None]).T @ F / wc.sum()
    corr = m2 / np.sqrt(np.outer(np.diag(m2), np.diag(m2)))
    vol = np.sqrt((wv[:, None] * F**2).sum(axis=0) / wv.sum())
    np.testing.assert_allclose(cov.to_numpy(), corr * np.outer(vol, vol), rtol=1e-9, atol=1e-16)
    assert np.linalg.eigvalsh(cov.to_numpy()).min() > -1e-12
    # a date between store dates resolves to the last one before it; before the start is an error
    assert load_covariance(built, date + pd.Timedelta(days=3)).equals(cov)
    with pytest.raises(KeyError, match="2000-01-03"):
        load_covariance(built, "2000-01-03")
    # specific risk of a few stocks: EWMA of their stored specific returns
    u = load_specific_returns(built).unstack("instrument")
    risk = load_specific_risk(built, date)
    for inst in risk.index[:5]:
        col = u[inst].loc[:date].dropna()
        w = 0.5 ** ((len(u.loc[:date]) - 1 - u.index.get_indexer(col.index)) / cfg["specific_half_life"])
        assert risk[inst] == pytest.approx(np.sqrt(np.sum(w * col.to_numpy(np.float64) ** 2) / w.sum()), rel=1e-5)


def test_start_trims_output_only(built, tmp_path):
    meta = load_meta(built)
    start = pd.Timestamp(meta["end"]) - pd.Timedelta(days=120)
    out = build_risk(built, start=start, progress=False, export_qlib=False, out=tmp_path / "late")
    late, full = load_exposures(out), load_exposures(built, start=start)
    assert late.index.get_level_values("datetime").min() >= start
    pd.testing.assert_frame_equal(late, full)
    pd.testing.assert_frame_equal(load_factor_returns(out), load_factor_returns(built, start=start))
    d = load_factor_returns(out).index[-1]
    pd.testing.assert_frame_equal(load_covariance(out, d), load_covariance(built, d))


def test_loaders_dummies_and_atomic_rebuild(built, monkeypatch):
    meta = load_meta(built)
    assert meta["factors"][0] == "country" and meta["factors"][-len(STYLES):] == list(STYLES)
    x = load_exposures(built, meta["end"], meta["end"], industry_dummies=True)
    assert list(x.columns) == meta["factors"]
    ind = x[[c for c in x.columns if c.startswith("ind_")]]
    assert (ind.sum(axis=1) == 1).all() and (x["country"] == 1).all()
    assert store_path(built) == built / "risk" and store_path(built / "risk") == built / "risk"
    with pytest.raises(FileNotFoundError, match="risk build"):
        store_path(built / "features")

    # a build that fails half-way leaves the previous store as it was and no temp directory behind
    import qlib_ext.risk.build as build_mod

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_mod, "export_riskmodel_root", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_risk(built, progress=False, export_qlib=True, benchmark_fields=False)
    assert json.loads((built / "risk" / "meta.json").read_text())["built_at"] == meta["built_at"]
    assert [p.name for p in built.iterdir() if p.name.startswith(".risk")] == []


def test_missing_field_is_named(micro_market, tmp_path):
    data = tmp_path / "qlib_data"
    shutil.copytree(micro_market, data, ignore=shutil.ignore_patterns("*.1min.bin", "turnover.day.bin"))
    with pytest.raises(FileNotFoundError, match="'turnover'"):
        build_risk(data, progress=False)
    assert not (data / "risk").exists()
