"""AttributionRecord (figures 25-26): the split against direct loops, the exact identity, the recorder's
artifacts and metrics, and clean failures (missing risk store, empty backtest) with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_backtest import log_backtest, make_backtest

import qlib_ext
from qlib_ext.analysis import AttributionRecord
from qlib_ext.analysis.metrics.attribution import (
    active_exposures,
    active_weights,
    attribute,
    default_periods,
    period_table,
    specific_contribution,
)
from qlib_ext.risk import build_risk, load_exposures, load_factor_returns, load_meta, load_specific_returns
from qlib_ext.schema import ARTIFACTS


@pytest.fixture(scope="module")
def store(tiny_market, tmp_path_factory):
    return build_risk(tiny_market, out=tmp_path_factory.mktemp("risk") / "risk", export_qlib=False, progress=False)


@pytest.fixture(scope="module")
def backtest(tiny_market, tmp_path_factory):
    qlib_ext.init(tiny_market, mlruns=tmp_path_factory.mktemp("mlruns_attr"))
    return make_backtest()


def _split(bt, store):
    styles = load_meta(store)["styles"]
    d = active_weights(bt.weights, bt.bench)
    expo = load_exposures(store, start="2023-05-01", end="2024-03-28")
    x = active_exposures(d, expo, styles)
    f = load_factor_returns(store, start="2023-05-01")
    a = (bt.report["return"] - bt.report["bench"] - bt.report["cost"]).rename("active")
    cal = pd.DatetimeIndex(sorted(set(a.index) | set(x.index) | set(f.index)))
    spec = specific_contribution(d, load_specific_returns(store, start="2023-05-01"), cal)
    return styles, d, expo, f, a, attribute(a, x, f, styles, specific=spec)


def test_split_matches_direct_loops_and_adds_up_exactly(backtest, store):
    styles, d, expo, f, a, out = _split(backtest, store)
    # the identity: style + industry + residual = active, every day
    assert np.abs(out["style"] + out["industry"] + out["residual"] - a).max() <= 1e-10
    assert np.abs(out[styles].sum(axis=1) - out["style"]).max() <= 1e-12
    # an independent loop over stocks on a few days: previous session's d and X, this day's f
    days = a.index
    for k in (1, 7, 60, len(days) - 1):
        t, s = days[k], days[k - 1]
        ds = d.xs(s, level="datetime")
        xs = expo.xs(s, level="datetime")
        style_sum, ind_sum = 0.0, 0.0
        for inst, w in ds.items():
            if inst not in xs.index or xs.loc[inst, styles].isna().any():
                continue
            for st in styles:
                style_sum += w * float(xs.loc[inst, st]) * float(f.loc[t, st])
            ind_sum += w * float(f.loc[t, f"ind_{int(xs.loc[inst, 'industry'])}"])
        assert out.loc[t, "style"] == pytest.approx(style_sum, abs=1e-12)
        assert out.loc[t, "industry"] == pytest.approx(ind_sum, abs=1e-12)
    # the first day has no previous holdings: everything is residual
    assert out["style"].iloc[0] == 0 and out["residual"].iloc[0] == a.iloc[0]


def test_residual_is_country_plus_specific_when_every_stock_is_in_the_regression(backtest, store):
    """r_i = country + industry + X f + u_i for regression stocks, so 'other' vanishes on days where
    every actively weighted stock was in that day's regression (here the active return is exactly
    sum_i d_i r_i: no costs, close-to-close)."""
    _, d, _, _, a, out = _split(backtest, store)
    u = load_specific_returns(store, start="2023-05-01")
    days = a.index
    checked = 0
    for k in range(1, len(days)):
        t, s = days[k], days[k - 1]
        ds = d.xs(s, level="datetime")
        ds = ds[ds.abs() > 0]
        ut = u.xs(t, level="datetime") if t in u.index.get_level_values(0) else pd.Series(dtype=float)
        if ds.index.isin(ut.index).all():
            checked += 1
            assert abs(out.loc[t, "other"]) < 2e-6 * max(1.0, abs(out.loc[t, "active"]) * 100)
    assert checked >= 20


def test_periods_are_annualised_sums():
    idx = pd.bdate_range("2023-12-01", "2024-03-29")
    rng = np.random.default_rng(3)
    c = pd.DataFrame(rng.normal(0, 1e-3, (len(idx), 2)), index=idx, columns=["style", "residual"])
    periods = default_periods(idx, ("2024-01-01", "2024-03-29"))
    assert set(periods) == {"full", "2023", "2024", "window"}
    t = period_table(c, periods)
    part = c.loc["2024-01-01":"2024-03-29"]
    assert t.loc["window", "style"] == pytest.approx(part["style"].sum() * 252 / len(part))
    assert t.loc["2023", "n_days"] == (idx.year == 2023).sum()
    assert np.isnan(period_table(c, {"none": ("2030-01-01", "2030-02-01")}).loc["none", "style"])
    # a year stub shorter than min_days (the backtest's first day, 2016-12-30) is no period of its own
    stub = pd.DatetimeIndex([pd.Timestamp("2016-12-30"), *pd.bdate_range("2017-01-02", "2017-03-31")])
    assert set(default_periods(stub)) == {"full", "2017"}
    assert set(default_periods(stub, min_days=1)) == {"full", "2016", "2017"}


def test_recorder_writes_artifacts_and_metrics(backtest, store, tmp_path, monkeypatch):
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)
    with R.start(experiment_name="attr"):
        rec = R.get_recorder()
        log_backtest(rec, backtest)
        result = AttributionRecord(rec, benchmark="csi500", risk_store=str(store)).generate()
    arts = set(rec.list_artifacts(ARTIFACTS.ATTRIBUTION))
    assert {f"{ARTIFACTS.ATTRIBUTION}/{n}" for n in AttributionRecord(rec).list()} <= arts
    local = Path(rec.get_local_dir()) / "artifacts" / ARTIFACTS.ATTRIBUTION
    for png in ("cumulative.png", "periods.png"):
        assert (local / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    daily = pd.read_csv(local / "daily.csv", index_col=0, parse_dates=True)
    assert np.abs(daily["style"] + daily["industry"] + daily["residual"] - daily["active"]).max() <= 1e-10
    a = backtest.report["return"] - backtest.report["bench"] - backtest.report["cost"]
    np.testing.assert_allclose(daily["active"].to_numpy(), a.to_numpy(), atol=1e-15)
    metrics = rec.list_metrics()
    assert metrics["attribution.ann_active"] == pytest.approx(a.sum() * 252 / len(a), rel=1e-9)
    assert metrics["attribution.identity_error"] <= 1e-10
    summary = json.loads((local / "summary.json").read_text())
    assert summary["ann_style"] == pytest.approx(result["metrics"]["ann_style"])
    periods = pd.read_csv(local / "periods.csv", index_col=0)
    assert {"full", "2023", "2024", "window"} <= set(periods.index)


def test_missing_inputs_fail_by_name_and_write_nothing(backtest, store, tmp_path, monkeypatch):
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)
    with R.start(experiment_name="attr_bad"):
        rec = R.get_recorder()
        with pytest.raises(FileNotFoundError, match="portfolio_analysis/report_normal_1day.pkl.*PortAnaRecord"):
            AttributionRecord(rec, risk_store=str(store)).generate()
        log_backtest(rec, backtest)
        with pytest.raises(FileNotFoundError, match="risk_store.*no_store"):
            AttributionRecord(rec, risk_store=str(tmp_path / "no_store")).generate()
        empty = backtest.report.iloc[:0]
        rec.save_objects(artifact_path="portfolio_analysis", **{"report_normal_1day.pkl": empty})
        with pytest.raises(ValueError, match="report_normal_1day.pkl.*no days"):
            AttributionRecord(rec, risk_store=str(store)).generate()
    assert rec.list_artifacts(ARTIFACTS.ATTRIBUTION) == []
    assert not any(k.startswith("attribution.") for k in rec.list_metrics())


def test_bad_frames_are_refused():
    idx = pd.MultiIndex.from_product([pd.bdate_range("2024-01-02", periods=3), ["A", "B"]],
                                     names=["datetime", "instrument"])
    w = pd.Series(0.5, index=idx)
    with pytest.raises(TypeError, match="benchmark weights"):
        active_weights(w, pd.Series([0.1], index=[0]))
    with pytest.raises(KeyError, match="exposures lack"):
        active_exposures(w, pd.DataFrame({"size": 1.0}, index=idx), ["size"])
    x = pd.DataFrame({"size": 1.0, "country": 1.0}, index=pd.bdate_range("2024-01-02", periods=3))
    with pytest.raises(ValueError, match="empty backtest"):
        attribute(pd.Series([], dtype=float, index=pd.DatetimeIndex([])), x, x, ["size"])
    f = pd.DataFrame({"size": 0.01, "country": 0.0}, index=pd.bdate_range("2024-01-02", periods=2))
    a = pd.Series(0.001, index=pd.bdate_range("2024-01-02", periods=3))
    with pytest.raises(ValueError, match="factor returns: no row for 1 backtest days"):
        attribute(a, x, f, ["size"])
