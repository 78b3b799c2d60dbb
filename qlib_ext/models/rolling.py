"""``Rolling``: rolling retraining as one Qlib ``Model``, so a plain qrun workflow rolls (SPEC section 5).

The report retrains its models yearly over the backtest window 2016-12-30..2024-03-29 (Huatai
2024, p.4).  ``Rolling(model=<config>, step=244)`` wraps any Qlib model: ``fit(dataset)`` cuts the
dataset's segments into windows with Qlib's own ``RollingGen`` (the first window: the dataset's
``train`` / ``valid`` and the first ``step`` sessions of its ``test``; each next one shifted by
``step`` sessions, ``sliding`` or ``expanding`` train), trains one model per window and predicts that
window's test sessions right away; ``predict(dataset, "test")`` returns the windows' predictions
concatenated, one out-of-sample signal that ``SignalRecord`` / ``SigAnaRecord`` / the strategy read
unchanged.

* No look-ahead through the label: ``train`` and ``valid`` of each window end ``label_horizon + 2``
  sessions before its first test day (``RollingGen(trunc_days=...)``), so the label of the last
  sample a window learns from, ``Ref($vwap, -(h+1))``, is known before the first day it predicts.
* Normalisation per window (microsoft/qlib issue 1620): processors with ``fit_start_time`` /
  ``fit_end_time`` are re-fitted on each window's train segment and the handler reprocessed from its
  raw data (loaded once), instead of keeping the statistics of the workflow's first train segment.
* Warm start (``warm_start=True``): when the wrapped model's ``fit`` takes ``init_from`` (our
  ``GRUModel``), each window starts from the previous window's model, so fewer epochs reach the same
  validation IC; models without it (Qlib's ``LGBModel``) train from scratch each window.

Why a ``Model`` rather than Qlib's ``TrainerR`` + ``RecorderCollector`` flow: that flow needs one
recorder per window and a collector step outside qrun, and it rebuilds the handler (reloading all
data) per task; as a ``Model`` the rolling run is one qrun task whose ``SignalRecord`` holds the whole
out-of-sample signal.  The windows are still Qlib's: ``RollingGen`` makes them.
"""

from __future__ import annotations

import copy
import inspect
import time

import pandas as pd
from qlib.log import get_module_logger
from qlib.model.base import Model
from qlib.utils import init_instance_by_config

__all__ = ["Rolling", "check_segments", "refit_processors", "resolve_model_config", "rolling_windows"]

logger = get_module_logger("qlib_ext.models.Rolling")

#: sessions per rolling step for "yearly" retraining (A-share years have 242-244 sessions)
YEAR_SESSIONS = 244


def resolve_model_config(model: dict | str, profile: str | None = None) -> dict:
    """A ``{class, module_path, kwargs}`` config, or a preset name of ``configs/models/<profile>.yaml``."""
    if isinstance(model, dict):
        if "class" not in model:
            raise ValueError(f"model config needs a 'class' key, got keys {sorted(model)}")
        return copy.deepcopy(model)
    if isinstance(model, str):
        from ..config import load_config

        presets = load_config("models", profile or "fast")
        if model not in presets or not isinstance(presets[model], dict):
            raise KeyError(f"model preset {model!r} not in configs/models/{profile or 'fast'}.yaml "
                           f"(known: {sorted(k for k, v in presets.items() if isinstance(v, dict) and 'class' in v)})")
        return resolve_model_config(presets[model])
    raise TypeError(f"model must be a config dict or a preset name, got {type(model).__name__}")


def rolling_windows(segments: dict, step: int = YEAR_SESSIONS, rtype: str = "sliding",
                    trunc_days: int | None = None) -> list[dict[str, tuple[pd.Timestamp, pd.Timestamp]]]:
    """Qlib ``RollingGen`` windows over ``segments`` (train / valid / test), test ends clipped to the test end.

    ``trunc_days``: sessions between the end of train / valid and the first test day (Qlib's
    truncation, applied to the first window and kept by the shifts).  Needs ``qlib.init``.
    """
    from qlib.workflow.task.gen import RollingGen
    from qlib.workflow.task.utils import TimeAdjuster

    if step < 1:
        raise ValueError(f"Rolling: step must be >= 1 session, got {step}")
    if rtype not in (RollingGen.ROLL_SD, RollingGen.ROLL_EX):
        raise ValueError(f"Rolling: rtype must be {RollingGen.ROLL_SD!r} or {RollingGen.ROLL_EX!r}, got {rtype!r}")
    if "train" not in segments or "test" not in segments:
        raise ValueError(f"Rolling: the dataset needs 'train' and 'test' segments, got {sorted(segments)}")
    segs = {k: tuple(v) for k, v in segments.items() if k in ("train", "valid", "test")}
    task = {"model": {}, "dataset": {"class": "DatasetH", "kwargs": {"segments": segs}}}
    gen = RollingGen(step=step, rtype=rtype, ds_extra_mod_func=None, trunc_days=trunc_days)
    ta = TimeAdjuster()
    check_segments(segs, ta.cals, trunc_days or 0)
    test_end = ta.align_time(segs["test"][1], tp_type="end")
    out = []
    for t in gen.generate(task):
        w = {k: (pd.Timestamp(s), pd.Timestamp(e) if e is not None else test_end)
             for k, (s, e) in t["dataset"]["kwargs"]["segments"].items()}
        if w["test"][0] > test_end:
            break
        w["test"] = (w["test"][0], min(w["test"][1], test_end))
        out.append(w)
    return out


