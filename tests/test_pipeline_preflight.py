"""The main job's preflight (qlib_ext.pipeline.preflight.make_plan): every problem at once, in seconds, naming
stage, field or instrument, dates and fix; members the data cannot feed left out before training; optional
recorder inputs as decisions.  On the imported real fixture (skipped when absent) and on a 40-stock synthetic
market over the fixture's span with minute bars on its last 5 sessions only."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from qlib_ext.data.synth import build_market
from qlib_ext.pipeline.job import load_job
from qlib_ext.pipeline.preflight import make_plan
from qlib_ext.pipeline.signal import exclude_members, signal_members
from qlib_ext.pipeline.workflow import find_workflow, render_workflow

from conftest import micro_config


@pytest.fixture(scope="module")
def real_root(realdata, tmp_path_factory) -> Path:
    from qlib_ext.data.importers import import_dataset

    out = tmp_path_factory.mktemp("pf_real") / "qlib"
    report = import_dataset(realdata, out, progress=False)
    assert report.ok, report.render()
    return out


@pytest.fixture(scope="module")
def market3(tmp_path_factory) -> Path:
    """40 stocks, 2021-01-04 .. 2024-03-29 (the fixture's span), 1-minute bars on the last 5 sessions only.

    Without ``meta/market.yaml``, as an imported dataset: the minute data are the bins alone (a synthetic
    market's minute stream would regenerate bars for every session)."""
    cfg = micro_config(name="micro3", start="2021-01-04", minute_window=5)
    root = build_market(cfg, tmp_path_factory.mktemp("pf_m3") / "qlib", progress=False)
    (root / "meta" / "market.yaml").unlink()
    return root


@pytest.fixture()
def market3_copy(market3, tmp_path) -> Path:
    dst = tmp_path / "qlib"
    shutil.copytree(market3, dst)
    return dst


def nan_field(root: Path, field: str) -> None:
    """Every stock's ``field`` rewritten as all NaN (same header and length)."""
    for path in (root / "features").glob(f"*/{field}.day.bin"):
        x = np.fromfile(path, dtype="<f4")
        x[1:] = np.nan
        x.tofile(path)


# ---------------------------------------------------------------------------------------------- real fixture
def test_default_preset_on_the_real_fixture_fails_in_seconds_with_one_message(real_root):
    t0 = time.perf_counter()
    plan = make_plan(load_job("default"), real_root)
    took = time.perf_counter() - t0
    text = plan.format()
    assert not plan.ok and took < 60, (took, text)
    assert {p.stage for p in plan.problems} == {"windows"}
    assert "train 2013-01-04 .. 2015-12-31 lies outside the dataset's calendar 2021-01-04 .. 2024-03-29" in text
    assert "backtest starts 2016-12-30" in text and "--preset real" in text
    assert "CSI All Share (SH000985) is not in the dataset" in text
    assert "lgb_minute" in text and "1 of 2,308 stocks" in text           # the minute member, left out
    assert text.index("problems (the job cannot start)") < text.index("what this run could not do")


def test_tiny_preset_on_the_real_fixture_names_the_minute_bars_and_the_look_back(real_root):
    plan = make_plan(load_job("tiny"), real_root)
    by_stage = {p.stage: p for p in plan.problems}
    assert set(by_stage) == {"signal", "windows"}, plan.format()
    sig = by_stage["signal"]
    assert "only model lgb_minute" in sig.what and "1 of 2,308 stocks (SZ000001)" in sig.what
    assert "27 of" in sig.what and "--preset real" in sig.fix
    win = by_stage["windows"]
    assert "train starts 2021-01-04" in win.what and "first usable training day is 2021-01-29" in win.what
    assert "MinuteFactors 20-day means" in win.what


def test_real_preset_on_the_real_fixture_is_ready_to_run(real_root):
    plan = make_plan(load_job("real"), real_root)
    assert plan.ok, plan.format()
    job = plan.job
    assert job["benchmarks"] == ["csi300", "csi500", "csi1000"]
    assert job["signal"]["exclude"] == ["lgb_minute"] and job["minute_factors"] is False
    assert job["backtest"][1] == "2024-03-28" and job["window"] == ["2024-01-02", "2024-03-28"]
    assert job["signal"]["train"][0] == "2021-08-23"          # after the weekly GRU's 155-session look-back
    assert plan.windows is not None and set(plan.windows.fitted) == {"train", "valid", "backtest", "window"}
    assert any("SH000985" in d for d in plan.decisions)
    assert "imported dataset" in plan.dataset and "realdata" in plan.dataset


# ---------------------------------------------------------------------------------------------- members
def test_minute_member_is_left_out_before_training(market3):
    plan = make_plan(load_job("real"), market3)
    assert plan.ok, plan.format()
    assert plan.job["signal"]["exclude"] == ["lgb_minute"]
    line = next(d for d in plan.decisions if "lgb_minute" in d)
    assert "left out before training" in line and "gru_daily, gru_weekly" in line and "of 40 stocks" in line
    # the signal task the job trains: two GRUs; the daily GRU's sequence dataset is the task's (no MinuteFactors)
    task = render_workflow(find_workflow("ensemble"), {})["task"]
    out = exclude_members(task, plan.job["signal"]["exclude"])
    names = [m.name for m in signal_members(out)]
    assert names == ["gru_daily", "gru_weekly"]
    assert out["dataset"]["kwargs"]["handler"]["class"] == "DailyKline"
    assert "dataset" not in out["model"]["kwargs"]["members"][0]
    assert "MinuteFactors" not in str(out)
    from qlib.utils import init_instance_by_config

    model = init_instance_by_config(out["model"])             # the Ensemble takes it (nothing trained here)
    assert [m["name"] for m in model.members] == names


def test_minute_model_alone_without_minute_bars_is_a_problem(market3):
    plan = make_plan(load_job("tiny", signal={"train": "auto", "valid": "auto"}, backtest="auto", window="auto"),
                     market3)
    assert [p.stage for p in plan.problems] == ["signal"], plan.format()
    assert "the signal's only model lgb_minute" in plan.problems[0].what
    assert "on 4 of" in plan.problems[0].what and "minute" in plan.problems[0].fix


def test_exclude_members_refuses_what_would_leave_no_model():
    task = render_workflow(find_workflow("ensemble"), {})["task"]
    with pytest.raises(ValueError, match=r"\['lgb'\] are not models of the signal task"):
        exclude_members(task, ["lgb"])
    with pytest.raises(ValueError, match="without a member"):
        exclude_members(task, ["gru_daily", "gru_weekly", "lgb_minute"])
    single = render_workflow(find_workflow("lgb_minute"), {})["task"]
    with pytest.raises(ValueError, match="only model is lgb_minute"):
        exclude_members(single, ["lgb_minute"])
    assert exclude_members(task, []) == task


# ---------------------------------------------------------------------------------------------- fields, benchmarks
def test_missing_and_empty_fields_are_named_per_stage_all_at_once(market3_copy):
    root = market3_copy
    for path in (root / "features").glob("*/vwap.day.bin"):
        path.unlink()
    nan_field(root, "turnover")
    plan = make_plan(load_job("real", benchmarks=["csi500"], risk={"qlib_every": 0}), root)
    text = plan.format()
    stages = {p.stage for p in plan.problems}
    assert {"signal", "backtest_csi500", "records"} <= stages, text
    vwap = next(p for p in plan.problems if p.stage == "signal" and "$vwap" in p.what)
    assert "missing for 40 of 40 stocks" in vwap.what and "--augment" in vwap.fix and "amount" in vwap.fix
    assert any("$turnover" in p.what and "finite on 0.0%" in p.what for p in plan.problems), text
    assert any(p.stage == "risk" and "$turnover" in p.what for p in plan.problems), text


def test_benchmark_index_and_weights(market3_copy):
    root = market3_copy
    shutil.rmtree(root / "features" / "sh000905")
    for path in (root / "features").glob("*/w_csi1000.day.bin"):
        path.unlink()
    plan = make_plan(load_job("real", benchmarks=["csi500", "csi1000"]), root)
    by = {p.stage: p.what for p in plan.problems}
    assert "SH000905 has no close" in by["backtest_csi500"], plan.format()
    assert "w_csi1000" in by["backtest_csi1000"]
    auto = make_plan(load_job("real"), root)
    assert auto.ok and auto.job["benchmarks"] == ["csi300"], auto.format()
    assert any("CSI500 not run" in d for d in auto.decisions) and any("CSI1000 not run" in d for d in auto.decisions)


def test_missing_csi_all_share_is_a_decision_not_a_problem(market3_copy):
    shutil.rmtree(market3_copy / "features" / "sh000985")
    plan = make_plan(load_job("real"), market3_copy)
    assert plan.ok, plan.format()
    assert any("CSI All Share (SH000985) is not in the dataset" in d for d in plan.decisions)


def test_synthetic_minute_stream_keeps_the_minute_member(micro_market):
    """A synthetic market regenerates minute bars for every session (the minute-factor stage's stream),
    though its bins cover only the last few: the minute model is fed, nothing is left out."""
    plan = make_plan(load_job("tiny", signal={"train": "auto", "valid": "auto"}, backtest="auto", window="auto",
                              benchmarks="auto"), micro_market)
    assert not any(p.stage == "signal" for p in plan.problems), plan.format()
    assert "exclude" not in plan.job["signal"] and plan.job["minute_factors"] is True


def test_too_short_data_name_the_minimum_span(micro_market):
    plan = make_plan(load_job("real"), micro_market)
    assert [p.stage for p in plan.problems] == ["windows"], plan.format()
    assert "needs at least" in plan.problems[0].what and "look-back 155" in plan.problems[0].what


def test_no_dataset_is_one_problem(tmp_path):
    plan = make_plan(load_job("real"), tmp_path)
    assert [p.stage for p in plan.problems] == ["data"] and "holds no Qlib dataset" in plan.problems[0].what


def test_the_jobs_signal_task_leaves_out_the_excluded_members(market3):
    """The plan's ``signal.exclude`` reaches the task the signal stage trains (job.signal_task ->
    signal.exclude_members), so the minute-factor handler is never built on a dataset without minute bars."""
    from qlib_ext.pipeline.job import signal_task

    plan = make_plan(load_job("real"), market3)
    task = signal_task(plan.job, market3, "sqlite:///:memory:", "fast")
    assert [m.name for m in signal_members(task)] == ["gru_daily", "gru_weekly"]
    assert "MinuteFactors" not in str(task)
