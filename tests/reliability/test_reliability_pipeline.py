"""The main job and the sweep as a runner users can trust (issue 18), each case on the tiny job.

Never delete what it did not make (a folder of other files, a regular file); run 2 skips every stage in
seconds; a failed or killed stage leaves nothing a rerun adopts; a risk-config change and a code-version
change rerun what they must; one run per ``--out``; a stale tracking-server pid naming a foreign process
is not signalled; an interrupted sweep leaves nothing; grid errors name the file and the key; two tiny
runs from scratch give the same ``pred.pkl`` bytes and headline; nothing lands in the working directory.

One tiny job from scratch (module fixture) is shared; cases that change it work on copies of its ``out``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from qlib_ext.cli import main
from qlib_ext.data.tempdirs import pid_alive
from qlib_ext.files import PidLock
from qlib_ext.pipeline import job as job_mod
from qlib_ext.pipeline.cache import MANIFEST
from qlib_ext.pipeline.job import run_job

from .helpers import digest, disk_full
from .test_reliability_leftovers import kill9_when_ready

QUIET = {"log": lambda m: None}


def _cached(out: Path) -> dict[str, bool]:
    return {s["stage"]: s["cached"] for s in json.loads((out / "timings.json").read_text())["stages"]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """``qlib-ext run --preset tiny`` from scratch (the job builds its market), from an empty working directory."""
    root = tmp_path_factory.mktemp("job")
    cwd = root / "cwd"
    cwd.mkdir()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        res = run_job("tiny", data=root / "data", out=root / "out", **QUIET)
    finally:
        os.chdir(old)
    return {"root": root, "data": root / "data", "out": root / "out", "cwd": cwd, "res": res}


def _copy_out(run: dict, dst: Path) -> Path:
    """A copy of the fixture's ``out`` (MLflow store included), so a case may change it.  Its report stage
    reruns once there (the report names the tracking store, which moved with the copy)."""
    return Path(shutil.copytree(run["out"], dst, symlinks=True))


def _all_but_report_cached(out: Path) -> bool:
    return all(v for k, v in _cached(out).items() if k != "report")


# ---------------------------------------------------------------------------------------------- no data loss
@pytest.mark.parametrize("kind", ["folder", "file"])
def test_run_and_synth_refuse_a_non_dataset_data_folder_and_leave_it_untouched(tmp_path, capsys, kind):
    target = tmp_path / "mine"
    if kind == "folder":
        target.mkdir()
        (target / "prices.csv").write_text("code,close\n600000.SH,10.0\n")
        (target / "notes.txt").write_text("my notes")
    else:
        target.write_text("not a folder")
    before = digest(target) if kind == "folder" else target.read_bytes()
    assert main(["run", "--preset", "tiny", "--data", str(target), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "refusing to replace it" in err
    assert ("prices.csv" in err and "notes.txt" in err) if kind == "folder" else "is a file" in err
    assert main(["data", "synth", "--preset", "tiny", "--out", str(target), "--quiet"]) == 2
    assert str(target) in capsys.readouterr().err
    assert (digest(target) if kind == "folder" else target.read_bytes()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mine")] == []


@pytest.mark.e2e
@pytest.mark.slow
def test_tiny_job_end_to_end(tiny_run):
    """The shared run: every stage ran, headline = the runs' own Qlib reports, signal over the backtest span."""
    import numpy as np
    import pandas as pd
    from mlflow.tracking import MlflowClient

    out, data = tiny_run["out"], tiny_run["data"]
    timings = json.loads((out / "timings.json").read_text())
    stages = {s["stage"] for s in timings["stages"]}
    assert {"market", "minute_factors", "risk", "signal", "backtest_csi500", "backtest_csi1000", "report"} <= stages
    assert (data / "risk" / "meta.json").is_file() and any((data / "features").glob("*/mf_*.day.bin"))
    assert (data / "meta" / "qlib_ext.json").is_file()                 # the writer's marker
    headline = pd.read_csv(out / "tables" / "headline.csv", index_col=0)
    assert list(headline.index) == ["CSI500", "CSI1000"]
    assert headline.loc["CSI1000", "report (real market): annualised excess"] == pytest.approx(0.259)
    assert "synthetic" in (out / "tables" / "headline.md").read_text()
    runs = json.loads((out / "runs.json").read_text())
    client = MlflowClient(tracking_uri=runs["tracking_uri"])
    for name, label in (("csi500", "CSI500"), ("csi1000", "CSI1000")):
        rid = runs["backtests"][name]["recorder_id"]
        assert client.get_run(rid).info.status == "FINISHED"
        report = pd.read_pickle(client.download_artifacts(rid, "portfolio_analysis/report_normal_1day.pkl",
                                                          str(tiny_run["root"] / name)))
        e = report["return"] - report["bench"] - report["cost"]
        assert report.index[0] == pd.Timestamp("2023-07-03") and report.index[-1] == pd.Timestamp("2024-03-28")
        assert headline.loc[label, "annualised excess"] == pytest.approx(np.prod(1 + e) ** (252 / len(e)) - 1,
                                                                         rel=1e-9)
    pred = pd.read_pickle(out / "stages" / "signal" / "pred.pkl")
    days = pred.index.get_level_values("datetime")
    assert days.min() == pd.Timestamp("2023-07-03") and days.max() >= pd.Timestamp("2024-03-28")
    assert not (out / "tmp").exists() or list((out / "tmp").iterdir()) == []
    assert Path(runs["report"]).stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------- reruns
