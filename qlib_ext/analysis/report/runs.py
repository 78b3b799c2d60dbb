"""Finding the runs a page shows: an experiment, a recorder id or a sweep (see :mod:`qlib_ext.analysis.report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...artifacts import exp_manager_config

#: The workflows' default tracking URI (``sqlite:///mlruns.db`` of the current directory).
DEFAULT_URI = "sqlite:///mlruns.db"
#: the pipeline's degrade decisions, read from beside a sweep/runs file (one line each)
DECISIONS_FILE = "decisions.json"


def use_tracking_uri(uri: str | None) -> None:
    """Point Qlib's ``R`` at an MLflow tracking URI (a directory means ``<dir>/mlflow.db`` as in
    :func:`qlib_ext.artifacts.tracking_uri`); None keeps the current one (after ``qlib.init``), else
    :data:`DEFAULT_URI`."""
    from qlib.utils import init_instance_by_config
    from qlib.workflow import QlibRecorder, R

    if uri is None:
        if R.__dict__.get("_provider") is not None:
            return
        uri = DEFAULT_URI
    R.register(QlibRecorder(init_instance_by_config(exp_manager_config(uri, create=False))))


def _sweep_entries(target: Path) -> tuple[list[dict], str | None, Path]:
    if target.is_dir() and (target / "sweep.json").is_file():
        target = target / "sweep.json"
    if target.is_file():
        spec = json.loads(target.read_text())
        cells = spec["cells"] if isinstance(spec, dict) else spec
        return list(cells), (spec.get("tracking_uri") if isinstance(spec, dict) else None), target.parent
    cells = [json.loads(p.read_text()) for p in sorted(target.glob("*/run.json"))]
    if not cells:
        raise FileNotFoundError(f"sweep {target}: no sweep.json and no */run.json")
    return cells, cells[0].get("tracking_uri"), target


def _resolve_uri(uri: str | None, base: Path) -> str | None:
    if uri and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{(base / uri[len('sqlite:///'):]).resolve()}"
    return uri


def resolve_runs(target: str, uri: str | None = None, all_runs: bool = False) -> list[tuple[str, Any]]:
    """``[(label, recorder)]`` of an experiment name, a recorder id or a sweep (module docstring)."""
    from qlib.workflow import R

    path = Path(target)
    if path.exists() and (path.is_dir() or path.suffix == ".json"):
        cells, file_uri, base = _sweep_entries(path)
        use_tracking_uri(uri or _resolve_uri(file_uri, base))
        out = []
        for c in cells:
            if "recorder_id" not in c:
                raise ValueError(f"sweep {target}: cell {c!r} has no recorder_id")
            out.append((str(c.get("cell", c["recorder_id"])), _recorder_by_id(c["recorder_id"], c.get("experiment"))))
        return out
    use_tracking_uri(uri)
    exps = R.list_experiments()
    if target in exps:
        recs = sorted(exps[target].list_recorders().values(), key=lambda r: str(r.info.get("start_time")))
        if not recs:
            raise ValueError(f"experiment {target!r} has no runs")
        chosen = recs if all_runs else recs[-1:]
        return [(f"{target}/{r.info.get('name') or r.id}", r) for r in chosen]
    try:
        rec = _recorder_by_id(target, None)
    except ValueError:
        raise ValueError(f"{target!r} is neither an experiment ({sorted(exps)}), a recorder id nor a sweep file/dir") from None
    return [(str(rec.info.get("name") or rec.id), rec)]


def _recorder_by_id(rid: str, experiment: str | None) -> Any:
    from qlib.workflow import R

    if experiment:
        return R.get_recorder(recorder_id=rid, experiment_name=experiment)
    try:
        run = R.exp_manager.client.get_run(rid)   # the MLflow run names its experiment
    except Exception as exc:  # MLflow raises its own error for an unknown run id
        raise ValueError(f"recorder {rid!r} not found in the tracking store") from exc
    return R.get_recorder(recorder_id=rid, experiment_id=run.info.experiment_id)


def read_decisions(target: str) -> list[str]:
    """The lines of ``decisions.json`` beside a sweep/runs file (or inside a sweep directory), else [].

    Format: a JSON list of strings, or ``{"decisions": [...]}`` (what the pipeline decided it could
    not do on these data: a member left out, a section without its optional input, ...).
    """
    path = Path(target)
    folder = path if path.is_dir() else (path.parent if path.suffix == ".json" and path.exists() else None)
    if folder is None or not (folder / DECISIONS_FILE).is_file():
        return []
    obj = json.loads((folder / DECISIONS_FILE).read_text(encoding="utf-8"))
    lines = obj.get("decisions", []) if isinstance(obj, dict) else obj
    if not isinstance(lines, list):
        raise ValueError(f"{folder / DECISIONS_FILE}: expected a list of lines or {{'decisions': [...]}}")
    return [str(x) for x in lines]
