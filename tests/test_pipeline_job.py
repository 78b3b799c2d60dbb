"""The main job's pieces that need no training: `qlib-ext run --check`, the dataset identity that keys the
market stage, old call signatures.  The tiny job end to end (and its reruns) is in
``tests/reliability/test_reliability_pipeline.py``, on one shared run."""

from __future__ import annotations

import os
import shutil

import pytest

from qlib_ext.cli import main
from qlib_ext.pipeline.job import dataset_identity, run_job, template_context


def test_check_on_a_missing_dataset_says_what_would_be_built(tmp_path, capsys):
    assert main(["run", "--check", "--preset", "tiny", "--data", str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert "would build the synthetic market 'tiny'" in out and not (tmp_path / "new").exists()


def test_check_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "daily.csv").write_text("x\n")
    assert main(["run", "--dry-run", "--preset", "tiny", "--data", str(tmp_path / "src")]) == 2
    assert "daily.csv" in capsys.readouterr().err


def test_check_runs_the_preflight_on_a_dataset(tiny_market, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_market, data, copy_function=os.symlink)
    code = main(["run", "--check", "--preset", "tiny", "--data", str(data)])
    text = capsys.readouterr().out
    assert code in (0, 1) and text.strip()
    assert not (tmp_path / "runs").exists()


def test_dataset_identity_is_content_not_place_or_time(tiny_market, tmp_path):
    """The market stage's key: the same for a copy, unchanged by derived fields, changed by a rewrite."""
    a = tmp_path / "a"
    shutil.copytree(tiny_market, a, ignore=shutil.ignore_patterns("*.bin"))
    ident = dataset_identity(a)
    assert dataset_identity(tiny_market) == ident
    (a / "features" / "sh600000").mkdir(parents=True, exist_ok=True)
    (a / "features" / "sh600000" / "mf_x.day.bin").write_bytes(b"\0" * 8)   # a derived field: same dataset
    (a / "risk").mkdir()
    assert dataset_identity(a) == ident
    cal = a / "calendars" / "day.txt"
    cal.write_text(cal.read_text() + "2024-04-01\n")
    assert dataset_identity(a) != ident


def test_old_names_still_work(tmp_path):
    from qlib_ext.pipeline.job import load_job

    ctx = template_context(load_job("tiny"), tmp_path, "sqlite:///x.db", pred="p.pkl")
    assert ctx["QLIB_EXT_PRED"] == "p.pkl" and ctx["QLIB_EXT_TEST"] == "2023-07-03:2024-03-28"
    assert callable(run_job)


def test_init_writes_no_mlruns_in_the_working_directory(tiny_market, tmp_path, monkeypatch):
    """``qlib_ext.init`` builds its default ``./mlruns`` store only when no ``exp_manager`` is given, so the
    pipeline's ``init_qlib`` (which gives one) needs no workaround to keep the working directory clean."""
    import qlib_ext
    from qlib_ext.artifacts import exp_manager_config
    from qlib_ext.pipeline.workflow import init_qlib

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    store = tmp_path / "store"
    init_qlib(tiny_market, exp_manager_config(store)["kwargs"]["uri"])
    qlib_ext.init(tiny_market, exp_manager=exp_manager_config(store))
    assert list(cwd.iterdir()) == []
    qlib_ext.init(tiny_market)  # no exp_manager: the default store in ./mlruns
    assert [p.name for p in cwd.iterdir()] == ["mlruns"]


def test_report_stage_passes_the_data_and_writes_what_the_run_could_not_do(tmp_path, monkeypatch):
    """The report names the data through their provenance (never the job's market name) and keeps the
    preflight's decisions in ``decisions.json`` beside ``runs.json`` (so ``qlib-ext report`` shows them too)."""
    from pathlib import Path

    import qlib_ext.analysis.report as report
    from qlib_ext.pipeline.cache import StageCache
    from qlib_ext.pipeline.job import report_stage

    seen: dict = {}

    def fake_build(target, out, **kw):
        seen.update(kw, target=target)
        Path(out).write_text("<html></html>")
        return Path(out)

    monkeypatch.setattr(report, "build_report", fake_build)
    data = tmp_path / "data"
    data.mkdir()
    runs = {"csi300": {"experiment_name": "enhance_csi300", "recorder_id": "r1"}}
    lines = ["CSI All Share (000985) not in the data: market review drawn without it"]
    res = report_stage(data, "sqlite:///nowhere.db", runs, lines, StageCache(tmp_path / "stages", log=lambda _m: None))
    folder = res.path("html").parent
    assert report.read_decisions(str(folder / "runs.json")) == lines
    assert seen["data"] == data and seen["title"] == "qlib-ext main job"
    # a changed decision list reruns the stage
    again = report_stage(data, "sqlite:///nowhere.db", runs, [], StageCache(tmp_path / "stages", log=lambda _m: None))
    assert not again.cached and report.read_decisions(str(again.path("html").parent / "runs.json")) == []


def test_run_picks_the_preset_from_the_data_and_the_real_preset_never_builds_a_market(micro_market, tmp_path):
    """`qlib-ext run --data DIR` without --preset: `real` for a dataset that is not a synthetic market of ours,
    the market's own preset for one of ours, `default` for a new folder; `real` on an empty folder says to
    import first instead of building a synthetic market there."""
    import json
    import shutil

    from qlib_ext.pipeline.job import check_job, default_preset, run_job

    assert default_preset(None) == "default"
    assert default_preset(tmp_path / "new") == "default"
    assert default_preset(micro_market) == "default"  # micro is not a pipeline preset
    imported = tmp_path / "imported"
    shutil.copytree(micro_market, imported)
    meta = imported / "meta" / "dataset.json"
    info = json.loads(meta.read_text())
    info.update(kind="imported", source="/somewhere/tushare")
    meta.write_text(json.dumps(info))
    assert default_preset(imported) == "real"

    empty = tmp_path / "empty"
    empty.mkdir()
    ok, text = check_job("real", data=empty)
    assert not ok and "import your data first" in text
    with pytest.raises(ValueError, match="import your data first"):
        run_job("real", data=empty, out=tmp_path / "out", log=lambda _m: None)
    assert list(empty.iterdir()) == []