def check_segments(segments: dict, calendar, trunc_days: int = 0) -> None:
    """``ValueError`` naming the segment, its date and the calendar's first session when Qlib's ``RollingGen``
    would die with a bare ``assert tp_idx > 0`` (``qlib/workflow/task/utils.py``, ``TimeAdjuster.truncate``):
    a train/valid segment starting on or before the first session, or a test start fewer than
    ``trunc_days`` sessions after it."""
    cal = pd.DatetimeIndex(calendar)
    if len(cal) < 2:
        return
    first = cal[0]
    hint = ("after the features' look-back (`qlib-ext run --preset real` fits the windows to the data; "
            "`qlib-ext run --check` prints them)")
    for name, seg in segments.items():
        if name != "test" and seg[0] is not None and pd.Timestamp(seg[0]) <= first:
            raise ValueError(f"Rolling: the {name} segment starts {pd.Timestamp(seg[0]).date()}, on or before the "
                             f"dataset's first session {first.date()}; Qlib's RollingGen needs a session before it: "
                             f"start {name} on or after {cal[1].date()}, {hint}")
    test = segments.get("test")
    if test is not None and trunc_days and int(cal.searchsorted(pd.Timestamp(test[0]))) - trunc_days <= 0:
        raise ValueError(f"Rolling: the test segment starts {pd.Timestamp(test[0]).date()}, fewer than the "
                         f"{trunc_days}-session label gap after the dataset's first session {first.date()}: start it "
                         f"on or after {cal[min(trunc_days + 1, len(cal) - 1)].date()}, {hint}")


def refit_processors(handler, start, end) -> bool:
    """Re-fit the handler's ``fit_start_time``/``fit_end_time`` processors on [start, end]; reprocess.

    Returns False (nothing done) when no processor has a fit window or it is already [start, end].
    """
    procs = [p for p in handler.get_all_processors() if hasattr(p, "fit_start_time")]
    if not procs or all((pd.Timestamp(p.fit_start_time), pd.Timestamp(p.fit_end_time))
                        == (pd.Timestamp(start), pd.Timestamp(end)) for p in procs):
        return False
    if not hasattr(handler, "_data"):
        raise RuntimeError(f"Rolling: {type(handler).__name__} dropped its raw data (drop_raw=True), so its "
                           "processors cannot be re-fitted per window; use drop_raw=False")
    for p in procs:
        p.fit_start_time, p.fit_end_time = start, end
    handler.process_data(with_fit=True)
    return True


