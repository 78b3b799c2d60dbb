"""The signal stage: rolling retraining of a qrun task with Qlib's own machinery, one ``pred.pkl`` out.

``RollingGen`` (``qlib.workflow.task.gen``) cuts the test span into ``step``-session segments and
shifts train/valid with it (expanding train by default; ``trunc_days`` sessions are cut from the end
of train and valid so that their labels never reach into the test segment); ``TrainerR`` trains each
task as a recorded Qlib run (``task_train``: model, dataset, ``SignalRecord``).  The out-of-sample
predictions of the segments are concatenated into one signal, which is also logged with its label as
one more recorded run (``SigAnaRecord``: IC, rank IC) so the whole signal is a Qlib run too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import LABEL_FILE, PRED_FILE
from .workflow import get_path


def rolling_tasks(task: Mapping, test: Sequence[str], step: int, rtype: str = "expanding",
                  trunc_days: int | None = 12) -> list[dict]:
    """The rolling task list of ``task`` over ``test = (start, end)`` (Qlib's ``RollingGen``)."""
    from qlib.workflow.task.gen import RollingGen

    base = copy.deepcopy(dict(task))
    base["dataset"]["kwargs"]["segments"]["test"] = [str(test[0]), str(test[1])]
    handler = base["dataset"]["kwargs"]["handler"]
    if isinstance(handler, Mapping) and "kwargs" in handler:  # handler_mod extends end_time per task
        handler["kwargs"]["end_time"] = str(test[1])
    kind = {"expanding": RollingGen.ROLL_EX, "sliding": RollingGen.ROLL_SD}[rtype]
    return RollingGen(step=int(step), rtype=kind, trunc_days=trunc_days).generate(base)


def _segment(frame: pd.DataFrame, seg: Sequence) -> pd.DataFrame:
    """The rows of ``frame`` inside the test segment ``seg`` (Qlib leaves the last one open: end None)."""
    dt = frame.index.get_level_values("datetime")
    keep = dt >= pd.Timestamp(seg[0])
    if seg[1] is not None:
        keep &= dt <= pd.Timestamp(seg[1])
    return frame[keep]


def train_rolling(task: Mapping, test: Sequence[str], step: int, experiment: str, out_dir: str | Path,
                  rtype: str = "expanding", trunc_days: int | None = 12, progress=print) -> dict[str, Any]:
    """Train the rolling tasks, write ``out_dir/pred.pkl`` and ``label.pkl``; returns paths and recorder ids."""
    from qlib.model.trainer import task_train
    from qlib.workflow import R

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = rolling_tasks(task, test, step, rtype, trunc_days)
    for t in tasks:
        t["record"] = [{"class": "SignalRecord", "module_path": "qlib.workflow.record_temp",
                        "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}}]
    preds, labels, ids = [], [], []
    for i, t in enumerate(tasks, 1):
        seg = get_path(t, "dataset.kwargs.segments.test")
        progress(f"  rolling task {i}/{len(tasks)}: train {list(map(str, get_path(t, 'dataset.kwargs.segments.train')))}"
                 f" test {list(map(str, seg))}")
        rec = task_train(t, experiment_name=experiment)
        preds.append(_segment(rec.load_object(PRED_FILE), seg))
        labels.append(_segment(rec.load_object(LABEL_FILE), seg))
        ids.append(rec.id)
    pred = pd.concat(preds).sort_index()
    label = pd.concat(labels).sort_index()
    pred = pred[~pred.index.duplicated(keep="last")]
    label = label[~label.index.duplicated(keep="last")]
    pred.to_pickle(out / PRED_FILE)
    label.to_pickle(out / LABEL_FILE)
    with R.start(experiment_name=experiment, recorder_name="rolling_signal"):
        rec = R.get_recorder()
        rec.save_objects(**{PRED_FILE: pred, LABEL_FILE: label})
        rec.set_tags(rolling_recorders=",".join(ids))
        from qlib.workflow.record_temp import SigAnaRecord

        SigAnaRecord(rec, ana_long_short=False, ann_scaler=252).generate()
        signal_id = rec.id
    metrics = rec.list_metrics()  # after the run ended: Qlib logs metrics asynchronously
    return {"pred": str(out / PRED_FILE), "label": str(out / LABEL_FILE), "recorder_id": signal_id,
            "rolling_recorders": ids, "n_tasks": len(tasks),
            "ic": float(metrics.get("IC", float("nan"))), "rank_ic": float(metrics.get("Rank IC", metrics.get("Rank_IC", float("nan"))))}
