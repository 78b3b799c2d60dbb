"""The signal stage: one recorded Qlib run (``task_train``) whose ``pred.pkl`` is the rolling signal.

By default the task is ``workflows/ensemble.yaml`` (issue 10): the daily and weekly K-line GRUs and
the minute-factor LightGBM, each retrained yearly by ``qlib_ext.models.Rolling`` (Qlib's
``RollingGen`` windows) and combined by ``qlib_ext.models.Ensemble``.  A job may instead roll the
enhancement template's own model (``signal.workflow: null``): :func:`rolling_task` wraps it in the
same ``Rolling``.  Either way the out-of-sample signal over the whole backtest span lands in
``<out>/signal/pred.pkl`` (and ``label.pkl``) for the backtests and the sweep.

Members the data cannot feed are left out before training (``signal.exclude: [lgb_minute]``, set by
:func:`qlib_ext.pipeline.preflight.make_plan` when minute bars are missing): :func:`exclude_members`
drops them from the ``Ensemble`` and, when a dropped member was the one on the task's own dataset
(the minute-factor LightGBM on ``MinuteFactors``), the first kept member's dataset becomes the task's
(loaded once, and ``SignalRecord`` reads its labels) so that no minute factor is ever loaded.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..schema import LABEL_FILE, PRED_FILE

SIGNAL_RECORDS = [
    {"class": "SignalRecord", "module_path": "qlib.workflow.record_temp",
     "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}},
    {"class": "SigAnaRecord", "module_path": "qlib.workflow.record_temp",
     "kwargs": {"ana_long_short": False, "ann_scaler": 252}},
]


@dataclass(frozen=True)
class Member:
    """One model of the signal: its name, model class, handler config and whether it has its own dataset."""

    name: str
    model: str
    handler: dict
    own_dataset: bool


def _model_name(model: Mapping) -> str:
    """A model config's name: a ``Rolling`` preset's name (``lgb_minute``), else the class of what it rolls."""
    if model.get("class") == "Rolling":
        inner = (model.get("kwargs") or {}).get("model")
        return inner if isinstance(inner, str) else _model_name(inner or {})
    return str(model.get("class", "model"))


def signal_members(task: Mapping) -> list[Member]:
    """The models of a signal task: an ``Ensemble``'s members, else the task's one model."""
    model = task.get("model") or {}
    task_handler = ((task.get("dataset") or {}).get("kwargs") or {}).get("handler") or {}
    if model.get("class") != "Ensemble":
        return [Member(_model_name(model), _model_name(model), copy.deepcopy(dict(task_handler)), False)]
    out = []
    for i, m in enumerate((model.get("kwargs") or {}).get("members") or []):
        ds = m.get("dataset")
        handler = ((ds or {}).get("kwargs") or {}).get("handler") if ds else task_handler
        inner = m.get("model")
        label = inner if isinstance(inner, str) else _model_name(inner or {})
        out.append(Member(str(m.get("name", f"member{i}")), label, copy.deepcopy(dict(handler or {})), ds is not None))
    return out


def exclude_members(task: Mapping, exclude: Sequence[str]) -> dict:
    """``task`` without the ``Ensemble`` members named in ``exclude`` (module docstring).

    ``ValueError`` naming the members when a name is unknown, when every member would go, or when
    the task is a single model (nothing would be left to train).
    """
    out = copy.deepcopy(dict(task))
    drop = list(dict.fromkeys(str(x) for x in exclude or ()))
    if not drop:
        return out
    model = out.get("model") or {}
    names = [m.name for m in signal_members(out)]
    unknown = [x for x in drop if x not in names]
    if unknown:
        raise ValueError(f"signal.exclude: {unknown} are not models of the signal task (its models: {names})")
    if model.get("class") != "Ensemble":
        raise ValueError(f"signal.exclude: {drop} would leave the signal without a model (its only model is "
                         f"{names[0]}); choose another signal.workflow")
    kwargs = model.setdefault("kwargs", {})
    members = kwargs.get("members") or []
    keep = [m for i, m in enumerate(members) if str(m.get("name", f"member{i}")) not in drop]
    if not keep:
        raise ValueError(f"signal.exclude: {drop} would leave the ensemble without a member (members: {names})")
    if all(m.get("dataset") for m in keep):           # nobody left on the task's dataset: the first kept
        keep[0] = dict(keep[0])                        # member's becomes it (loaded once; SignalRecord's labels)
        out["dataset"] = keep[0].pop("dataset")
    kwargs["members"] = keep
    if kwargs.get("weights"):
        kwargs["weights"] = {k: v for k, v in kwargs["weights"].items() if k not in drop}
    return out


def rolling_task(task: Mapping, step: int, rtype: str = "sliding", label_horizon: int = 10) -> dict:
    """``task`` with its model wrapped in ``qlib_ext.models.Rolling`` (yearly retraining when step = 244)."""
    out = copy.deepcopy(dict(task))
    out["model"] = {"class": "Rolling", "module_path": "qlib_ext.models",
                    "kwargs": {"model": out["model"], "step": int(step), "rtype": rtype,
                               "label_horizon": int(label_horizon)}}
    return out


def train_signal(task: Mapping, experiment: str, out_dir: str | Path, recorder_name: str = "signal") -> dict[str, Any]:
    """Train ``task`` as one recorded run (model, dataset, SignalRecord, SigAnaRecord); copy its signal to ``out_dir``."""
    import pandas as pd
    from qlib.model.trainer import task_train

    from ..analysis.base import load_artifact

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task = copy.deepcopy(dict(task))
    task["record"] = copy.deepcopy(task.get("record") or SIGNAL_RECORDS)
    rec = task_train(task, experiment_name=experiment, recorder_name=recorder_name)
    pred = load_artifact(rec, PRED_FILE)
    label = load_artifact(rec, LABEL_FILE)
    pd.to_pickle(pred, out / PRED_FILE)
    pd.to_pickle(label, out / LABEL_FILE)
    metrics = rec.list_metrics()
    days = pred.index.get_level_values("datetime")
    return {"pred": str(out / PRED_FILE), "label": str(out / LABEL_FILE), "recorder_id": rec.id,
            "experiment_id": rec.experiment_id, "first_day": str(days.min().date()), "last_day": str(days.max().date()),
            "ic": float(metrics.get("IC", float("nan"))), "rank_ic": float(metrics.get("Rank IC", float("nan")))}
