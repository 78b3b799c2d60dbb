"""The signal stage: one recorded Qlib run (``task_train``) whose ``pred.pkl`` is the rolling signal.

By default the task is ``workflows/ensemble.yaml`` (issue 10): the daily and weekly K-line GRUs and
the minute-factor LightGBM, each retrained yearly by ``qlib_ext.models.Rolling`` (Qlib's
``RollingGen`` windows) and combined by ``qlib_ext.models.Ensemble``.  A job may instead roll the
enhancement template's own model (``signal.workflow: null``): :func:`rolling_task` wraps it in the
same ``Rolling``.  Either way the out-of-sample signal over the whole backtest span lands in
``<out>/signal/pred.pkl`` (and ``label.pkl``) for the backtests and the sweep.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..schema import LABEL_FILE, PRED_FILE

SIGNAL_RECORDS = [
    {"class": "SignalRecord", "module_path": "qlib.workflow.record_temp",
     "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}},
    {"class": "SigAnaRecord", "module_path": "qlib.workflow.record_temp",
     "kwargs": {"ana_long_short": False, "ann_scaler": 252}},
]


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
