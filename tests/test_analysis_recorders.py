"""Style-profile, quantile, crowding and holdings recorders on the tiny market: artifacts, metrics,
numbers against direct computations, and failures that name their input and leave nothing behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.analysis import CrowdingRecord, HoldingsProfileRecord, QuantileRecord, StyleProfileRecord
from qlib_ext.analysis.inputs import load_style_exposures, market_frame
from qlib_ext.data.panel import read_instruments
from qlib_ext.risk import build_risk
from qlib_ext.schema import ARTIFACTS, DIAGNOSTICS_FILE, PRED_FILE, WEIGHTS_FILE

START, END = "2023-03-01", "2024-03-27"


@pytest.fixture(scope="module")
def store(tiny_market, tmp_path_factory):
    return build_risk(tiny_market, out=tmp_path_factory.mktemp("risk") / "risk", export_qlib=False, progress=False)


@pytest.fixture(scope="module")
def qlib_env(tiny_market, store, tmp_path_factory):
    """One Qlib init and one sqlite MLflow store for the module (each test gets its own run)."""
    folder = tmp_path_factory.mktemp("analysis_mlruns")
    qlib_ext.init(tiny_market, mlruns=folder / "mlruns")
    return folder


@pytest.fixture(scope="module")
def signal(qlib_env):
    """A signal on the CSI All Share members: reversal plus noise (so it has a style profile)."""
    mkt = market_frame(START, END)
    rng = np.random.default_rng(11)
    s = (-mkt["ret_10"]).fillna(0) + rng.normal(0, 0.05, len(mkt))
    return s.rename("score").to_frame()


@pytest.fixture()
def recorder(qlib_env, tmp_path, monkeypatch, request):
    from qlib.workflow import R

    monkeypatch.chdir(qlib_env)  # MLflow's default artifact root is ./mlruns
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    with R.start(experiment_name="analysis", recorder_name=request.node.name):
        rec = R.get_recorder()
        rec.systmp = systmp
        yield rec


def artifacts(rec, folder):
    return {p.split("/", 1)[1] for p in rec.list_artifacts(folder)}


def test_style_profile_record(recorder, signal, store):
    recorder.save_objects(**{PRED_FILE: signal})
    out = StyleProfileRecord(recorder, risk_store=str(store)).generate()
    assert set(StyleProfileRecord(recorder).list()) == artifacts(recorder, ARTIFACTS.STYLE_PROFILE)
    corr, legs = out["correlation"], out["legs"]
    # one day against a direct scipy-free Spearman: Pearson of average ranks
    day = corr.index[len(corr) // 2]
    s = signal["score"].xs(day, level="datetime")
    x = load_style_exposures(day, day, store)["size"].xs(day, level="datetime")
    both = pd.concat([s, x], axis=1, join="inner").dropna()
    want = np.corrcoef(both.iloc[:, 0].rank(), both.iloc[:, 1].rank())[0, 1]
    assert corr.loc[day, "size"] == pytest.approx(want, rel=1e-9)
    k = max(1, int(0.05 * len(both)))
    top = both.sort_values(both.columns[0]).iloc[-k:, 1].mean()
    assert legs.loc[day, "long"] == pytest.approx(top, rel=1e-9)
    assert corr["ret_10"].mean() < -0.5  # the signal is reversal by construction
    metrics = recorder.list_metrics()
    assert metrics["style_profile.corr_ret_10"] == pytest.approx(corr["ret_10"].mean(), rel=1e-9)
    assert metrics["style_profile.long_leg_size"] == pytest.approx(legs["long"].mean(), rel=1e-9)
    assert {"style_profile.corr_std_10d", "style_profile.corr_turn_10d", "style_profile.short_leg_size"} <= set(metrics)
    assert list(recorder.systmp.iterdir()) == []


def test_quantile_navs_equal_a_direct_groupby_backtest(recorder, signal):
    from qlib_ext.analysis.metrics.quantile import quantile_navs

    recorder.save_objects(**{PRED_FILE: signal})
    out = QuantileRecord(recorder, window=("2024-01-02", None)).generate()
    assert set(QuantileRecord(recorder).list()) == artifacts(recorder, ARTIFACTS.QUANTILE)
    navs = out["navs"]["signal"]
    # direct: per 10-day period, qcut-like groups by a sort, equal-weight buy and hold at vwap, lag 1
    px = market_frame(START, "2024-03-29")["vwap"].unstack()
    s = signal["score"]
    s = s[s.index.isin(market_frame(START, "2024-03-29").index)]
    days = sorted(s.index.get_level_values(0).unique())[::10]
    cal = list(px.index)
    level = {g: 1.0 for g in range(1, 11)}
    direct = {}
    entries = [cal.index(d) + 1 for d in days]
    for i, d in enumerate(days):
        e = entries[i]
        x = entries[i + 1] if i + 1 < len(entries) else min(e + 10, len(cal) - 1)
        day = s.xs(d, level="datetime")
        day = day[px.iloc[e].reindex(day.index).notna()].sort_values(kind="stable")
        n = len(day)
        for g in range(1, 11):
            names = [inst for pos, inst in enumerate(day.index) if pos * 10 // n + 1 == g]
            path = px[names].ffill().iloc[e : x + 1] / px[names].iloc[e]
            vals = level[g] * path.mean(axis=1)
            for t, v in vals.items():
                direct[(t, g)] = v
            level[g] = vals.iloc[-1]
    direct = pd.Series(direct).unstack()
    np.testing.assert_allclose(navs[list(range(1, 11))].loc[direct.index], direct, rtol=1e-9)
    # the recorder's relative NAV and metrics
    rel = out["long_relative"]["signal"]
    np.testing.assert_allclose(rel, navs[10] / navs["universe"], rtol=1e-12)
    groups = out["groups"]
    assert set(groups.index) == {"signal", "signal_neutral", "small", "reversal", "low_vol", "low_liquidity"}
    metrics = recorder.list_metrics()
    assert metrics["quantile.signal.long_short"] == pytest.approx(groups.loc["signal", "long_short"], rel=1e-9)
    assert groups.loc["signal", "monotonicity"] == pytest.approx(
        pd.Series(range(10)).corr(groups.loc["signal", [f"group_{g}" for g in range(1, 11)]].reset_index(drop=True),
                                  method="spearman"))
    pd.testing.assert_frame_equal(quantile_navs(s, px).loc[navs.index], navs)  # the pure function alone
    assert list(recorder.systmp.iterdir()) == []


def test_crowding_ratio_equals_a_direct_computation(recorder, signal):
    recorder.save_objects(**{PRED_FILE: signal})
    out = CrowdingRecord(recorder).generate()
    assert set(CrowdingRecord(recorder).list()) == artifacts(recorder, ARTIFACTS.CROWDING)
    table = out["crowding"]
    day = table.index[100]
    turn = market_frame(START, END)["turn_10d"].xs(day, level="datetime")
    s = signal["score"].xs(day, level="datetime")
    both = pd.concat([s, turn], axis=1, join="inner").dropna().sort_values("score", kind="stable")
    k = max(1, int(np.floor(0.05 * len(both))))
    want = both["turn_10d"].iloc[-k:].mean() / both["turn_10d"].iloc[:k].mean()
    assert table.loc[day, "ratio"] == pytest.approx(want, rel=1e-9)
    assert table.loc[day, "percentile"] == pytest.approx((table["ratio"] <= table.loc[day, "ratio"]).mean())
    assert recorder.list_metrics()["crowding.mean_ratio"] == pytest.approx(table["ratio"].mean(), rel=1e-9)
    assert list(recorder.systmp.iterdir()) == []


def sample_weights(tiny_market, store):
    """Two rebalances of 30 names, a benchmark of 40 (csi1000 members), with diagnostics."""
    spans = read_instruments(tiny_market, "csi1000")
    rng = np.random.default_rng(4)
    frames, diag = [], []
    for trade, sig in (("2023-06-05", "2023-06-02"), ("2024-01-15", "2024-01-12")):
        members = sorted(spans["instrument"].unique())[:40]
        allnames = sorted(read_instruments(tiny_market, "csiall")["instrument"].unique())
        held = list(rng.choice(allnames, 30, replace=False))
        names = sorted(set(members) | set(held))
        w = pd.Series(0.0, index=names)
        w[held] = rng.dirichlet(np.ones(30))
        b = pd.Series(0.0, index=names)
        b[members] = rng.dirichlet(np.ones(40))
        frames.append(pd.DataFrame({"datetime": pd.Timestamp(trade), "instrument": names, "w0": 0.0,
                                    "weight": w.to_numpy(), "benchmark": b.to_numpy()}))
        diag.append({"date": pd.Timestamp(trade), "signal_date": pd.Timestamp(sig), "status": "optimal"})
    return (pd.concat(frames).set_index(["datetime", "instrument"]), pd.DataFrame(diag).set_index("date"))


def test_holdings_moments_equal_a_direct_loop(recorder, tiny_market, store):
    weights, diag = sample_weights(tiny_market, store)
    recorder.save_objects(artifact_path=ARTIFACTS.OPTIM, **{WEIGHTS_FILE: weights, DIAGNOSTICS_FILE: diag})
    out = HoldingsProfileRecord(recorder, risk_store=str(store), window=("2024-01-01", "2024-03-29")).generate()
    assert set(HoldingsProfileRecord(recorder).list()) == artifacts(recorder, ARTIFACTS.HOLDINGS)
    prof = out["per_rebalance"]
    for trade, sig in diag["signal_date"].items():
        day = weights.xs(trade, level="datetime")
        x = load_style_exposures(sig, sig, store)["size"].xs(sig, level="datetime")
        cap = market_frame(START, END)["mcap"].xs(sig, level="datetime").dropna()
        xb = sum(day.loc[i, "benchmark"] * x[i] for i in day.index if i in x.index)
        for k in (1, 2, 3):
            mp = sum(day.loc[i, "weight"] * (x[i] - xb) ** k for i in day.index if i in x.index)
            mb = sum(day.loc[i, "benchmark"] * (x[i] - xb) ** k for i in day.index if i in x.index)
            assert prof.loc[trade, f"m{k}_portfolio"] == pytest.approx(mp, rel=1e-9, abs=1e-12)
            assert prof.loc[trade, f"m{k}_active"] == pytest.approx(mp - mb, rel=1e-9, abs=1e-12)
        smallest = list(cap.sort_values(kind="stable").index[: int(0.2 * len(cap))])
        assert prof.loc[trade, "small_20"] == pytest.approx(day["weight"].reindex(smallest).fillna(0).sum())
        assert prof.loc[trade, "constituent_weight"] == pytest.approx(day.loc[day["benchmark"] > 0, "weight"].sum())
        assert prof.loc[trade, "n_holdings"] == 30
    table = out["table"]
    assert table.loc["window", "m2_active"] == pytest.approx(prof["m2_active"].iloc[1])
    metrics = recorder.list_metrics()
    assert metrics["holdings.small_10"] == pytest.approx(prof["small_10"].mean())
    assert metrics["holdings.window_constituent_weight"] == pytest.approx(prof["constituent_weight"].iloc[1])
    assert list(recorder.systmp.iterdir()) == []


@pytest.mark.parametrize("bad", ["constant", "nan"])
def test_bad_signal_fails_naming_it_and_leaves_nothing(recorder, signal, store, bad):
    pred = signal.copy()
    pred["score"] = 1.0 if bad == "constant" else np.nan
    recorder.save_objects(**{PRED_FILE: pred})
    for cls in (StyleProfileRecord, QuantileRecord, CrowdingRecord):
        with pytest.raises(ValueError, match="pred.pkl"):
            cls(recorder, risk_store=str(store)).generate() if cls is StyleProfileRecord else cls(recorder).generate()
        assert recorder.list_artifacts(cls.artifact_path) == []
    assert recorder.list_metrics() == {}
    assert list(recorder.systmp.iterdir()) == []


def test_missing_inputs_and_empty_window_fail_naming_them(recorder, signal, tmp_path):
    with pytest.raises(FileNotFoundError, match="pred.pkl.*SignalRecord"):
        CrowdingRecord(recorder).generate()
    recorder.save_objects(**{PRED_FILE: signal})
    with pytest.raises(FileNotFoundError, match="risk store"):
        StyleProfileRecord(recorder, risk_store=str(tmp_path / "nowhere")).generate()
    with pytest.raises(ValueError, match="window"):
        QuantileRecord(recorder, window=("2030-01-01", None), styles=False).generate()
    with pytest.raises(ValueError, match="window_start"):
        CrowdingRecord(recorder, window_start="2030-01-01").generate()
    with pytest.raises(FileNotFoundError, match="weights.pkl"):
        HoldingsProfileRecord(recorder).generate()
    for folder in (ARTIFACTS.STYLE_PROFILE, ARTIFACTS.QUANTILE, ARTIFACTS.CROWDING, ARTIFACTS.HOLDINGS):
        assert recorder.list_artifacts(folder) == []
    assert list(recorder.systmp.iterdir()) == []
    assert Path(recorder.get_local_dir()).exists()
