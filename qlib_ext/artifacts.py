"""Recorder artifacts: one saver, one loader, one existence check (below ``strategy/`` and ``analysis/``).

A Qlib recorder (``qlib.workflow.recorder.Recorder``, duck-typed: ``list_artifacts``,
``download_artifact``, ``save_objects``) stores files under folders such as ``ARTIFACTS.OPTIM``.

* **Loader.**  Qlib's ``Recorder.load_object`` downloads each artifact into a fresh folder of the
  system temp dir and never removes it (ten enhancement runs left 99 folders, 165 MB).
  :func:`load_artifact` downloads into a temporary folder it removes, reads the file by its
  extension (``.pkl`` pickle, ``.csv`` CSV with the first column as index, ``.json``), and raises
  ``FileNotFoundError`` naming the artifact, the recorder and what writes it -- only when the store
  says the artifact is absent; an unreachable store raises its own error.
* **Existence.**  :func:`has_artifact` lists the artifact's folder: False when the listing succeeds
  without it (or the store says "does not exist"); any other failure (an MLflow outage, a permission
  error) propagates, so an outage is never read as "missing".
* **Saver.**  :func:`save_artifacts` writes tables (``<name>.csv``), figures (``<name>.png``),
  objects (``<name>.pkl``) and ``summary.json`` (the metrics; NaN as null) into a temporary folder
  first and logs the folder in one call, so a failure while building or drawing leaves no partial
  artifact.  Metrics are then logged to MLflow as ``<artifact_path>.<name>`` (finite values only).
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

SUMMARY_FILE = "summary.json"
#: table (``missing.csv``) of the optional inputs a recorder had to leave out: index ``input``, column ``effect``
MISSING_TABLE = "missing"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: MLflow's error code for an absent run or artifact (``mlflow.protos.databricks_pb2``).
_NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def artifact_name(artifact_path: str | None, name: str) -> str:
    """``<artifact_path>/<name>`` (or ``name`` alone when ``artifact_path`` is empty)."""
    return f"{artifact_path.strip('/')}/{name}" if artifact_path else name


def recorder_label(recorder: Any) -> str:
    """``recorder <id> (experiment <id>)`` for error messages."""
    exp = getattr(recorder, "experiment_id", None)
    return f"recorder {getattr(recorder, 'id', recorder)!s}" + (f" (experiment {exp})" if exp else "")


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says "this artifact (or run) does not exist", as opposed to an unreachable store."""
    if isinstance(exc, FileNotFoundError):
        return True
    code = getattr(exc, "error_code", None)
    return isinstance(code, str) and code in _NOT_FOUND_CODES


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, index_col=0)
    if suffix == ".json":
        return json.loads(path.read_text())
    return pd.read_pickle(path)


def has_artifact(recorder: Any, name: str, artifact_path: str | None = None) -> bool:
    """Whether ``<artifact_path>/<name>`` exists in ``recorder`` (listing only, nothing downloaded).

    False only when the store answers without it; an outage or permission error propagates.
    """
    path = artifact_name(artifact_path, name)
    folder = path.rsplit("/", 1)[0] if "/" in path else None
    try:
        listed = recorder.list_artifacts(folder)
    except Exception as exc:  # MLflow raises MlflowException / OSError; only "not found" means absent
        if is_not_found(exc):
            return False
        raise
    return path in listed


def load_artifact(recorder: Any, name: str, artifact_path: str | None = None, hint: str = "") -> Any:
    """Read artifact ``<artifact_path>/<name>`` of ``recorder`` through a temporary folder it removes.

    artifact_path: the artifact's folder (e.g. ``ARTIFACTS.OPTIM``); None: ``name`` is the full path
    from the run's artifact root (e.g. ``PRED_FILE``, ``PORT_REPORT_FILE``).  hint: what writes the
    artifact, added to the error.  Raises ``FileNotFoundError`` naming the artifact and the recorder
    when it is absent; a failure of the store itself propagates unchanged.
    """
    path = artifact_name(artifact_path, name)
    with tempfile.TemporaryDirectory(prefix="qlib_ext_load_") as tmp:
        try:
            local = recorder.download_artifact(path, dst_path=tmp)
        except Exception as exc:  # MLflow's errors: tell "absent" from "store unreachable" by listing
            if is_not_found(exc) or not has_artifact(recorder, path):
                raise FileNotFoundError(f"artifact {path!r} not found in {recorder_label(recorder)}"
                                        + (f": {hint}" if hint else "")) from exc
            raise
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"artifact {path!r} of {recorder_label(recorder)} is a folder, not a file")
        return _read(local)


def _check_names(kind: str, items: Mapping[str, Any]) -> None:
    for name in items:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{kind} name {name!r}: use letters, digits, '_', '-', '.'")


