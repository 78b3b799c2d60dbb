"""The full-pipeline qrun workflows are current (generated from ensemble.yaml + enhance.yaml) and render
to one qrun task with the ensemble signal, the enhancement backtest and the recorders; the job and sweep
presets load through qlib_ext.config and the sweep's reference numbers have the report's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlib_ext.config import load_config
from qlib_ext.pipeline.job import load_job
from qlib_ext.pipeline.qrun_files import ANALYSIS_RECORDS, BENCHMARKS, render_pipeline
from qlib_ext.pipeline.sweep import load_sweep
from qlib_ext.pipeline.workflow import render_workflow

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_pipeline_workflow_is_current(name):
    path = WORKFLOWS / f"pipeline_{name}.yaml"
    text = path.read_text()
    records = tuple(r for r in ANALYSIS_RECORDS if f"class: {r[0]}\n" in text)
    assert text == render_pipeline(name, WORKFLOWS, records), "regenerate: python -m qlib_ext.pipeline.qrun_files"
    cfg = render_workflow(path, {"QLIB_EXT_PROVIDER_URI": "/data"})
    pac = cfg["port_analysis_config"]
    assert pac["strategy"]["kwargs"]["benchmark"] == name
    assert pac["backtest"]["start_time"] == "2016-12-30" and pac["backtest"]["end_time"] == "2024-03-28"
    assert cfg["task"]["model"]["class"] == "Ensemble"
    assert cfg["task"]["dataset"]["kwargs"]["segments"]["test"] == ["2016-12-30", "2024-03-28"]
    recs = [r["class"] for r in cfg["task"]["record"]]
    assert recs[:4] == ["SignalRecord", "SigAnaRecord", "PortAnaRecord", "PerformanceRecord"]
    assert cfg["task"]["record"][2]["kwargs"]["config"] == pac


def test_job_presets():
    tiny, default = load_job("tiny"), load_job("default")
    assert default["backtest"] == ["2016-12-30", "2024-03-28"] and default["benchmarks"] == ["csi500", "csi1000"]
    assert tiny["market"] == "tiny" and tiny["signal"]["workflow"] == "lgb_minute" and default["signal"]["workflow"] == "ensemble"
    with pytest.raises(ValueError, match="bogus"):
        load_job("tiny", bogus=1)


def test_sweep_config_and_references():
    cfg = load_sweep("report")
    exps = cfg["experiments"]
    assert exps["constituent_floor"]["values"] == [1.0, 0.8, None]
    for name in ("nonlinear_size", "size_moment2", "size_moment3"):
        assert exps[name]["values"] == [None, 0.1, 0.2, 0.3, 0.4]
    ref = cfg["reference"]
    n = len(ref["columns"])
    assert set(ref["table11"]) == {"csi500", "csi1000"}
    for exp, rows in ref["csi1000"].items():
        assert list(rows) == exps[exp]["labels"] and all(len(v) == n for v in rows.values())
        # every experiment's baseline row is the report's table 11 CSI1000 row
        base = rows["80%"] if exp == "constituent_floor" else rows["none"]
        assert base == ref["table11"]["csi1000"]
    assert load_config("sweeps", "report")["template"] == cfg["template"]
