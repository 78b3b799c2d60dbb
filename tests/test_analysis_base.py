"""The recorders' one saver and one loader: all-or-nothing writes, loads that leave no temp copy."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import qlib_ext
from qlib_ext.analysis.records.base import AnalysisRecord
from qlib_ext.artifacts import has_artifact, load_artifact, save_artifacts
from qlib_ext.schema import ARTIFACTS, PRED_FILE


class BrokenFigure:
    def savefig(self, *args, **kwargs):
        raise RuntimeError("drawing failed")


@pytest.fixture(scope="module")
def mlruns(micro_market, tmp_path_factory):
    folder = tmp_path_factory.mktemp("base_mlruns")
    qlib_ext.init(micro_market, mlruns=folder / "mlruns")
    return folder


@pytest.fixture()
def recorder(mlruns, monkeypatch, request):
    from qlib.workflow import R

    monkeypatch.chdir(mlruns)
    with R.start(experiment_name="base", recorder_name=request.node.name):
        yield R.get_recorder()


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch):
    """Point the system temp dir at an empty folder, to see what is left there."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_save_then_load_round_trip_and_metrics(recorder, private_tmp):
    table = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, np.nan]}, index=["x", "y"])
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    obj = pd.Series([0.5, 0.25], index=pd.to_datetime(["2024-01-02", "2024-01-03"]))
    paths = save_artifacts(recorder, ARTIFACTS.CROWDING, tables={"t": table}, figures={"f": fig},
                           objects={"o": obj}, metrics={"m": 0.25, "bad": float("nan")})
    assert set(paths) == {f"crowding/{n}" for n in ("t.csv", "f.png", "o.pkl", "summary.json")}
    assert set(recorder.list_artifacts(ARTIFACTS.CROWDING)) == set(paths)
    pd.testing.assert_series_equal(load_artifact(recorder, "o.pkl", ARTIFACTS.CROWDING), obj)
    pd.testing.assert_frame_equal(load_artifact(recorder, "crowding/t.csv"), table)
    assert load_artifact(recorder, "summary.json", ARTIFACTS.CROWDING) == {"m": 0.25, "bad": None}
    local = Path(recorder.get_local_dir()) / "artifacts" / "crowding"
    assert (local / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((local / "summary.json").read_text())["m"] == 0.25
    metrics = recorder.list_metrics()
    assert metrics["crowding.m"] == 0.25 and "crowding.bad" not in metrics
    assert has_artifact(recorder, "o.pkl", ARTIFACTS.CROWDING) and not has_artifact(recorder, "z.pkl", "crowding")
    assert list(private_tmp.iterdir()) == []  # neither the saver nor the loader left anything


def test_a_failure_leaves_no_partial_artifact(recorder, private_tmp):
    with pytest.raises(RuntimeError, match="drawing failed"):
        save_artifacts(recorder, ARTIFACTS.QUANTILE, tables={"t": pd.DataFrame({"a": [1]})},
                       figures={"f": BrokenFigure()}, metrics={"m": 1.0})
    assert recorder.list_artifacts(ARTIFACTS.QUANTILE) == []
    assert "quantile.m" not in recorder.list_metrics()
    with pytest.raises(ValueError, match="name"):
        save_artifacts(recorder, ARTIFACTS.QUANTILE, tables={"a/b": pd.DataFrame()})
    with pytest.raises(TypeError, match="number"):
        save_artifacts(recorder, ARTIFACTS.QUANTILE, metrics={"m": "high"})
    assert recorder.list_artifacts(ARTIFACTS.QUANTILE) == []
    assert list(private_tmp.iterdir()) == []


def test_missing_artifact_names_artifact_recorder_and_writer(recorder, private_tmp):
    class NeedsSignal(AnalysisRecord):
        artifact_path = ARTIFACTS.STYLE_PROFILE

    from qlib.workflow.record_temp import SignalRecord

    NeedsSignal.depend_cls = SignalRecord
    rec = NeedsSignal(recorder)
    with pytest.raises(FileNotFoundError) as err:
        rec.load(PRED_FILE)
    msg = str(err.value)
    assert "pred.pkl" in msg and recorder.id in msg and "SignalRecord" in msg
    with pytest.raises(FileNotFoundError, match="optim/weights.pkl"):
        rec.load("weights.pkl", ARTIFACTS.OPTIM)
    recorder.save_objects(**{PRED_FILE: pd.DataFrame({"score": [1.0]})})
    assert rec.load(PRED_FILE)["score"].tolist() == [1.0]
    assert list(private_tmp.iterdir()) == []


class _Store:
    """A recorder whose store answers with ``error`` (None: an empty, reachable store)."""

    id, experiment_id = "r1", "e1"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def list_artifacts(self, folder=None):
        if self.error is not None:
            raise self.error
        return []

    def download_artifact(self, path, dst_path=None):
        raise self.error if self.error is not None else OSError(f"{path}: no such artifact")


def test_only_not_found_is_missing_an_outage_propagates():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    assert has_artifact(_Store(), "pred.pkl") is False
    assert has_artifact(_Store(MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST)), "pred.pkl") is False
    assert has_artifact(_Store(FileNotFoundError("optim")), "w.pkl", "optim") is False
    outage = ConnectionError("tracking server unreachable")
    with pytest.raises(ConnectionError, match="unreachable"):
        has_artifact(_Store(outage), "pred.pkl")
    with pytest.raises(MlflowException, match="database is locked"):
        has_artifact(_Store(MlflowException("database is locked")), "pred.pkl")
    with pytest.raises(ConnectionError):          # a failing download is not "missing" while the store is down
        load_artifact(_Store(outage), "pred.pkl")
    with pytest.raises(FileNotFoundError, match="'pred.pkl' not found in recorder r1 .experiment e1.: run X"):
        load_artifact(_Store(), "pred.pkl", hint="run X")


