"""StyleTimingRecord (figure 27, table 28, figure 29): forward factor returns and correlations against
direct computations, the outlier rule, the recorder's artifacts and metrics, clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_backtest import log_backtest, make_backtest

import qlib_ext
from qlib_ext.analysis import StyleTimingRecord
from qlib_ext.analysis.metrics.attribution import active_weights
from qlib_ext.analysis.metrics.style_timing import forward_returns, robust_z, timing_points, timing_table
from qlib_ext.risk import build_risk, load_exposures, load_factor_returns, load_meta
from qlib_ext.schema import ARTIFACTS


@pytest.fixture(scope="module")
def store(tiny_market, tmp_path_factory):
    return build_risk(tiny_market, out=tmp_path_factory.mktemp("risk") / "risk", export_qlib=False, progress=False)


@pytest.fixture(scope="module")
def backtest(tiny_market, tmp_path_factory):
    qlib_ext.init(tiny_market, mlruns=tmp_path_factory.mktemp("mlruns_timing"))
    return make_backtest(seed=1)


def test_forward_returns_compound_the_next_sessions():
    idx = pd.bdate_range("2024-01-01", periods=12)
    rng = np.random.default_rng(0)
    f = pd.DataFrame(rng.normal(0, 0.01, (12, 2)), index=idx, columns=["size", "beta"])
    dates = [idx[0], idx[3], idx[6], idx[8], idx[10], pd.Timestamp("2023-12-29")]
    out = forward_returns(f, dates, horizon=3)
    for d in dates:
        after = f[f.index > d].iloc[:3]
        want = (1 + after).prod() - 1 if len(after) == 3 else pd.Series(np.nan, index=f.columns)
        np.testing.assert_allclose(out.loc[d].to_numpy(), want.to_numpy(), rtol=1e-12)
    assert out.loc[idx[8]].notna().all() and out.loc[idx[10]].isna().all()  # 3 sessions follow idx[8], 1 idx[10]
    with pytest.raises(ValueError, match="horizon"):
        forward_returns(f, dates, horizon=0)


def test_outlier_rule_and_correlations_match_a_direct_computation():
    rng = np.random.default_rng(5)
    idx = pd.bdate_range("2022-01-03", periods=80)
    x = pd.DataFrame({"size": rng.normal(0, 0.2, 80)}, index=idx)
    fwd = pd.DataFrame({"size": 0.05 * x["size"] + rng.normal(0, 0.01, 80)}, index=idx)
    fwd.iloc[[10, 40]] = [[0.2], [-0.25]]                    # two extreme style weeks
    points = timing_points(x, fwd, ["size"], z=3.0)
    table = timing_table(points, ["size"])
    v = fwd["size"]
    mad = np.median(np.abs(v - np.median(v)))
    flagged = np.abs(v - np.median(v)) / (1.4826 * mad) > 3.0
    assert set(points.loc[points["outlier"], "datetime"]) == set(idx[flagged.to_numpy()])
    assert {idx[10], idx[40]} <= set(idx[flagged.to_numpy()])
    assert table.loc["size", "corr"] == pytest.approx(np.corrcoef(x["size"], v)[0, 1])
    keep = ~flagged.to_numpy()
    assert table.loc["size", "corr_ex_outliers"] == pytest.approx(np.corrcoef(x["size"][keep], v[keep])[0, 1])
    assert table.loc["size", "corr_ex_outliers"] > table.loc["size", "corr"]
    assert str(idx[10].date()) in table.loc["size", "outlier_dates"]
    # a constant exposure (pinned at a bound) has no correlation, and zero MAD flags nothing
    const = timing_table(timing_points(x * 0 - 0.3, fwd, ["size"]), ["size"])
    assert np.isnan(const.loc["size", "corr"])
    assert (robust_z(pd.Series([1.0, 1.0, 1.0])) == 0).all()


def test_recorder_writes_artifacts_and_metrics(backtest, store, tmp_path, monkeypatch):
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)
    with R.start(experiment_name="timing"):
        rec = R.get_recorder()
        log_backtest(rec, backtest)
        StyleTimingRecord(rec, benchmark="csi500", risk_store=str(store)).generate()
    arts = set(rec.list_artifacts(ARTIFACTS.STYLE_TIMING))
    assert {f"{ARTIFACTS.STYLE_TIMING}/{n}" for n in StyleTimingRecord(rec).list()} <= arts
    local = Path(rec.get_local_dir()) / "artifacts" / ARTIFACTS.STYLE_TIMING
    for png in ("scatter_size.png", "scatter_styles.png", "active_size.png"):
        assert (local / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # independent: active size exposure at each rebalance from the weights, next-5-session size return
    styles = load_meta(store)["styles"]
    d = active_weights(backtest.weights, backtest.bench)
    expo = load_exposures(store, start="2023-05-01", end="2024-03-28")
    dates = pd.DatetimeIndex(backtest.diagnostics.index)
    f = load_factor_returns(store)
    xs, fs, every = [], [], []
    for s in dates:
        ds, es = d.xs(s, level="datetime"), expo.xs(s, level="datetime")
        common = ds.index.intersection(es.index[es[styles].notna().all(axis=1)])
        every.append(float((ds[common] * es.loc[common, "size"]).sum()))
        after = f.loc[f.index > s, "size"].iloc[:5]
        if len(after) == 5:
            xs.append(every[-1])
            fs.append(float((1 + after).prod() - 1))
    table = pd.read_csv(local / "table.csv", index_col=0)
    assert table.loc["size", "n"] == len(xs)
    assert table.loc["size", "corr"] == pytest.approx(np.corrcoef(xs, fs)[0, 1], rel=1e-6)
    metrics = rec.list_metrics()
    assert metrics["style_timing.corr_size"] == pytest.approx(table.loc["size", "corr"], rel=1e-9)
    assert metrics["style_timing.n_rebalances"] == len(dates)
    summary = json.loads((local / "summary.json").read_text())
    assert summary["mean_active_size"] == pytest.approx(np.mean(every), rel=1e-6)
    exposures = pd.read_csv(local / "exposures.csv", index_col=0, parse_dates=True)
    assert list(exposures.index) == list(dates)


def test_rebalance_dates_fall_back_to_turnover_and_failures_write_nothing(backtest, store, tmp_path, monkeypatch):
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)
    with R.start(experiment_name="timing_bad"):
        rec = R.get_recorder()
        log_backtest(rec, backtest, diagnostics=False)
        with pytest.raises(FileNotFoundError, match="risk_store"):
            StyleTimingRecord(rec, risk_store=str(tmp_path / "none")).generate()
        dates = StyleTimingRecord(rec, risk_store=str(store)).rebalance_dates(backtest.report.index)
        assert list(dates) == list(backtest.diagnostics.index)      # the turnover > 0 days
        # a backtest whose last rebalance leaves no 5 following sessions in the store: nothing to correlate
        short = backtest.report.copy()
        short["turnover"] = 0.0
        short.iloc[-2, short.columns.get_loc("turnover")] = 0.1
        rec.save_objects(artifact_path="portfolio_analysis", **{"report_normal_1day.pkl": short})
        with pytest.raises(ValueError, match="no rebalance has a full 5-session forward factor return"):
            StyleTimingRecord(rec, risk_store=str(store)).generate()
        # with the strategy's diagnostics: its trade days, without the rebalances that had no signal
        days = backtest.report.index
        diag = pd.DataFrame({"status": ["optimal", "no_signal", "relaxed"]},
                            index=pd.DatetimeIndex([days[3], days[9], days[20]], name="date"))
        rec.save_objects(artifact_path="optim", **{"diagnostics.pkl": diag})
        assert list(StyleTimingRecord(rec, risk_store=str(store)).rebalance_dates(days)) == [days[3], days[20]]
    assert rec.list_artifacts(ARTIFACTS.STYLE_TIMING) == []
