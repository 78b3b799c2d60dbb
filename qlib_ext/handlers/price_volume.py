"""``PriceVolume``: the named daily price-volume factors and the vwap forward-return label, as a handler.

A ``DataHandlerLP`` in the manner of Qlib's ``Alpha158`` (``qlib/contrib/data/handler.py``): the
features are the expressions of :data:`qlib_ext.factors.PRICE_VOLUME_FACTORS` (all of them, or the
names given in ``factors``; the column names are the factor names), the label is
:func:`qlib_ext.factors.forward_return_label` of ``label_horizon`` sessions (``LABEL0``), and the
label's cross-sectional neutralisation is a keyword: ``neutralize="industry_size"`` (the report's,
p.8), ``"strict"`` (industry + size + ret_10 + std_10d + turn_10d, figure 20) or None, through
:class:`qlib_ext.processors.Neutralize` (which z-scores the residual).

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

from qlib.contrib.data.handler import check_transform_proc
from qlib.data.dataset.handler import DataHandlerLP

from ..factors import factor_expressions, forward_return_label
from ..schema import UNIVERSE

__all__ = ["LABEL_NAME", "NEUTRALIZE", "PriceVolume"]

LABEL_NAME = "LABEL0"
#: accepted values of ``neutralize`` (presets of :class:`qlib_ext.processors.Neutralize`, or None)
NEUTRALIZE = (None, "industry_size", "strict")


class PriceVolume(DataHandlerLP):
    """Daily price-volume factors (``qlib_ext.factors``) with the (neutralised) vwap forward-return label."""

    def __init__(self, instruments: str | list = UNIVERSE, start_time: Any = None, end_time: Any = None,
                 freq: str = "day", infer_processors: Sequence | None = None,
                 learn_processors: Sequence | None = None, fit_start_time: Any = None, fit_end_time: Any = None,
                 factors: Sequence[str] | None = None, label_horizon: int = 10, label_price: str = "$vwap",
                 neutralize: str | None = "industry_size", process_type: str = DataHandlerLP.PTYPE_A,
                 filter_pipe: Any = None, inst_processors: Any = None, **kwargs: Any) -> None:
        if neutralize not in NEUTRALIZE:
            raise ValueError(f"PriceVolume: neutralize must be one of {list(NEUTRALIZE)}, got {neutralize!r}")
        self.factors = None if factors is None else list(factors)
        self.label_horizon, self.label_price, self.neutralize = label_horizon, label_price, neutralize
        if learn_processors is None:
            learn_processors = [{"class": "DropnaLabel"}]
            if neutralize is None:
                learn_processors.append({"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}})
        learn = list(learn_processors)
        if neutralize is not None:
            learn.insert(0, {"class": "Neutralize", "module_path": "qlib_ext.processors",
                             "kwargs": {"fields_group": "label", "preset": neutralize}})
        loader = {
            "class": "QlibDataLoader",
            "kwargs": {
                "config": {"feature": self.get_feature_config(), "label": kwargs.pop("label", self.get_label_config())},
                "filter_pipe": filter_pipe, "freq": freq, "inst_processors": inst_processors,
            },
        }
        super().__init__(
            instruments=instruments, start_time=start_time, end_time=end_time, data_loader=loader,
            infer_processors=check_transform_proc(list(infer_processors or []), fit_start_time, fit_end_time),
            learn_processors=check_transform_proc(learn, fit_start_time, fit_end_time),
            process_type=process_type, **kwargs)

    def get_feature_config(self) -> tuple[list[str], list[str]]:
        """(expressions, names) of the factors, from :data:`qlib_ext.factors.PRICE_VOLUME_FACTORS`."""
        return factor_expressions(self.factors)

    def get_label_config(self) -> tuple[list[str], list[str]]:
        """The ``label_horizon``-session forward return bought at t+1 ``label_price`` (``LABEL0``)."""
        return [forward_return_label(self.label_horizon, price=self.label_price)], [LABEL_NAME]