def test_one_tracking_store_helper(tmp_path):
    from qlib_ext.artifacts import exp_manager_config, tracking_uri

    cfg = exp_manager_config(tmp_path / "mlruns", "x")
    assert cfg["kwargs"] == {"uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "default_exp_name": "x"}
    assert cfg["class"] == "MLflowExpManager" and (tmp_path / "mlruns").is_dir()
    assert tracking_uri("http://host:5000") == "http://host:5000"
    with pytest.raises(FileNotFoundError, match="mlflow.db"):
        tracking_uri(tmp_path / "mlruns", create=False)
    assert qlib_ext.mlflow_exp_manager(tmp_path / "mlruns", "x")["kwargs"] == cfg["kwargs"]


def test_market_frame_cache_is_keyed_by_dataset_identity(monkeypatch, tmp_path):
    """The same path rewritten in place (a new identity) reloads; the same dataset slices the cached frame."""
    from qlib_ext.analysis import inputs

    calls = []
    days = pd.bdate_range("2024-01-02", periods=5)

    def fake_load(instruments, start):
        calls.append(start)
        idx = pd.MultiIndex.from_product([days, ["SH600000"]], names=["datetime", "instrument"])
        return pd.DataFrame({"close": np.arange(5.0) + len(calls)}, index=idx)

    identity = {"v": (1,)}
    monkeypatch.setattr(inputs, "_load_market", fake_load)
    monkeypatch.setattr(inputs, "data_root", lambda: tmp_path)
    monkeypatch.setattr(inputs, "dataset_identity", lambda root, *names: identity["v"])
    monkeypatch.setattr(inputs, "_MARKET_CACHE", {})
    first = inputs.market_frame(days[0], days[-1])
    again = inputs.market_frame(days[1], days[2])
    assert len(calls) == 1 and again["close"].tolist() == first["close"].tolist()[1:3]
    identity["v"] = (2,)                              # the dataset was rewritten
    assert inputs.market_frame(days[0], days[-1])["close"].iloc[0] == 2.0 and len(calls) == 2
