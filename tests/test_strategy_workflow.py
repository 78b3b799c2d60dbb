"""The enhancement workflows through Qlib's own qrun entry on the tiny market: model -> pred.pkl ->
IndexEnhancementStrategy backtest -> PortAnaRecord -> PerformanceRecord, diagnostics in the recorder."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from qlib_ext.backtest import LIMIT_RULES
from qlib_ext.data.panel import read_calendar, read_panel
from qlib_ext.factors import forward_return_label
from qlib_ext.risk import build_risk
from qlib_ext.schema import ARTIFACTS, BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
TEMPLATE = WORKFLOWS / "enhance.yaml"
#: the commit whose enhance_csi*.yaml were the 193-line copies the template replaced
OLD_COMMIT = "184317e"
ENV_VARS = ("QLIB_EXT_BENCHMARK", "QLIB_EXT_PRED", "QLIB_EXT_RISK_STORE", "QLIB_EXT_OPTIM_PRESET", "QLIB_EXT_NEUTRALIZE")


def render(name: str, monkeypatch, **env) -> dict:
    from qlib.cli.run import render_template

    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return YAML(typ="safe", pure=True).load(render_template(str(WORKFLOWS / name)))


def test_rendering_options(monkeypatch, tmp_path):
    for var in ENV_VARS:
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
    # one qrun gives every table and figure of the report: each recorder's folder has its tables and figures
    arts = Path(rec.get_local_dir()) / "artifacts"
    for folder in (ARTIFACTS.STYLE_PROFILE, ARTIFACTS.QUANTILE, ARTIFACTS.CROWDING, ARTIFACTS.HOLDINGS,
                   ARTIFACTS.ATTRIBUTION, ARTIFACTS.STYLE_TIMING, ARTIFACTS.MARKET_REVIEW):
        names = {p.suffix for p in (arts / folder).iterdir()}
        assert {".csv", ".png"} <= names, (folder, names)


def test_thin_files_are_the_template_with_the_benchmark_fixed():
    text = TEMPLATE.read_text()
    line = re.compile(r"^{% set benchmark = .*$", re.M)
    assert len(line.findall(text)) == 1
    for name in BENCHMARKS:
        want = line.sub('{% set benchmark = "' + name + '" %}', text)
        assert (WORKFLOWS / f"enhance_{name}.yaml").read_text() == want, f"regenerate enhance_{name}.yaml (see {TEMPLATE.name})"


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_template_takes_index_and_label_from_the_benchmark(name, monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    info = BENCHMARKS[name]
    for cfg in (render("enhance.yaml", monkeypatch, QLIB_EXT_BENCHMARK=name), render(f"enhance_{name}.yaml", monkeypatch)):
        assert cfg["experiment_name"] == f"enhance_{name}" and cfg["benchmark"] == info.instrument
        port = cfg["port_analysis_config"]
        assert port["strategy"]["kwargs"]["benchmark"] == name and port["backtest"]["benchmark"] == info.instrument
        assert cfg["task"]["record"][-1]["kwargs"]["label"] == f"{info.label} enhanced"
        handler = cfg["task"]["dataset"]["kwargs"]["handler"]
        assert (handler["class"], handler["module_path"]) == ("PriceVolume", "qlib_ext.handlers")
        assert handler["kwargs"]["neutralize"] == "industry_size" and "data_loader" not in handler["kwargs"]
        assert port["backtest"]["exchange_kwargs"]["exchange"]["kwargs"]["limit_threshold"] == "report"
    assert render("enhance.yaml", monkeypatch, QLIB_EXT_NEUTRALIZE="none")["data_handler_config"]["neutralize"] is None


def test_unknown_benchmark_is_named(monkeypatch):
    with pytest.raises(Exception, match=r'unknown benchmark "csi800"'):
        render("enhance.yaml", monkeypatch, QLIB_EXT_BENCHMARK="csi800")


def old_workflow(name: str, tmp_path: Path) -> Path:
    """The pre-template copy of ``enhance_<name>.yaml`` from git (skips outside a git checkout)."""
    try:
        text = subprocess.run(["git", "show", f"{OLD_COMMIT}:workflows/enhance_{name}.yaml"], cwd=ROOT, check=True,
                              capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"the old workflows need the git history ({OLD_COMMIT})")
    path = tmp_path / f"old_{name}.yaml"
    path.write_text(text)
    return path


#: the report's analysis recorders the template added after the old copies (issue 11)
ANALYSIS_RECORDS = ("StyleProfileRecord", "QuantileRecord", "CrowdingRecord", "HoldingsProfileRecord",
                    "AttributionRecord", "StyleTimingRecord", "MarketReviewRecord")


def without_handler(cfg: dict) -> dict:
    """The rendered config without what the template changed on purpose: the handler, the limit rule and
    the analysis recorders it added."""
    cfg = json.loads(json.dumps(cfg))
    del cfg["data_handler_config"], cfg["task"]["dataset"]["kwargs"]["handler"]
    cfg["task"]["record"] = [r for r in cfg["task"]["record"] if r["class"] not in ANALYSIS_RECORDS]
    for port in (cfg["port_analysis_config"], *(r["kwargs"]["config"] for r in cfg["task"]["record"]
                                                if r["class"] == "PortAnaRecord")):
        ex = port["backtest"]["exchange_kwargs"]["exchange"]["kwargs"]
        if isinstance(ex["limit_threshold"], str):
            ex["limit_threshold"] = list(LIMIT_RULES[ex["limit_threshold"]])
    return cfg


@pytest.mark.parametrize("name", ["csi500", "csi1000"])
def test_template_renders_the_old_workflows_but_the_handler(name, monkeypatch, tmp_path):
    env = {"QLIB_EXT_PRED": tmp_path / "pred.pkl", "QLIB_EXT_RISK_STORE": tmp_path / "risk", "QLIB_EXT_TEST": "2023-01-03:2024-03-28"}
    old = render(str(old_workflow(name, tmp_path)), monkeypatch, **env)
    new = render("enhance.yaml", monkeypatch, QLIB_EXT_BENCHMARK=name, **env)
    assert without_handler(new) == without_handler(old)
    assert old["data_handler_config"]["data_loader"]["kwargs"]["config"]["label"][0] == [forward_return_label(10)]
    assert old["port_analysis_config"]["backtest"]["exchange_kwargs"]["exchange"]["kwargs"]["limit_threshold"] == \
        list(LIMIT_RULES["report"])


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("QLIB_EXT_SLOW"), reason="4 qrun runs (~2 min each on 2 cores); QLIB_EXT_SLOW=1")
@pytest.mark.parametrize("name", ["csi500", "csi1000"])
def test_template_and_old_workflow_give_the_same_performance_table(name, tiny_market, tmp_path, monkeypatch):
    """With the signal fixed (QLIB_EXT_PRED) the backtest of the template is the old file's, number for number."""
    from qlib.cli.run import workflow
    from qlib.workflow import R

    store = build_risk(tiny_market, out=tmp_path / "risk", export_qlib=False, progress=False)
    close = read_panel(tiny_market, "close").astype(float)
    pred = (-(close / close.shift(5) - 1)).stack().rename("score").to_frame().loc["2023-10-01":]
    pred.index.names = ["datetime", "instrument"]
    pred.to_pickle(tmp_path / "pred.pkl")
    monkeypatch.chdir(tmp_path)
    tables = {}
    for tag, src in (("old", str(old_workflow(name, tmp_path))), ("new", f"enhance_{name}.yaml")):
        cfg = render(src, monkeypatch, QLIB_EXT_PROVIDER_URI=tiny_market, QLIB_EXT_RISK_STORE=store,
                     QLIB_EXT_MLFLOW_URI=f"sqlite:///{tmp_path / (tag + '.db')}", QLIB_EXT_PRED=tmp_path / "pred.pkl",
                     QLIB_EXT_TRAIN="2021-06-01:2022-09-15", QLIB_EXT_VALID="2022-10-10:2023-06-09",
                     QLIB_EXT_TEST="2023-10-09:2024-03-28")
        cfg["task"]["model"]["kwargs"].update(num_boost_round=30, early_stopping_rounds=10)
        path = tmp_path / f"{tag}.yaml"
        with path.open("w") as fh:
            YAML(typ="safe", pure=True).dump(cfg, fh)
        workflow(str(path))
        rec = next(iter(R.list_recorders(experiment_name=cfg["experiment_name"]).values()))
        tables[tag] = rec.load_object("performance/table.pkl")
    pd.testing.assert_frame_equal(tables["new"], tables["old"])