@pytest.mark.e2e
@pytest.mark.slow
def test_run2_of_an_unchanged_job_skips_every_stage_in_seconds(tiny_run):
    assert list(tiny_run["cwd"].iterdir()) == [], "the job wrote into the working directory"
    assert not any(_cached(tiny_run["out"]).values())
    t0 = time.perf_counter()
    run_job("tiny", data=tiny_run["data"], out=tiny_run["out"], **QUIET)
    seconds = time.perf_counter() - t0
    cached = _cached(tiny_run["out"])
    assert all(cached.values()), cached
    assert seconds < 20, f"an all-cached rerun took {seconds:.1f} s"


@pytest.mark.e2e
@pytest.mark.slow
def test_a_code_version_change_reruns_that_stage_and_its_dependents_only(tiny_run, tmp_path, monkeypatch):
    out = _copy_out(tiny_run, tmp_path / "out")
    monkeypatch.setitem(job_mod.STAGE_CODE, "signal_analysis", job_mod.STAGE_CODE["signal_analysis"] + 1)
    run_job("tiny", data=tiny_run["data"], out=out, **QUIET)
    rerun = {k for k, v in _cached(out).items() if not v}
    assert rerun == {"signal_analysis", "report"}  # the report lists the signal analysis' new run


KILLED_SIGNAL = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pandas as pd
    from qlib_ext.pipeline.job import run_job
    real = pd.to_pickle
    def half(obj, path, *a, **k):
        real(obj, path, *a, **k)
        if Path(path).name == "pred.pkl":              # truncated mid-write, then killed
            size = Path(path).stat().st_size
            with open(path, "r+b") as fh:
                fh.truncate(size // 2)
            Path(sys.argv[3]).write_text("ready")
            time.sleep(600)
    pd.to_pickle = half
    run_job("tiny", data=sys.argv[1], out=sys.argv[2], signal={"step": 120}, log=lambda m: None)
""")


@pytest.mark.e2e
@pytest.mark.slow
def test_a_failed_or_killed_signal_stage_leaves_nothing_a_rerun_adopts(tiny_run, tmp_path, monkeypatch, caplog):
    """Another config's signal stage fails (disk full after pred.pkl), then is killed with ``kill -9`` inside
    its pred.pkl write: the rerun of the original config adopts the original signal, never theirs."""
    import pandas as pd

    out = _copy_out(tiny_run, tmp_path / "out")
    pred = out / "stages" / "signal" / "pred.pkl"
    before = pred.read_bytes()
    monkeypatch.setattr(pd, "to_pickle", disk_full(1, pd.to_pickle))     # pred.pkl written, label.pkl fails
    with pytest.raises(OSError, match="No space left"):
        run_job("tiny", data=tiny_run["data"], out=out, signal={"step": 120}, **QUIET)
    monkeypatch.undo()
    assert pred.read_bytes() == before
    assert sorted(p.name for p in (out / "stages").iterdir() if p.name.startswith(".")) == []

    proc = kill9_when_ready([sys.executable, "-c", KILLED_SIGNAL, str(tiny_run["data"]), str(out)],
                            tmp_path / "ready", 300)
    left = [p for p in (out / "stages").iterdir() if p.name.startswith(".signal.tmp-")]
    assert len(left) == 1 and (left[0] / "pred.pkl").stat().st_size < len(before)
    assert json.loads((out / ".lock").read_text())["pid"] == proc.pid          # its lock, now stale
    with caplog.at_level(logging.WARNING):
        run_job("tiny", data=tiny_run["data"], out=out, **QUIET)
    assert _all_but_report_cached(out) and pred.read_bytes() == before
    assert not left[0].exists() and not (out / ".lock").exists()
    msgs = " | ".join(r.getMessage() for r in caplog.records)
    assert f"stale qlib-ext run lock {out / '.lock'} of process {proc.pid}" in msgs
    assert str(left[0]) in msgs


@pytest.mark.e2e
@pytest.mark.slow
def test_a_risk_config_change_is_applied(tiny_run, tmp_path):
    out = _copy_out(tiny_run, tmp_path / "out")
    assert not (tiny_run["data"] / "risk" / "qlib").exists()
    run_job("tiny", data=tiny_run["data"], out=out, risk={"qlib_every": 20}, **QUIET)
    cached = _cached(out)
    assert not cached["risk"] and not cached["backtest_csi500"] and cached["signal"], cached
    assert any((tiny_run["data"] / "risk" / "qlib").iterdir()), "qlib_every: 20 was recorded but not applied"
    manifest = json.loads((out / "stages" / "risk" / MANIFEST).read_text())
    assert manifest["config"]["qlib_every"] == 20 and manifest["outputs"]["qlib_every"] == 20


@pytest.mark.e2e
@pytest.mark.slow
def test_a_synthetic_market_of_another_config_not_built_by_the_job_stops_the_job(tiny_run, tmp_path, capsys):
    seed = yaml.safe_load((tiny_run["data"] / "meta" / "market.yaml").read_text())["seed"]
    market = tmp_path / "tiny_other_seed.yaml"
    market.write_text(yaml.safe_dump({"base": "tiny", "seed": seed + 1}))
    preset = tmp_path / "other.yaml"
    preset.write_text(yaml.safe_dump({"base": "tiny", "out": str(tmp_path / "out"), "market": str(market)}))
    before = digest(tiny_run["data"], "calendars")
    assert main(["run", "--preset", str(preset), "--data", str(tiny_run["data"])]) == 2
    err = capsys.readouterr().err
    assert str(tiny_run["data"]) in err and "not rebuilt" in err and str(seed) in err
    assert digest(tiny_run["data"], "calendars") == before


@pytest.mark.e2e
@pytest.mark.slow
def test_two_tiny_runs_from_scratch_give_the_same_signal_bytes_and_headline(tiny_run, tmp_path):
    run_job("tiny", data=tmp_path / "data", out=tmp_path / "out", **QUIET)
    for rel in ("stages/signal/pred.pkl", "stages/signal/label.pkl", "tables/headline.csv", "tables/headline.md"):
        assert (tmp_path / "out" / rel).read_bytes() == (tiny_run["out"] / rel).read_bytes(), rel


# ---------------------------------------------------------------------------------------------- locks
def test_a_second_run_into_the_same_out_refuses_naming_the_first_pid(tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from qlib_ext.files import PidLock
        PidLock({str(out)!r}, what="qlib-ext run").acquire()
        print("held", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["run", "--preset", "tiny", "--data", str(tmp_path / "data"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and str(out) in err
        assert not (tmp_path / "data").exists()
    finally:
        holder.kill()
        holder.wait()
    with PidLock(out, what="qlib-ext run"):            # the dead holder's lock is taken over
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert not (out / ".lock").exists()


# ---------------------------------------------------------------------------------------------- sweep
def test_a_stale_server_pid_naming_a_foreign_process_is_not_signalled(tmp_path, caplog):
    from qlib_ext.pipeline.tracking import TrackingServer

    folder = tmp_path / "tracking"
    folder.mkdir()
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)   # its own process group, like a server
    try:
        for text in (f"{other.pid} 5000\n", json.dumps({"pid": other.pid, "port": 5000, "start": 1})):
            (folder / "server.pid").write_text(text)
            with caplog.at_level(logging.WARNING):
                TrackingServer(folder)._stop_stale()
            assert other.poll() is None and pid_alive(other.pid), "an unrelated process was signalled"
            assert not (folder / "server.pid").exists()
        assert "not this store's mlflow server: not signalled" in caplog.text
    finally:
        other.kill()
        other.wait()


def _grid(tmp_path: Path, experiments: dict, **extra) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"template": "enhance_csi500", "data": str(tmp_path), "signal": "x.pkl",
                                    "backtest": ["2024-01-02", "2024-03-28"], "benchmarks": ["csi1000"],
                                    "experiments": experiments, **extra}))
    return path


@pytest.mark.parametrize("experiments, key, what", [
    ({"floor": {"param": "optimizer.constituent_floor", "valuez": [1.0]}}, "experiments.floor", "valuez"),
    ({"floor": {"param": "optimizer.constituent_floor", "values": []}}, "experiments.floor.values", "non-empty"),
    ({"floor": {"values": [1.0]}}, "experiments.floor", "`param` is missing"),
    ({"floor": {"param": "x", "values": [1, 2], "labels": ["a"]}}, "experiments.floor.labels", "1 labels for 2"),
    ({}, "`experiments` is empty", "at least one experiment"),
])
def test_grid_errors_name_the_file_and_the_key(tmp_path, capsys, experiments, key, what):
    from qlib_ext.pipeline.sweep import load_sweep

    path = _grid(tmp_path, experiments)
    with pytest.raises(ValueError) as err:
        load_sweep(path)
    assert str(path) in str(err.value) and key in str(err.value) and what in str(err.value)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert str(path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("workers", ["0", "-5", "two"])
def test_sweep_workers_must_be_at_least_one(tmp_path, capsys, workers):
    path = _grid(tmp_path, {"floor": {"param": "optimizer.constituent_floor", "values": [1.0]}})
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "--workers", workers])
    assert exc.value.code == 2 and "--workers must be" in capsys.readouterr().err


@pytest.fixture()
def sweep_on_tiny(tiny_run, tmp_path) -> Path:
    """A 2-cell sweep on the tiny job's signal and risk store."""
    return _grid(tmp_path, {"floor": {"param": "optimizer.constituent_floor", "values": [1.0, 0.9]}},
                 data=str(tiny_run["data"]), signal=str(tiny_run["out"] / "stages" / "signal" / "pred.pkl"),
                 override_root="port_analysis_config.strategy.kwargs", name="grid",
                 skip_records=["SigAnaRecord", "StyleProfileRecord", "QuantileRecord", "CrowdingRecord",
                               "AttributionRecord", "StyleTimingRecord", "MarketReviewRecord"])


@pytest.mark.e2e
@pytest.mark.slow
def test_an_interrupted_sweep_leaves_no_temp_runner_dask_or_server(sweep_on_tiny, tmp_path):
    out = tmp_path / "sweep"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "qlib_ext.cli", "sweep", str(sweep_on_tiny), "--out", str(out),
                             "--workers", "2"], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pidfile = out / "tracking" / "server.pid"
    try:
        t0 = time.time()
        while not ((out / ".dask").exists() and pidfile.exists()):
            assert proc.poll() is None, "the sweep ended before it was interrupted"
            assert time.time() - t0 < 300, "the sweep never started its cluster"
            time.sleep(0.2)
        server = json.loads(pidfile.read_text())["pid"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(1)
    assert not pid_alive(server), "the tracking server outlived the sweep"
    assert not (out / ".dask").exists() and not pidfile.exists() and not (out / ".lock").exists()
    assert not (out / ".tmp").exists() or list((out / ".tmp").iterdir()) == []
    assert list(cwd.iterdir()) == []


def test_a_killed_sweeps_leftovers_are_removed_by_the_next_run(tmp_path):
    """kill -9 cannot clean up: the next sweep into the same folder removes the dead runner's leftovers."""
    from qlib_ext.pipeline.sweep import _remove_leftovers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(dead.stdout)
    out = tmp_path / "sweep"
    (out / ".dask" / "worker-x").mkdir(parents=True)
    (out / ".qcache" / "123").mkdir(parents=True)
    runner, cell = out / ".tmp" / f"runner_{pid}-abcd1234", out / ".tmp" / f"cell_0123abcd_{pid}-zz9"
    live = out / ".tmp" / f"runner_{os.getppid()}-live0000"
    for p in (runner, cell, live):
        p.mkdir(parents=True)
    logs: list[str] = []
    _remove_leftovers(out, logs.append)
    assert not (out / ".dask").exists() and not (out / ".qcache").exists()
    assert not runner.exists() and not cell.exists() and live.exists()
    assert any(str(runner) in m for m in logs)


def test_report_without_a_store_creates_nothing_in_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "some_experiment"]) == 2
    assert "--mlruns" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
