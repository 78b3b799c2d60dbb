"""``PriceVolume``: the named daily price-volume factors and the vwap forward-return label, as a handler.

A ``DataHandlerLP`` in the manner of Qlib's ``Alpha158`` (``qlib/contrib/data/handler.py``): the
features are the expressions of :data:`qlib_ext.factors.PRICE_VOLUME_FACTORS` (all of them, or the
names given in ``factors``; the column names are the factor names), the label is
:func:`qlib_ext.factors.forward_return_label` of ``label_horizon`` sessions (``LABEL0``), and the
label's cross-sectional neutralisation is a keyword: ``neutralize="industry_size"`` (the report's,
p.8), ``"strict"`` (industry + size + ret_10 + std_10d + turn_10d, figure 20), a list of exposures
(``Neutralize``'s ``against``, e.g. ``["ret_10", "std_10d"]``: no industry, an intercept) or None,
through :class:`qlib_ext.processors.Neutralize` (which z-scores the residual).

Fields: the default factors read ``$close $high $low $volume $turnover $mcap``, the label ``$vwap``, the
``industry_size`` neutralisation ``$industry $mcap``.  At construction the handler checks that the
dataset has each of them (a listing of the feature folders) and raises ``MissingFieldsError`` naming
every missing field, what reads it, the ``qlib-ext data import ... --augment`` command and the
keywords that run without it.  On a plain Qlib dataset (no vwap, turnover, mcap, industry)::

    PriceVolume(..., on_missing="drop", label_price="$close", neutralize=None)

leaves out ``turn_10d``, ``turn_20d`` and ``size`` (logged), labels with the close-to-close forward
return, and z-scores the label per day instead.  After loading, a feature (or a label that the span
could know) with no finite value at all is an error too, never a column that a later ``Fillna`` turns
into 0s; and a learn processor that leaves no labelled row (e.g. ``Neutralize`` with fewer names a
day than its ``min_names``) is an error naming it, not Qlib's "Empty data from dataset".

Processors: ``infer_processors`` default to none, ``learn_processors`` to ``DropnaLabel`` and, without
neutralisation, ``CSZScoreNorm`` of the label (Alpha158's defaults); the ``Neutralize`` step is put
first in the learn list whatever list is given.  ``fit_start_time``/``fit_end_time`` reach every
processor that takes them (Qlib's ``check_transform_proc``).  YAML::

    handler:
      class: PriceVolume
      module_path: qlib_ext.handlers
      kwargs: {instruments: csiall, start_time: 2016-01-04, end_time: 2024-03-28,
               fit_start_time: 2016-01-04, fit_end_time: 2020-12-15, neutralize: industry_size}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qlib.contrib.data.handler import check_transform_proc
from qlib.data.dataset.handler import DataHandlerLP

from ..factors import factor_expressions, forward_return_label
from ..schema import UNIVERSE
from .checks import check_loaded, neutralize_kwargs, require_fields

__all__ = ["LABEL_NAME", "NEUTRALIZE", "PriceVolume"]

LABEL_NAME = "LABEL0"
#: accepted preset values of ``neutralize`` (presets of :class:`qlib_ext.processors.Neutralize`, or None);
#: a list of exposures is accepted too
NEUTRALIZE = (None, "industry_size", "strict")


class PriceVolume(DataHandlerLP):
    """Daily price-volume factors (``qlib_ext.factors``) with the (neutralised) vwap forward-return label."""

    def __init__(self, instruments: str | list = UNIVERSE, start_time: Any = None, end_time: Any = None,
                 freq: str = "day", infer_processors: Sequence | None = None,
                 learn_processors: Sequence | None = None, fit_start_time: Any = None, fit_end_time: Any = None,
                 factors: Sequence[str] | None = None, label_horizon: int = 10, label_price: str = "$vwap",
                 neutralize: str | Sequence[str] | None = "industry_size", process_type: str = DataHandlerLP.PTYPE_A,
                 filter_pipe: Any = None, inst_processors: Any = None, on_missing: str = "raise",
                 check_fields: bool = True, **kwargs: Any) -> None:
        neut = neutralize_kwargs(neutralize, "PriceVolume")
        self.factors = None if factors is None else list(factors)
        self.label_horizon, self.label_price, self.neutralize = label_horizon, label_price, neutralize
        self.on_missing = on_missing
        label = kwargs.pop("label", None) or self.get_label_config()
        if check_fields:
            feats = dict(zip(*factor_expressions(self.factors)[::-1], strict=True))
            dropped = require_fields(
                "PriceVolume", feats, dict(zip(label[1], label[0], strict=True)), neut, on_missing=on_missing,
                feature_fix="factors={keep}, or on_missing='drop' (leaves them out, logged)",
                label_fix="label_price='$close' (the close-to-close forward return)", freq=freq)
            if dropped:
                self.factors = [n for n in feats if n not in dropped]
        if learn_processors is None:
            learn_processors = [{"class": "DropnaLabel"}]
            if neut is None:
                learn_processors.append({"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}})
        learn = list(learn_processors)
        if neut is not None:
            learn.insert(0, {"class": "Neutralize", "module_path": "qlib_ext.processors",
                             "kwargs": {"fields_group": "label", **neut}})
        feature = self.get_feature_config()
        self._exprs = dict(zip(feature[1], feature[0], strict=True)) | dict(zip(label[1], label[0], strict=True))
        loader = {
            "class": "QlibDataLoader",
            "kwargs": {
                "config": {"feature": feature, "label": label},
                "filter_pipe": filter_pipe, "freq": freq, "inst_processors": inst_processors,
            },
        }
        super().__init__(
            instruments=instruments, start_time=start_time, end_time=end_time, data_loader=loader,
            infer_processors=check_transform_proc(list(infer_processors or []), fit_start_time, fit_end_time),
            learn_processors=check_transform_proc(learn, fit_start_time, fit_end_time),
            process_type=process_type, **kwargs)

    def process_data(self, with_fit: bool = False) -> None:
        """Qlib's processing, with the raw frame checked first (empty columns) and the learn frame after."""
        raw = getattr(self, "_data", None)
        check_loaded("PriceVolume", raw, getattr(self, "_exprs", {}), self.label_horizon)
        super().process_data(with_fit=with_fit)
        learn = getattr(self, "_learn", None)
        if raw is None or len(raw) == 0 or learn is None or len(learn) > 0 or "label" not in raw.columns.get_level_values(0):
            return
        if np.isfinite(raw["label"].to_numpy(dtype=np.float64)).any():
            names = [type(p).__name__ if not hasattr(p, "describe") else p.describe() for p in self.learn_processors]
            raise ValueError(
                f"PriceVolume: the learn processors {names} left no labelled row of {len(raw)} "
                f"(the raw label has {int(np.isfinite(raw['label'].to_numpy(dtype=np.float64)).sum())} finite "
                f"values): e.g. Neutralize needs min_names names with finite exposures on a day; use a wider "
                f"universe, a smaller min_names, or neutralize=None")

    def get_feature_config(self) -> tuple[list[str], list[str]]:
        """(expressions, names) of the factors, from :data:`qlib_ext.factors.PRICE_VOLUME_FACTORS`."""
        return factor_expressions(self.factors)

    def get_label_config(self) -> tuple[list[str], list[str]]:
        """The ``label_horizon``-session forward return bought at t+1 ``label_price`` (``LABEL0``)."""
        return [forward_return_label(self.label_horizon, price=self.label_price)], [LABEL_NAME]
