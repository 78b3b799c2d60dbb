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
:func:`signal_members` lists a task's models and :func:`handler_needs` what each reads (look-back
in sessions, day fields, minute data), from the handler's keywords and its signature's defaults.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..schema import ALL_SHARE, LABEL_FILE, PRED_FILE

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


@dataclass(frozen=True)
class MemberNeeds:
    """What one model of the signal reads: look-back (sessions, and why), day fields (field -> purpose), minute data."""

    member: Member
    handler: str
    lookback: int
    why: str
    fields: dict
    minute: bool
    instruments: Any
    label_horizon: int = 10


def handler_needs(member: Member) -> MemberNeeds:
    """The look-back, day fields and minute data that ``member``'s handler reads (defaults from its signature)."""
    from qlib.utils import get_callable_kwargs

    from ..factors import factor_expressions, forward_return_label
    from ..factors.price_volume import resolve_factor
    from ..factors.requirements import expression_fields
    from ..handlers import DailyKline, MinuteFactors, PriceVolume
    from ..processors.neutralize import NEUTRALIZE_PRESETS

    conf = member.handler
    if not conf or "class" not in conf:
        return MemberNeeds(member, "?", 1, "", {}, False, ALL_SHARE)
    klass, kwargs = get_callable_kwargs(conf, default_module="qlib_ext.handlers")
    params = {k: p.default for c in reversed(klass.__mro__) if "__init__" in c.__dict__
              for k, p in inspect.signature(c.__init__).parameters.items() if p.default is not inspect.Parameter.empty}

    def arg(name: str) -> Any:
        return kwargs.get(name, params.get(name))

    name = klass.__name__
    exprs: dict[str, str] = {}
    lookback, why, minute = 1, "", False
    price = arg("label_price") or arg("vwap") or "$vwap"
    if arg("label_horizon") is not None:
        exprs["label"] = forward_return_label(int(arg("label_horizon")), price=price)
    if issubclass(klass, MinuteFactors):
        wins = [int(w) for w in (arg("windows") or (1,))]
        lookback, why, minute = max(wins) - 1, f"{name} {max(wins)}-day means", True
    elif issubclass(klass, DailyKline):
        bar = int(getattr(klass, "bar_sessions", 1))
        steps = int(arg("n_weeks") if bar > 1 and arg("n_weeks") is not None else arg("window") or 40)
        lookback = steps * bar + 5
        why = f"{name} {steps} bars of {bar} session(s)"
        for f in ("open", "high", "low", "close", "volume"):
            exprs[f"K-line {f}"] = f"${f}"
        exprs["K-line vwap"] = str(arg("vwap") or "$vwap")
    elif issubclass(klass, PriceVolume):
        ex, names = factor_expressions(arg("factors"))
        exprs.update({f"factor {n}": e for n, e in zip(names, ex)})
    neut = arg("neutralize")
    against = NEUTRALIZE_PRESETS.get(neut, ()) if isinstance(neut, str) else list(neut or ())
    for a in against:
        exprs[f"Neutralize {a}"] = "$industry" if a == "industry" else resolve_factor(a)
    for use, e in exprs.items():
        lb = expression_lookback(e)
        if lb > lookback:
            lookback, why = lb, f"{name} {use}: {e}"
    flds: dict[str, str] = {}
    for use, e in exprs.items():
        for f in expression_fields(e):
            flds.setdefault(f, f"{member.name}: {use}")
    return MemberNeeds(member, name, max(1, int(lookback)), why, flds, minute, arg("instruments") or ALL_SHARE,
                       int(arg("label_horizon") or 10))


def expression_lookback(expression: str) -> int:
    """Sessions a Qlib expression reads before its day (Qlib's ``get_extended_window_size``), e.g. 20 for
    ``$close/Ref($close, 20) - 1``."""
    from qlib.data.base import Feature, PFeature  # noqa: F401 - names of the parsed expression
    from qlib.data.ops import Operators, OpsList
    from qlib.utils import parse_field

    try:
        Operators.Ref  # noqa: B018 - registered by qlib.init; register Qlib's own ops when it has not run
    except AttributeError:
        Operators.register(OpsList)
    try:
        obj = eval(parse_field(expression), {"Operators": Operators, "Feature": Feature, "PFeature": PFeature})
        return int(obj.get_extended_window_size()[0])
    except Exception:  # noqa: BLE001 - an expression of custom ops: its look-back is not known here
        return 0


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

    from ..artifacts import load_artifact

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
