"""The full-pipeline qrun workflows are current (generated from ensemble.yaml + enhance.yaml) and render
to one qrun task with the ensemble signal, the enhancement backtest and the recorders; the job and sweep
presets load through qlib_ext.config and the sweep's reference numbers have the report's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlib_ext.config import load_config
from qlib_ext.pipeline.job import load_job
from qlib_ext.pipeline.qrun_files import BENCHMARKS, analysis_records, render_pipeline
from qlib_ext.pipeline.sweep import load_sweep
from qlib_ext.pipeline.workflow import render_workflow

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_pipeline_workflow_is_current(name):
    path = WORKFLOWS / f"pipeline_{name}.yaml"
    text = path.read_text()
    assert text == render_pipeline(name, WORKFLOWS), "regenerate: python -m qlib_ext.pipeline.qrun_files"
    cfg = render_workflow(path, {"QLIB_EXT_PROVIDER_URI": "/data"})
    pac = cfg["port_analysis_config"]
    assert pac["strategy"]["kwargs"]["benchmark"] == name
    assert pac["backtest"]["start_time"] == "2016-12-30" and pac["backtest"]["end_time"] == "2024-03-28"
    assert cfg["task"]["model"]["class"] == "Ensemble"
    assert cfg["task"]["dataset"]["kwargs"]["segments"]["test"] == ["2016-12-30", "2024-03-28"]
    recs = [r["class"] for r in cfg["task"]["record"]]
    assert recs[:4] == ["SignalRecord", "SigAnaRecord", "PortAnaRecord", "PerformanceRecord"]
    assert cfg["task"]["record"][2]["kwargs"]["config"] == pac
    # then the analysis registry's recorders: the backtest run's (benchmark filled), then the signal run's
    assert cfg["task"]["record"][4:] == analysis_records(name)
    assert {r["class"] for r in cfg["task"]["record"]} >= {"MarketReviewRecord", "AttributionRecord", "CrowdingRecord"}


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


# ---------------------------------------------------------------------------------------------- golden
#: sha256 (16 hex) of every rendered config captured from the code before issue 18's refactor (job backtests
#: and signal tasks of every preset x profile x benchmark, sweep cells, the enhancement templates): the
#: refactor (BacktestSpec, recorded_run) must render the same configs.  Empty ``kwargs`` and cell ids aside.
GOLDEN = {
    "job:default:fast": "72c3fd8901af0dec", "job:default:report": "a75af2f7fb71f41d",
    "job:full:fast": "d633a4e567291616", "job:full:report": "4c7e60cb5080fbbf",
    "job:tiny:fast": "5c13122be2dd8eaf", "job:tiny:report": "b63f26ea5f71e13c",
    "render:enhance:csi1000": "4096f699960668f8", "render:enhance:csi300": "c6cf2a8b2e5fe9b5",
    "render:enhance:csi500": "8295334978100bf1", "render:enhance_csi1000": "4096f699960668f8",
    "render:enhance_csi300": "c6cf2a8b2e5fe9b5", "render:enhance_csi500": "8295334978100bf1",
    # pipeline_*: records from the analysis registry (MarketReviewRecord, order 10, now first of the extras;
    # before: 18c26761845d73a7 / 2926f80db38b2634, the same configs with that one record moved)
    "render:pipeline_csi1000": "d0d1de3af98f0d33", "render:pipeline_csi500": "8995bb030a7d3942",
    "sweep:report:csi300": "6f6e17330f1b564f", "sweep:report:csi500+csi1000": "240b75372b959976",
}


def _norm(obj):
    if isinstance(obj, dict):
        return {k: _norm(v) for k, v in obj.items() if not (k == "kwargs" and v == {}) and k != "id"}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    return obj


def _golden_hash(obj, tmp: Path | None = None) -> str:
    import hashlib
    import json

    from qlib_ext.pipeline.cache import _canonical

    text = json.dumps(_canonical(obj), sort_keys=True)
    if tmp is not None:
        text = text.replace(str(tmp), "<TMP>")
    return hashlib.sha256(json.dumps(_norm(json.loads(text)), sort_keys=True).encode()).hexdigest()[:16]


def _rendered(tmp: Path) -> dict:
    from qlib_ext.pipeline.job import backtest_spec, signal_task
    from qlib_ext.pipeline.sweep import build_cells

    out = {}
    for preset in ("tiny", "default", "full"):
        for profile in ("fast", "report"):
            job = load_job(preset)
            data, uri = Path("/DATA"), "sqlite:////OUT/mlruns/mlflow.db"
            spec = backtest_spec(job, data, uri)
            rendered = spec.render()
            item = {"signal": signal_task(job, data, uri, profile, rendered)}
            if profile == "report":
                item["signal_strict"] = signal_task(job, data, uri, profile, rendered, neutralize="strict")
            skip = [r["class"] for r in job.get("signal_records") or []]
            for name in ("csi300", "csi500", "csi1000"):
                cfg = spec.config(name, rendered=rendered)
                item[f"backtest_{name}"] = {"cfg": cfg, "records": spec.records(cfg, name, job.get("records") or [],
                                                                                 skip=skip)}
            out[f"job:{preset}:{profile}"] = item
    (tmp / "data" / "risk").mkdir(parents=True)
    (tmp / "data" / "risk" / "meta.json").write_text("{}")
    (tmp / "pred.pkl").write_bytes(b"pred")
    (tmp / "label.pkl").write_bytes(b"label")
    for benches in (["csi500", "csi1000"], ["csi300"]):
        cfg = load_sweep("report", data=str(tmp / "data"), signal=str(tmp / "pred.pkl"), benchmarks=benches)
        cells, _ = build_cells(cfg)
        out[f"sweep:report:{'+'.join(benches)}"] = {"cells": [{"id": c.id, "spec": c.spec(), "config": c.config,
                                                               "records": c.records} for c in cells]}
    for name in ("csi300", "csi500", "csi1000"):
        out[f"render:enhance:{name}"] = render_workflow(WORKFLOWS / "enhance.yaml", {"QLIB_EXT_BENCHMARK": name})
        out[f"render:enhance_{name}"] = render_workflow(WORKFLOWS / f"enhance_{name}.yaml", {})
    for name in ("csi500", "csi1000"):
        out[f"render:pipeline_{name}"] = render_workflow(WORKFLOWS / f"pipeline_{name}.yaml", {})
    return out


def test_rendered_configs_of_every_benchmark_are_unchanged_by_the_refactor(tmp_path):
    got = {k: _golden_hash(v, tmp_path) for k, v in _rendered(tmp_path).items()}
    assert got == GOLDEN


@pytest.mark.parametrize("name", ["csi300", "csi500", "csi1000"])
def test_enhance_files_are_generated_from_the_template(name):
    from qlib_ext.pipeline.qrun_files import render_enhance

    assert (WORKFLOWS / f"enhance_{name}.yaml").read_text() == render_enhance(name, WORKFLOWS), \
        "regenerate: python -m qlib_ext.pipeline.qrun_files"


@pytest.mark.parametrize("workflow", ["enhance.yaml", "ensemble.yaml", "lgb_minute.yaml", "gru_daily.yaml",
                                      "gru_weekly.yaml", "pipeline_csi500.yaml"])
def test_null_overrides_render_as_yaml_null(workflow):
    """``QLIB_EXT_NEUTRALIZE=null`` switches neutralisation off (was the string 'null'); likewise the risk store
    and the optimizer preset of the enhancement template."""
    cfg = render_workflow(WORKFLOWS / workflow, {"QLIB_EXT_NEUTRALIZE": "null", "QLIB_EXT_RISK_STORE": "null",
                                                 "QLIB_EXT_OPTIM_PRESET": "null"})
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("neutralize", "risk_store", "preset"):
                    found.append((k, v))
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(cfg)
    assert found and all(v is None for _, v in found), found
    default = render_workflow(WORKFLOWS / workflow, {})
    assert "null" not in str(default.get("data_handler_config", {}).get("neutralize", ""))


def test_enhance_index_table_is_written_from_the_schema():
    """A new benchmark is one row of qlib_ext.schema.BENCHMARKS, then `python -m qlib_ext.pipeline.qrun_files`."""
    from qlib_ext.pipeline.qrun_files import render_template

    assert (WORKFLOWS / "enhance.yaml").read_text() == render_template(WORKFLOWS)