def _metric(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metric value {value!r} is not a number") from exc
    return v if math.isfinite(v) else None


def save_artifacts(recorder: Any, artifact_path: str, tables: Mapping[str, pd.DataFrame] | None = None,
                   figures: Mapping[str, Any] | None = None, objects: Mapping[str, Any] | None = None,
                   metrics: Mapping[str, float] | None = None) -> list[str]:
    """Write every artifact into a temporary folder, then log it under ``artifact_path`` in one go.

    tables -> ``<name>.csv``; figures (matplotlib Figures) -> ``<name>.png``; objects -> ``<name>.pkl``;
    ``summary.json`` = ``{name: metric}`` (non-finite as null).  Finite metrics are also logged to MLflow
    as ``<artifact_path>.<name>``.  Returns the artifact paths written.
    """
    if not artifact_path:
        raise ValueError("save_artifacts needs an artifact_path (an ARTIFACTS.* folder)")
    tables, figures, objects = dict(tables or {}), dict(figures or {}), dict(objects or {})
    metrics = {k: _metric(v) for k, v in (metrics or {}).items()}
    for kind, items in (("table", tables), ("figure", figures), ("object", objects), ("metric", metrics)):
        _check_names(kind, items)
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="qlib_ext_save_") as tmp:
        folder = Path(tmp)
        for name, table in tables.items():
            if not isinstance(table, (pd.DataFrame, pd.Series)):
                raise TypeError(f"table {name!r}: expected a DataFrame or Series, got {type(table).__name__}")
            table.to_csv(folder / f"{name}.csv")
            written.append(f"{name}.csv")
        for name, fig in figures.items():
            fig.savefig(folder / f"{name}.png", dpi=110, format="png")
            written.append(f"{name}.png")
        for name, obj in objects.items():
            pd.to_pickle(obj, folder / f"{name}.pkl")
            written.append(f"{name}.pkl")
        (folder / SUMMARY_FILE).write_text(json.dumps(metrics, indent=1, sort_keys=True))
        written.append(SUMMARY_FILE)
        recorder.save_objects(local_path=str(folder), artifact_path=artifact_path)
    close_figures(figures.values())
    finite = {f"{artifact_path}.{k}": v for k, v in metrics.items() if v is not None}
    if finite:
        log_metrics_now(recorder, finite)
    return [artifact_name(artifact_path, n) for n in written]


def log_metrics_now(recorder: Any, metrics: Mapping[str, float]) -> None:
    """Log metrics in one synchronous MLflow batch (Qlib's ``log_metrics`` is queued on a thread while
    the run is active, so a later recorder of the same run would not see them yet)."""
    client, run_id = getattr(recorder, "client", None), getattr(recorder, "id", None)
    if client is None or run_id is None or not hasattr(client, "log_batch"):
        recorder.log_metrics(**metrics)
        return
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])


def close_figures(figures: Iterable[Any]) -> None:
    """Close pyplot-managed figures (Figures built without pyplot need nothing)."""
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        for fig in figures:
            plt.close(fig)


# ------------------------------------------------------------------------------ the tracking store
def tracking_uri(target: str | Path, create: bool = True) -> str:
    """MLflow tracking URI of ``target``: a URI (``sqlite:///...``, ``http://...``) as given, a
    directory as ``sqlite:///<dir>/mlflow.db`` (MLflow 3 rejects Qlib's file store).

    create: make the directory when absent; else ``FileNotFoundError`` naming the store when neither
    the directory's ``mlflow.db`` nor a given ``.db`` file exists.
    """
    text = str(target)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path / 'mlflow.db'}"
    db = path / "mlflow.db" if path.is_dir() else path
    if not db.is_file():
        raise FileNotFoundError(f"MLflow store {db} not found (give sqlite:///... or a directory holding mlflow.db)")
    return f"sqlite:///{db}"


def exp_manager_config(target: str | Path = "mlruns", exp_name: str = "qlib_ext", create: bool = True) -> dict:
    """Qlib's ``exp_manager`` config (``{class, module_path, kwargs}``) for :func:`tracking_uri` of ``target``."""
    return {"class": "MLflowExpManager", "module_path": "qlib.workflow.expm",
            "kwargs": {"uri": tracking_uri(target, create), "default_exp_name": exp_name}}


def active_recorder() -> Any:
    """Qlib's active recorder (inside ``R.start`` or a qrun task), else None (also before ``qlib.init``)."""
    try:
        from qlib.workflow import R

        exp = R.exp_manager.active_experiment
    except Exception:  # noqa: BLE001 - Qlib not initialised with an exp_manager: no recorder
        return None
    return None if exp is None else exp.active_recorder
