"""The exported ``riskmodel_root`` drives Qlib's own ``EnhancedIndexingStrategy`` unchanged."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.backtest import LIMIT_THRESHOLD
from qlib_ext.data.panel import read_panel
from qlib_ext.risk import build_risk, load_covariance, load_exposures, load_meta, load_specific_risk

START, END = "2024-01-02", "2024-01-24"


@pytest.fixture(scope="module")
def exported(tiny_market, tmp_path_factory):
    data = tmp_path_factory.mktemp("risk_qlib") / "qlib_data"
    shutil.copytree(tiny_market, data, ignore=shutil.ignore_patterns("*.1min.bin", "1min.txt", "risk", ".staging"))
    store = build_risk(data, start="2023-12-01", progress=False)
    return data, store


def test_riskmodel_root_layout(exported):
    data, store = exported
    meta = load_meta(store)
    root = store / "qlib"
    day = pd.Timestamp("2024-01-15")
    folder = root / day.strftime("%Y%m%d")
    assert sorted(p.name for p in folder.iterdir()) == ["factor_cov.pkl", "factor_exp.pkl", "specific_risk.pkl"]
    exp, cov, spec = (pd.read_pickle(folder / f) for f in ("factor_exp.pkl", "factor_cov.pkl", "specific_risk.pkl"))
    assert list(exp.columns) == list(cov.columns) == list(cov.index) == meta["factors"]
    assert isinstance(spec, pd.Series) and spec.index.equals(exp.index)            # Qlib squares a Series
    assert np.isfinite(exp.to_numpy()).all() and np.isfinite(spec.to_numpy()).all() and (spec > 0).all()
    stored = load_exposures(store, day, day, industry_dummies=True).droplevel("datetime")
    pd.testing.assert_frame_equal(exp, stored.rename_axis("instrument"), check_dtype=False)
    pd.testing.assert_frame_equal(cov, load_covariance(store, day), check_names=False)
    risk = load_specific_risk(store, day)
    np.testing.assert_allclose(spec.reindex(risk.index), risk, rtol=1e-6)
    # the benchmark weights Qlib reads as $csi500_weight are the dataset's w_csi500
    np.testing.assert_array_equal(read_panel(data, "csi500_weight").to_numpy(), read_panel(data, "w_csi500").to_numpy())
    dates = sorted(p.name for p in root.iterdir())
    assert dates[0] >= "20231201" and dates[-1] == "20240329"


def test_enhanced_indexing_strategy_trades_on_our_risk_model(exported, tmp_path, monkeypatch):
    from qlib.backtest import backtest
    from qlib.contrib.strategy import EnhancedIndexingStrategy
    from qlib.contrib.strategy.optimizer import EnhancedIndexingOptimizer

    data, store = exported
    qlib_ext.init(data, mlruns=tmp_path / "mlruns")
    calls = []
    original = EnhancedIndexingOptimizer.__call__

    def spy(self, r, F, cov_b, var_u, w0, wb, mfh=None, mfs=None):
        w = original(self, r, F, cov_b, var_u, w0, wb, mfh, mfs)
        calls.append({"w0": w0, "wb": wb, "w": w, "F": F})
        return w

    monkeypatch.setattr(EnhancedIndexingOptimizer, "__call__", spy)
    close = read_panel(data, "close")
    score = (-(close / close.shift(5) - 1)).loc["2023-12-01":].stack().rename("score")   # 5-day reversal
    score.index.names = ["datetime", "instrument"]
    strategy = EnhancedIndexingStrategy(riskmodel_root=str(store / "qlib"), market="csi500", signal=score,
                                        optimizer_kwargs={"lamb": 1.0, "delta": 0.4, "b_dev": 0.05})
    metrics, _ = backtest(
        start_time=START, end_time=END, strategy=strategy, benchmark="SH000905", account=1e8,
        executor={"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                  "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}},
        exchange_kwargs={"limit_threshold": LIMIT_THRESHOLD, "deal_price": "vwap", "open_cost": 0.0015,
                         "close_cost": 0.0015, "min_cost": 0},
    )
    report, positions = metrics["1day"]
    n_days = len(report)
    assert len(calls) == n_days                                   # a risk folder for every trading day
    assert all(abs(c["wb"].sum() - 1) < 1e-5 for c in calls)      # benchmark weights found ($csi500_weight)
    assert all(c["F"].shape[1] == len(load_meta(store)["factors"]) for c in calls)
    # the optimizer solved (it returns w0 unchanged when ECOS is missing or fails) and moved the book
    moved = [np.abs(c["w"] - c["w0"]).sum() for c in calls[1:]]
    assert min(moved) > 0.05, "Qlib's optimizer kept w0: it hard-codes cvxpy's ECOS solver (pip install ecos)"
    weights = pd.DataFrame({d: pd.Series(p.get_stock_weight_dict(only_stock=True)) for d, p in positions.items()}).fillna(0)
    changes = weights.diff(axis=1).abs().sum().iloc[2:]
    assert (changes > 0.05).all() and (weights.iloc[:, 1:] > 0).sum().min() >= 5
    # active weights stay inside the optimizer's +-5% band around the benchmark
    last = calls[-1]
    assert np.all(np.abs(last["w"] - last["wb"]) <= 0.05 + 1e-6)
