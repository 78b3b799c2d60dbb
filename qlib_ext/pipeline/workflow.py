"""qrun workflow templates as plain dicts, overrides on them, and the recorded Qlib runs of the pipeline.

A template is a qrun YAML (Jinja2 first, as ``qrun`` does, but rendered from an explicit context
instead of ``os.environ``).  An override is ``{"dotted.path": value}`` on the rendered dict, e.g.
``{"port_analysis_config.strategy.kwargs.optimizer.constituent_floor": 1.0}``.

:func:`run_backtest` is one recorded Qlib run that reuses a trained signal: ``pred.pkl`` /
``label.pkl`` are logged into a fresh recorder, then the template's records after ``SignalRecord``
(``SigAnaRecord``, ``PortAnaRecord``, ``PerformanceRecord``, ...) and any extra ones run in order,
through Qlib's ``init_instance_by_config`` exactly as ``qlib.model.trainer.task_train`` does.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..schema import ARTIFACTS, LABEL_FILE, PRED_FILE

SIGNAL_RECORDS = ("SignalRecord",)


def find_workflow(name: str | Path) -> Path:
    """A workflow file: an existing path, ``./workflows/<name>.yaml``, or the packaged ``qlib_ext/workflows``."""
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    stem = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    cand = Path("workflows") / stem
    if cand.is_file():
        return cand.resolve()
    from importlib import resources

    packaged = resources.files("qlib_ext") / "workflows" / stem  # shipped in the wheel, when it is
    if packaged.is_file():
        return Path(str(packaged))
    raise FileNotFoundError(f"workflow {str(name)!r} not found as a file, as {cand} (cwd {Path.cwd()}) "
                            "nor in the package (qlib_ext/workflows)")


def render_workflow(path: str | Path, context: Mapping[str, Any] | None = None) -> dict:
    """The qrun YAML at ``path`` rendered with Jinja2 from ``context`` (unset names render empty) and parsed."""
    from jinja2 import Template

    text = Path(path).read_text()
    ctx = {k: ("" if v is None else str(v)) for k, v in dict(context or {}).items()}
    cfg = yaml.safe_load(Template(text).render(ctx))
    if not isinstance(cfg, dict):
        raise ValueError(f"workflow {path}: expected a mapping after rendering, got {type(cfg).__name__}")
    return cfg


def set_path(cfg: dict, dotted: str, value: Any) -> None:
    """Set ``cfg[a][b][c] = value`` for ``dotted = "a.b.c"`` (list items by index); KeyError naming the path."""
    parts = dotted.split(".")
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise KeyError(f"override {dotted!r}: {'.'.join(parts[:i])} is not a mapping")
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    else:
        raise KeyError(f"override {dotted!r}: {'.'.join(parts[:-1])} is not a mapping")


def get_path(cfg: Mapping, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return default
    return node


def apply_overrides(cfg: dict, overrides: Mapping[str, Any] | None) -> dict:
    """A deep copy of ``cfg`` with every ``{dotted path: value}`` of ``overrides`` set."""
    out = copy.deepcopy(cfg)
    for key, value in dict(overrides or {}).items():
        set_path(out, key, value)
    return out


def init_qlib(provider_uri: str | Path, tracking_uri: str, kernels: int | None = None,
              exp_name: str = "qlib_ext", dataset_cache: str | Path | None = None) -> None:
    """``qlib_ext.init`` on a dataset with Qlib's MLflow experiment manager pointed at ``tracking_uri``.

    dataset_cache: a folder for Qlib's own ``SimpleDatasetCache`` (``D.features`` results pickled by a
    hash of instruments, fields, window and freq).  Every backtest of one window asks the same
    exchange quote (all of the universe's prices, volumes and limit flags), the largest single cost
    of a sweep cell; with the cache a process loads it once.  Give each process its own folder
    (Qlib writes the pickle in place) and remove it when done.
    """
    import qlib_ext

    from ..artifacts import exp_manager_config

    kw: dict[str, Any] = {"exp_manager": exp_manager_config(tracking_uri, exp_name)}
    if kernels is not None:
        kw["kernels"] = int(kernels)
    if dataset_cache is not None:
        kw["dataset_cache"] = "SimpleDatasetCache"
        kw["local_cache_path"] = str(Path(dataset_cache).expanduser().resolve())
    qlib_ext.init(provider_uri, **kw)


def ensure_experiment(tracking_uri: str, name: str, artifact_root: str | Path | None = None) -> str:
    """The id of MLflow experiment ``name``, created first when missing, its artifacts under
    ``artifact_root/<name>`` when given (a local store's default is ``./mlruns`` of the current
    directory; a server's is its ``mlflow-artifacts:`` proxy, readable only while it runs -- a folder
    on a shared path keeps the runs readable from the sqlite store after the server stopped)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if artifact_root is not None:
        root = Path(artifact_root).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        location = (root / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # created meanwhile by another process
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _record_name(record: Mapping) -> str:
    return str(record.get("class", ""))


def backtest_records(template: Mapping, extra: Sequence[Mapping] = (), skip: Sequence[str] = SIGNAL_RECORDS) -> list[dict]:
    """The template's ``task.record`` list without the records in ``skip`` (default: SignalRecord, which needs
    the model), with ``extra`` records: one of a class already in the list replaces it in place (so a
    job's benchmark-specific kwargs win over the template's), the others are appended."""
    records = get_path(template, "task.record", []) or []
    if isinstance(records, Mapping):
        records = [records]
    skip = set(skip) | set(SIGNAL_RECORDS)
    out = [copy.deepcopy(dict(r)) for r in records if _record_name(r) not in skip]
    where = {_record_name(r): i for i, r in enumerate(out)}
    for r in extra:
        name = _record_name(r)
        if name in skip:
            continue
        if name in where:
            out[where[name]] = copy.deepcopy(dict(r))
        else:
            where[name] = len(out)
            out.append(copy.deepcopy(dict(r)))
    return out


def run_backtest(template: Mapping, pred: pd.DataFrame | str | Path, label: pd.DataFrame | str | Path | None,
                 experiment: str, recorder_name: str | None = None, records: Sequence[Mapping] | None = None,
                 params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None) -> dict:
    """One recorded Qlib run of the template's backtest on a given signal (module docstring).

    Returns ``{"experiment_id", "recorder_id", "performance": {metric: value}}``; the run is FAILED
    in MLflow (and the exception re-raised) when a record raises.
    """
    from qlib.utils import init_instance_by_config
    from qlib.workflow import R

    pred = pd.read_pickle(pred) if isinstance(pred, (str, Path)) else pred
    label = pd.read_pickle(label) if isinstance(label, (str, Path)) else label
    records = backtest_records(template) if records is None else [dict(r) for r in records]
    with R.start(experiment_name=experiment, recorder_name=recorder_name):
        rec = R.get_recorder()
        objects = {PRED_FILE: pred}
        if label is not None:
            objects[LABEL_FILE] = label
        rec.save_objects(**objects)
        if params:
            rec.log_params(**{k: str(v)[:500] for k, v in params.items()})
        if tags:
            for k, v in tags.items():
                rec.set_tags(**{k: str(v)})
        for record in records:
            r = init_instance_by_config(record, recorder=rec, default_module="qlib.workflow.record_temp")
            r.generate()
        perf = {}
        if any(_record_name(r) == "PerformanceRecord" for r in records):
            table = rec.load_object(f"{ARTIFACTS.PERFORMANCE}/table.pkl")
            perf = {k: float(v) for k, v in table.iloc[0].items()}
        return {"experiment_id": rec.experiment_id, "recorder_id": rec.id, "performance": perf}


def env_context(overrides: Mapping[str, Any] | None = None) -> dict:
    """The ``QLIB_EXT_*`` variables of the environment, updated with ``overrides`` (for :func:`render_workflow`)."""
    ctx = {k: v for k, v in os.environ.items() if k.startswith("QLIB_EXT_")}
    ctx.update({k: v for k, v in dict(overrides or {}).items() if v is not None})
    return ctx