class Rolling(Model):
    """Train ``model`` per rolling window; ``predict`` returns the concatenated out-of-sample signal.

    ``model``: a ``{class, module_path, kwargs}`` config or a preset name of
    ``configs/models/<profile>.yaml`` (``profile`` default ``fast``).  ``step``: sessions per window
    (244 = yearly); ``rtype``: ``sliding`` (fixed-length train) or ``expanding``; ``label_horizon``:
    h of the label (train / valid end h + 2 sessions before each test start unless ``trunc_days``
    says otherwise); ``warm_start``: start each window from the previous model when its ``fit`` takes
    ``init_from``, with ``warm_overrides`` (e.g. ``{n_epochs: 2}``) merged into its kwargs for the
    warm-started windows; ``refit``: re-fit fitted processors per window on its train segment.

    After ``fit``: ``windows`` (the segments of each window), ``predictions`` (the out-of-sample
    scores, a Series indexed (datetime, instrument)), ``window_of`` (the window number of each
    prediction), ``timings`` (seconds per window), ``model`` (the last window's fitted model).
    """

    def __init__(self, model: dict | str, step: int = YEAR_SESSIONS, rtype: str = "sliding",
                 label_horizon: int = 10, trunc_days: int | None = None, warm_start: bool = True,
                 refit: bool = True, warm_overrides: dict | None = None, profile: str | None = None):
        if label_horizon < 1:
            raise ValueError(f"Rolling: label_horizon must be >= 1, got {label_horizon}")
        self.model_config = resolve_model_config(model, profile)
        self.step, self.rtype = int(step), rtype
        self.label_horizon = int(label_horizon)
        self.trunc_days = int(trunc_days) if trunc_days is not None else self.label_horizon + 2
        self.warm_start, self.refit = warm_start, refit
        self.warm_overrides = dict(warm_overrides or {})
        self.windows: list[dict] = []
        self.predictions: pd.Series | None = None
        self.window_of: pd.Series | None = None
        self.timings: list[float] = []
        self.model = None

    def fit(self, dataset, evals_result: dict | None = None):
        """One model per window of the dataset's segments; each predicts its own test sessions."""
        self.windows = rolling_windows(dataset.segments, self.step, self.rtype, self.trunc_days)
        if not self.windows:
            raise ValueError(f"Rolling: no window in the test segment {dataset.segments['test']}")
        preds, which, self.timings, prev = [], [], [], None
        for k, seg in enumerate(self.windows):
            t0 = time.time()
            refitted = self.refit and refit_processors(dataset.handler, *seg["train"])
            ds = window_dataset(dataset, seg, refitted)
            warm = self.warm_start and prev is not None and _takes_init_from(self.model_config)
            conf = copy.deepcopy(self.model_config)
            if warm and self.warm_overrides:
                conf.setdefault("kwargs", {}).update(copy.deepcopy(self.warm_overrides))
            model = init_instance_by_config(conf)
            kwargs = {"init_from": prev} if warm else {}
            res: dict = {}
            model.fit(ds, evals_result=res, **kwargs)
            pred = _as_series(model.predict(ds, segment="test")).sort_index()
            pred = pred.loc[seg["test"][0]:seg["test"][1]]
            preds.append(pred)
            which.append(pd.Series(k, index=pred.index, dtype="int32"))
            if evals_result is not None:
                evals_result[f"window{k}"] = res
            self.timings.append(time.time() - t0)
            logger.info(f"Rolling window {k + 1}/{len(self.windows)}: train {_fmt(seg['train'])}, "
                        f"valid {_fmt(seg.get('valid'))}, test {_fmt(seg['test'])}: {len(pred)} predictions, "
                        f"{self.timings[-1]:.1f}s{' (warm start)' if kwargs else ''}"
                        f"{' (processors re-fitted)' if refitted else ''}")
            prev = model
        self.model = prev
        self.predictions = pd.concat(preds).sort_index()
        self.window_of = pd.concat(which).reindex(self.predictions.index)
        if self.predictions.index.duplicated().any():
            raise RuntimeError("Rolling: windows predicted the same (datetime, instrument) twice")
        return self

    def predict(self, dataset, segment: str | slice = "test") -> pd.Series:
        """The out-of-sample predictions within ``segment``'s dates (only the rolled test span has any)."""
        if self.predictions is None:
            raise ValueError("Rolling is not fitted yet")
        start, end = (segment.start, segment.stop) if isinstance(segment, slice) else dataset.segments[segment]
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        first, last = self.windows[0]["test"][0], self.windows[-1]["test"][1]
        if start < first or end > last:
            raise ValueError(f"Rolling predicts out of sample only, over {first.date()}..{last.date()}; "
                             f"segment {segment!r} spans {start.date()}..{end.date()}")
        return self.predictions.loc[start:end]


def window_dataset(dataset, segments: dict, refitted: bool = False):
    """A shallow copy of ``dataset`` with the window's segments (same handler, data loaded once).

    A sequence dataset (``qlib_ext.handlers.SequenceDataset``) builds its panel on the original
    first, so that every window shares it; after a re-fit the panel is rebuilt from the new data.
    """
    if hasattr(type(dataset), "panel"):
        if refitted:
            dataset._panel = None
        dataset.panel  # noqa: B018 - built once here, shared by the copies
    ds = copy.copy(dataset)
    ds.segments = {k: tuple(v) for k, v in segments.items()}
    return ds


def _takes_init_from(config: dict) -> bool:
    """Whether the configured model class's ``fit`` accepts ``init_from`` (a warm start)."""
    from qlib.utils import get_callable_kwargs

    klass, _ = get_callable_kwargs(config)
    return "init_from" in inspect.signature(klass.fit).parameters


def _as_series(pred) -> pd.Series:
    if isinstance(pred, pd.DataFrame):
        pred = pred.iloc[:, 0]
    return pred.rename("score")


def _fmt(seg) -> str:
    return "-" if seg is None else f"{pd.Timestamp(seg[0]).date()}..{pd.Timestamp(seg[1]).date()}"
