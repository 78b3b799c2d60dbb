"""The sweep runner on the tiny market: serial vs a Dask LocalCluster of 2 workers logging to a local
``mlflow server`` (same tables), cell identity, the report's reference columns, a clean temp folder,
resume after ``kill -9`` of the runner without recomputing finished cells, and a failing cell."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from qlib_ext.config import load_config
from qlib_ext.pipeline.sweep import build_cells, load_sweep, run_sweep
from qlib_ext.risk import build_risk

REPO = Path(__file__).resolve().parents[1]
BACKTEST = ["2024-01-02", "2024-03-28"]


def shallow_copy(src: Path, dst: Path) -> Path:
    """Directories copied, files symlinked: writers replace links, the shared fixture is never touched."""
    shutil.copytree(src, dst, copy_function=os.symlink)
    return dst


@pytest.fixture(scope="module")
def sweep_file(tiny_market, tmp_path_factory) -> Path:
    """A 3-cell sweep (4 rows: the 80% floor and the 'none' moment bound are one cell) on CSI1000."""
    from qlib.data import D

    import qlib_ext

    root = tmp_path_factory.mktemp("sweep")
    data = shallow_copy(tiny_market, root / "data")
    build_risk(data, export_qlib=False, progress=False)
    qlib_ext.init(data, mlruns=root / "signal_mlruns")
    raw = D.features(D.instruments("csiall"), ["1 - $close/Ref($close, 5)"], "2023-12-01", BACKTEST[1])
    pred = raw.swaplevel().sort_index()
    pred.columns = ["score"]
    pred.to_pickle(root / "pred.pkl")
    label = D.features(D.instruments("csiall"), ["Ref($vwap, -11)/Ref($vwap, -1) - 1"], "2023-12-01", BACKTEST[1])
    label = label.swaplevel().sort_index()
    label.columns = ["LABEL0"]
    label.to_pickle(root / "label.pkl")
    cfg = {
        "name": "tiny_test", "template": str(REPO / "workflows" / "enhance_csi500.yaml"), "data": str(data),
        "signal": str(root / "pred.pkl"), "backtest": BACKTEST, "window": ["2024-01-02", "2024-03-28"],
        "benchmarks": ["csi1000"], "override_root": "port_analysis_config.strategy.kwargs", "skip_records": ["SigAnaRecord"],
        "experiments": {
            "constituent_floor": {"tables": [23], "param": "optimizer.constituent_floor", "values": [1.0, 0.8],
                                  "labels": ["100%", "80%"]},
            "size_moment2": {"tables": [33, 34], "param": "optimizer.size_moment2", "values": [None, 0.2],
                             "labels": ["none", "[-0.20,0.20]"]},
        },
        "reference": load_config("sweeps", "report")["reference"],
    }
    path = root / "tiny_test.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def serial(sweep_file, tmp_path_factory):
    """The sweep run serially in this process (the reference for the other tests)."""
    out = tmp_path_factory.mktemp("serial")
    systmp = tmp_path_factory.mktemp("systmp")
    old = os.environ.get("TMPDIR")
    import tempfile

    old_mod, tempfile.tempdir = tempfile.tempdir, str(systmp)
    os.environ["TMPDIR"] = str(systmp)
    try:
        res = run_sweep(sweep_file, out=out, workers=1)
    finally:
        tempfile.tempdir = old_mod
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
    return res, out, systmp


def test_cells_identity(sweep_file, tmp_path):
    cells, _ = build_cells(load_sweep(sweep_file))
    assert len(cells) == 3  # 80% floor == no 2nd-moment bound: one cell, two rows
    base = next(c for c in cells if len(c.members) == 2)
    assert sorted(m[0] for m in base.members) == ["constituent_floor", "size_moment2"]
    cfg = yaml.safe_load(sweep_file.read_text())
    cfg["experiments"]["size_moment2"]["values"] = [None, 0.3]  # an edited cell gets a new id, the rest keep theirs
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    cells2, _ = build_cells(load_sweep(edited))
    assert {c.id for c in cells} & {c.id for c in cells2} == {c.id for c in cells if c.label != "[-0.20,0.20]"}


def test_serial_tables_and_clean_tmp(serial, sweep_file):
    from mlflow.tracking import MlflowClient

    res, out, systmp = serial
    assert not res["failed"] and not res["missing"] and len(res["ran"]) == 3
    assert list(systmp.iterdir()) == []  # nothing left in the (redirected) system temp folder
    assert not (out / ".tmp").exists() or list((out / ".tmp").iterdir()) == []
    table = res["tables"]["constituent_floor_csi1000"]
    assert list(table.index) == ["100%", "80%"]
    moment = res["tables"]["size_moment2_csi1000"]
    ours = [c for c in table.columns if not c.startswith("report")]
    assert moment.loc["none", ours].equals(table.loc["80%", ours])  # the shared baseline cell
    # the report's numbers in clearly labelled columns (table 23, CSI1000 real market)
    assert table.loc["100%", "report (real market): annualised excess"] == pytest.approx(0.255)
    assert moment.loc["[-0.20,0.20]", "report (real market): weight in smallest 10%"] == pytest.approx(0.023)
    # our numbers against an independent computation from the cell's own Qlib report
    summary = json.loads((out / "sweep.json").read_text())
    cell = next(c for c in summary["cells"] if c["label"] == "100%")
    client = MlflowClient(tracking_uri=summary["tracking_uri"])
    local = client.download_artifacts(cell["recorder_id"], "portfolio_analysis/report_normal_1day.pkl",
                                      str(out / "check"))
    report = pd.read_pickle(local)
    e = report["return"] - report["bench"] - report["cost"]
    assert table.loc["100%", "annualised excess"] == pytest.approx(np.prod(1 + e) ** (252 / len(e)) - 1, rel=1e-9)
    assert report.index[0] >= pd.Timestamp(BACKTEST[0]) and report.index[-1] == pd.Timestamp(BACKTEST[1])
    runs = client.search_runs([cell["experiment_id"]])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert (out / "tables" / "constituent_floor_csi1000.csv").is_file() and (out / "tables" / "tables.md").is_file()


def test_parallel_matches_serial(serial, sweep_file, tmp_path):
    """2 Dask workers (processes) logging to an mlflow server that the sweep starts and stops."""
    res, _, _ = serial
    par = run_sweep(sweep_file, out=tmp_path / "par", workers=2)
    assert not par["failed"] and len(par["ran"]) == 3
    assert {r["pid"] for r in par_cells(tmp_path / "par")} - {os.getpid()}  # ran outside this process
    for name, table in res["tables"].items():
        pd.testing.assert_frame_equal(par["tables"][name], table)
    summary = json.loads((tmp_path / "par" / "sweep.json").read_text())
    assert summary["tracking_uri"].startswith("sqlite:///")  # the server's store, readable after it stopped
    assert not (tmp_path / "par" / "tracking" / "server.pid").exists()
    assert not (tmp_path / "par" / ".dask").exists()


def par_cells(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]


def test_kill_resume_and_failing_cell(serial, sweep_file, tmp_path):
    res, _, _ = serial
    out = tmp_path / "kill"
    proc = subprocess.Popen([sys.executable, "-m", "qlib_ext.cli", "sweep", str(sweep_file), "--out", str(out),
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def n_done() -> int:
        return len(list((out / "cells").glob("*.json"))) if (out / "cells").exists() else 0

    t0 = time.time()
    while time.time() - t0 < 300 and n_done() == 0 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert 1 <= len(finished) < 3, "the runner should have been killed part-way"
    cells, _ = build_cells(load_sweep(sweep_file))
    missing = [c.id for c in cells if f"{c.id}.json" not in finished]
    # rerun with one of the missing cells made to raise (its backtest fails): it is reported, the others finish
    from qlib_ext.pipeline import workflow

    real = workflow.run_backtest

    def failing(cfg, pred, label, experiment, **kw):
        if (kw.get("params") or {}).get("cell") == missing[0]:
            raise RuntimeError(f"cell {missing[0]} asked to fail")
        return real(cfg, pred, label, experiment, **kw)
    workflow.run_backtest = failing
    try:
        again = run_sweep(sweep_file, out=out, workers=1)
    finally:
        workflow.run_backtest = real
    assert sorted(again["ran"]) == sorted(missing)
    assert [f["id"] for f in again["failed"]] == [missing[0]] and "asked to fail" in again["failed"][0]["error"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json") if p.name in finished} == finished
    summary = json.loads((out / "sweep.json").read_text())
    assert [f["id"] for f in summary["failed"]] == [missing[0]]
    # the last rerun computes only the failed cell and gives the serial run's tables
    last = run_sweep(sweep_file, out=out, workers=1)
    assert last["ran"] == [missing[0]] and not last["failed"]
    for name, table in res["tables"].items():
        pd.testing.assert_frame_equal(last["tables"][name], table)


def test_holdings_columns_are_keys_the_holdings_recorder_writes():
    """The sweep tables' holdings columns (ours and the report's) name keys of HoldingsProfileRecord's summary."""
    from qlib_ext.analysis.holdings_record import HEADLINE
    from qlib_ext.config import load_config
    from qlib_ext.pipeline.tables import HOLDINGS_COLUMNS

    assert set(HOLDINGS_COLUMNS) <= set(HEADLINE)
    assert load_config("sweeps", "report")["reference"]["holdings_columns"] == list(HOLDINGS_COLUMNS)
