"""One base for the analysis recorders: one artifact loader, one artifact saver (SPEC section 7).

In the manner of Qlib's ``ACRecordTemp``: a recorder names its folder (``artifact_path``, an
:data:`qlib_ext.schema.ARTIFACTS` constant) and the record it needs (``depend_cls``); it reads its
inputs with :meth:`AnalysisRecord.load` and writes everything with :func:`save_artifacts`.

* **Loader.**  Qlib's ``Recorder.load_object`` downloads each artifact into a fresh folder of the
  system temp dir and never removes it (ten enhancement runs left 99 folders, 165 MB).
  :func:`load_artifact` downloads into a temporary folder it removes, reads the file by its
  extension (``.pkl`` pickle, ``.csv`` CSV with the first column as index, ``.json``), and raises
  ``FileNotFoundError`` naming the artifact, the recorder and the record that writes it.
* **Saver.**  :func:`save_artifacts` writes tables (``<name>.csv``), figures (``<name>.png``),
  objects (``<name>.pkl``) and ``summary.json`` (the metrics; NaN as null) into a temporary folder
  first and logs the folder in one call, so a failure while building or drawing leaves no partial
  artifact.  Metrics are then logged to MLflow as ``<artifact_path>.<name>`` (finite values only).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from qlib.log import get_module_logger
from qlib.workflow.record_temp import RecordTemp

logger = get_module_logger("qlib_ext.analysis", logging.INFO)

SUMMARY_FILE = "summary.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def artifact_name(artifact_path: str | None, name: str) -> str:
    """``<artifact_path>/<name>`` (or ``name`` alone when ``artifact_path`` is empty)."""
    return f"{artifact_path.strip('/')}/{name}" if artifact_path else name


def _recorder_label(recorder: Any) -> str:
    exp = getattr(recorder, "experiment_id", None)
    return f"recorder {getattr(recorder, 'id', recorder)!s}" + (f" (experiment {exp})" if exp else "")


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, index_col=0)
    if suffix == ".json":
        return json.loads(path.read_text())
    return pd.read_pickle(path)


def load_artifact(recorder: Any, name: str, artifact_path: str | None = None, hint: str = "") -> Any:
    """Read artifact ``<artifact_path>/<name>`` of ``recorder`` through a temporary folder it removes.

    artifact_path: the artifact's folder (e.g. ``ARTIFACTS.OPTIM``); None: ``name`` is the full path
    from the run's artifact root (e.g. ``PRED_FILE``, ``PORT_REPORT_FILE``).  hint: what writes the
    artifact, added to the error.  Raises ``FileNotFoundError`` naming the artifact and the recorder.
    """
    path = artifact_name(artifact_path, name)
    with tempfile.TemporaryDirectory(prefix="qlib_ext_load_") as tmp:
        try:
            local = recorder.download_artifact(path, dst_path=tmp)
        except Exception as exc:  # MLflow raises its own errors (MlflowException, OSError) for a missing path
            raise FileNotFoundError(f"artifact {path!r} not found in {_recorder_label(recorder)}"
                                    + (f": {hint}" if hint else "")) from exc
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"artifact {path!r} of {_recorder_label(recorder)} is a folder, not a file")
        return _read(local)


def has_artifact(recorder: Any, name: str, artifact_path: str | None = None) -> bool:
    """Whether ``<artifact_path>/<name>`` exists in ``recorder`` (listing only, nothing downloaded)."""
    path = artifact_name(artifact_path, name)
    folder = path.rsplit("/", 1)[0] if "/" in path else None
    try:
        return path in recorder.list_artifacts(folder)
    except Exception:  # an unreadable store lists nothing
        return False


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
    _close(figures.values())
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


def _close(figures) -> None:
    """Close pyplot-managed figures (Figures built without pyplot need nothing)."""
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        for fig in figures:
            plt.close(fig)


class AnalysisRecord(RecordTemp):
    """Base of our recorders: ``artifact_path`` (an ``ARTIFACTS.*`` folder), ``depend_cls``, one loader.

    Subclasses implement ``generate()``: load inputs with :meth:`load`, compute with a pure function,
    draw, and end with :meth:`save_artifacts`.  ``list()`` returns the artifact names (without folder).
    """

    artifact_path: str | None = None
    depend_cls = None

    def load(self, name: str, artifact_path: str | None = None, hint: str = "") -> Any:  # type: ignore[override]
        """Artifact ``<artifact_path>/<name>`` of this run (None: ``name`` is the full path), see :func:`load_artifact`."""
        hint = hint or (f"run {self.depend_cls.__name__} before {type(self).__name__}" if self.depend_cls else "")
        return load_artifact(self.recorder, name, artifact_path, hint=hint)

    def has(self, name: str, artifact_path: str | None = None) -> bool:
        """Whether the artifact exists (see :func:`has_artifact`)."""
        return has_artifact(self.recorder, name, artifact_path)

    def save_artifacts(self, tables=None, figures=None, objects=None, metrics=None) -> list[str]:
        """:func:`save_artifacts` into this recorder under ``artifact_path``."""
        return save_artifacts(self.recorder, self.artifact_path, tables=tables, figures=figures,
                              objects=objects, metrics=metrics)

    def skip(self, reason: str) -> None:
        """Log why an optional part is left out (the recorder goes on)."""
        logger.info(f"{type(self).__name__}: {reason}")
