"""The enhancement workflows through Qlib's own qrun entry on the tiny market: model -> pred.pkl ->
IndexEnhancementStrategy backtest -> PortAnaRecord -> PerformanceRecord, diagnostics in the recorder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from qlib_ext.data.panel import read_calendar
from qlib_ext.risk import build_risk

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def render(name: str, monkeypatch, **env) -> dict:
    from qlib.cli.run import render_template

    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return YAML(typ="safe", pure=True).load(render_template(str(WORKFLOWS / name)))


def test_rendering_options(monkeypatch, tmp_path):
    for var in ("QLIB_EXT_PRED", "QLIB_EXT_RISK_STORE", "QLIB_EXT_OPTIM_PRESET"):
        monkeypatch.delenv(var, raising=False)
    cfg = render("enhance_csi1000.yaml", monkeypatch)
    kw = cfg["port_analysis_config"]["strategy"]["kwargs"]
    assert kw["signal"] == "<PRED>" and kw["risk_store"] is None and kw["preset"] == "figure10"
    assert kw["benchmark"] == "csi1000" and cfg["port_analysis_config"]["backtest"]["benchmark"] == "SH000852"
    cfg = render("enhance_csi500.yaml", monkeypatch, QLIB_EXT_PRED=tmp_path / "pred.pkl",
                 QLIB_EXT_RISK_STORE=tmp_path / "risk", QLIB_EXT_OPTIM_PRESET="floor100")
    kw = cfg["port_analysis_config"]["strategy"]["kwargs"]
    assert kw["signal"] == str(tmp_path / "pred.pkl") and kw["risk_store"] == str(tmp_path / "risk")
    assert kw["preset"] == "floor100" and cfg["port_analysis_config"]["backtest"]["benchmark"] == "SH000905"
    assert cfg["task"]["record"][-1]["class"] == "PerformanceRecord"


def test_enhance_workflow_end_to_end(tiny_market, tmp_path, monkeypatch):
    from qlib.cli.run import workflow
    from qlib.workflow import R

    store = build_risk(tiny_market, out=tmp_path / "risk", export_qlib=False, progress=False)
    test_start, test_end = "2023-07-03", "2024-03-28"
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    config = render("enhance_csi1000.yaml", monkeypatch, QLIB_EXT_PROVIDER_URI=tiny_market,
                    QLIB_EXT_MLFLOW_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", QLIB_EXT_RISK_STORE=store,
                    QLIB_EXT_TRAIN="2021-06-01:2022-09-15", QLIB_EXT_VALID="2022-10-10:2023-06-09",
                    QLIB_EXT_TEST=f"{test_start}:{test_end}")
    config["task"]["model"]["kwargs"].update(num_boost_round=30, early_stopping_rounds=10)
    path = tmp_path / "enhance.yaml"
    with path.open("w") as fh:
        YAML(typ="safe", pure=True).dump(config, fh)

    workflow(str(path))

    rec = next(iter(R.list_recorders(experiment_name="enhance_csi1000").values()))
    assert rec.status == "FINISHED"
    cal = read_calendar(tiny_market)
    days = cal[(cal >= test_start) & (cal <= test_end)]
    report = rec.load_object("portfolio_analysis/report_normal_1day.pkl")
    assert report.index.equals(days)

    diag = rec.load_object("optim/diagnostics.pkl")
    solved = diag[diag["status"] != "no_signal"]
    assert solved["status"].isin(["optimal", "relaxed"]).all(), diag["status"].value_counts()
    assert len(solved) >= len(days) // 5 - 1 and (solved["solve_time"] < 5).all()
    assert (report["turnover"].drop(solved.index) == 0).all()  # trades only on rebalance days
    for _, row in solved.iloc[1:].iterrows():  # every relaxation is recorded with its slack
        slack = json.loads(row["relaxed"])
        assert (row["status"] == "relaxed") == bool(slack)
        assert row["turnover"] <= 0.2 + slack.get("Turnover", 0.0) + 1e-7
        assert row["constituent_weight"] >= 0.8 - slack.get("ConstituentFloor", 0.0) - 1e-7
    csv = pd.read_csv(Path(rec.get_local_dir()) / "artifacts" / "optim" / "diagnostics.csv", index_col=0, parse_dates=True)
    assert len(csv) == len(diag) and "active[size]" in csv
    weights = rec.load_object("optim/weights.pkl")
    assert set(weights.index.get_level_values("datetime")) == set(solved.index)

    table = rec.load_object("performance/table.pkl")
    assert list(table.index) == ["CSI1000 enhanced"]
    e = report["return"] - report["bench"] - report["cost"]
    assert table.iloc[0]["annualized_excess"] == pytest.approx(np.prod(1 + e) ** (252 / len(e)) - 1, rel=1e-9)
    assert table.iloc[0]["constituent_weight"] == pytest.approx(solved["constituent_weight"].mean())
    assert rec.list_metrics()["performance.information_ratio"] == pytest.approx(table.iloc[0]["information_ratio"])
    local = Path(rec.get_local_dir()) / "artifacts" / "performance"
    assert (local / "excess_nav.png").stat().st_size > 5000 and (local / "excess_nav_window.png").exists()
