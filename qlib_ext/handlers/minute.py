"""``MinuteFactors``: the minute-factor library's ``mf_*`` fields and their N-day means, for a tabular model.

The report's third signal (Huatai 2024, p.4, figure 9) is a model on factors computed from each
day's 240 one-minute bars.  ``qlib-ext factors minute --data DIR`` writes them as daily fields
``mf_*`` (see :mod:`qlib_ext.ops.library`); this handler reads them back through Qlib, one column
per (factor, window): ``Mean($mf_rskew, 20)`` is ``mf_rskew_mean20`` (window 1 is the day's value).

Label: :func:`qlib_ext.factors.forward_return_label` (the h-session vwap return bought at t+1),
neutralised each day by :class:`qlib_ext.processors.Neutralize` (preset ``industry_size`` by
default, ``strict`` for the report's stricter variant, ``None`` for the raw return) as a *learn*
processor, so the model trains on the neutral label while ``SignalRecord``'s ``label.pkl`` (the
raw data) keeps the plain forward return that IC is measured against.

Use it from any qrun YAML::

    handler:
      class: MinuteFactors
      module_path: qlib_ext.handlers
      kwargs: {instruments: csiall, start_time: ..., end_time: ..., fit_start_time: ..., fit_end_time: ...,
               windows: [1, 5, 20], neutralize: industry_size}
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from qlib.data.dataset.handler import DataHandlerLP
from qlib.data.dataset.loader import DataLoader
from qlib.utils import get_callable_kwargs

from ..factors.labels import forward_return_label
from ..ops.library import mean_expressions, resolve
from .checks import neutralize_kwargs, require_fields

__all__ = ["MinuteFactorLoader", "MinuteFactors", "MissingMinuteFactors", "minute_feature_config"]

BUILD_COMMAND = "qlib-ext factors minute --data {root}"

#: No feature processing by default: the minute model is a tree ensemble (LightGBM), invariant to
#: per-feature monotone rescaling, and handles NaN itself.  For a neural net, pass e.g.
#: ``[{class: RobustZScoreNorm, kwargs: {fields_group: feature, clip_outlier: true}}, {class: Fillna}]``:
#: the fit window is filled in from fit_start_time / fit_end_time and ``qlib_ext.models.Rolling``
#: re-fits it per window.  (Not Qlib's ``ProcessInf``: it loops over days in Python, 5 minutes for
#: 120 stocks x 3 years, and the factors are finite.)
DEFAULT_INFER_PROCESSORS: tuple = ()


class MissingMinuteFactors(RuntimeError):
    """The dataset lacks the ``mf_*`` fields: they are written by ``qlib-ext factors minute``."""


def minute_feature_config(windows: Sequence[int] = (1, 5, 20),
                          names: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Qlib ``(expressions, names)`` of every factor's N-day mean for each N of ``windows``."""
    windows = list(windows)
    if not windows or len(set(windows)) != len(windows):
        raise ValueError(f"MinuteFactors: windows must be distinct positive integers, got {windows}")
    exprs: dict[str, str] = {}
    for n in windows:
        exprs.update(mean_expressions(int(n), names))
    return list(exprs.values()), list(exprs)


def _processors(procs, fit_start_time, fit_end_time) -> list:
    """Processor configs with ``fit_start_time``/``fit_end_time`` filled where the class takes them."""
    from inspect import signature

    from qlib.data.dataset import processor as processor_module
    from qlib.data.dataset.processor import Processor

    out = []
    for p in procs:
        if isinstance(p, Processor):
            out.append(p)
            continue
        p = copy.deepcopy(p)
        klass, kwargs = get_callable_kwargs(p, processor_module)
        params = signature(klass).parameters
        if "fit_start_time" in params and "fit_end_time" in params:
            if fit_start_time is None or fit_end_time is None:
                raise ValueError(f"MinuteFactors: processor {klass.__name__} needs fit_start_time and fit_end_time")
            kwargs = {**kwargs, "fit_start_time": fit_start_time, "fit_end_time": fit_end_time}
        conf = {"class": klass.__name__, "kwargs": kwargs}
        if isinstance(p, dict) and "module_path" in p:
            conf["module_path"] = p["module_path"]
        out.append(conf)
    return out


def check_minute_fields(fields: Sequence[str], freq: str = "day") -> None:
    """Raise :class:`MissingMinuteFactors` naming the build command when the Qlib dataset has none of ``fields``.

    Looks at the local provider's ``features/<instrument>/<field>.<freq>.bin`` files; a non-local
    provider is not checked.
    """
    from qlib.config import C

    try:
        root = Path(C.dpm.get_data_uri(freq))
    except Exception:  # noqa: BLE001 - a client/NFS provider: Qlib itself will report
        return
    features = root / "features"
    if not features.is_dir():
        return
    want = {f"{f}.{freq}.bin" for f in fields}
    for inst in features.iterdir():
        if inst.is_dir() and any((inst / w).exists() for w in want):
            return
    raise MissingMinuteFactors(
        f"MinuteFactors: the dataset {root} has no minute-factor fields ({sorted(fields)[:3]}...); "
        f"write them first with `{BUILD_COMMAND.format(root=root)}`")


class MinuteFactorLoader(DataLoader):
    """Qlib ``DataLoader``: the raw ``mf_*`` fields and the label in one ``D.features`` call, means in NumPy.

    Same numbers as the expressions ``Mean($mf_x, N)`` (a rolling mean over each instrument's rows,
    NaN skipped, ``min_periods=1``), but 15 expressions instead of 15 x len(windows): Qlib evaluates
    expressions one instrument at a time in Python, which dominates load time (28 s against 8 s on
    the tiny market).  Output columns: group ``feature`` (``mf_x_meanN``), group ``label``.
    """

    def __init__(self, fields: Sequence[str], windows: Sequence[int], label: tuple[list[str], list[str]],
                 freq: str = "day", filter_pipe=None, inst_processors=None):
        if not fields:
            raise ValueError("MinuteFactorLoader: no fields")
        if not windows or any(int(w) < 1 for w in windows) or len(set(windows)) != len(windows):
            raise ValueError(f"MinuteFactorLoader: windows must be distinct integers >= 1, got {list(windows)}")
        self.fields = list(fields)
        self.windows = [int(w) for w in windows]
        self.label = (list(label[0]), list(label[1]))
        self.freq = freq
        self.filter_pipe = filter_pipe
        self.inst_processors = inst_processors

    def columns(self) -> list[str]:
        """Feature names in output order: every field for each window, window-major."""
        return [f"{f}_mean{n}" for n in self.windows for f in self.fields]

    def load(self, instruments=None, start_time=None, end_time=None) -> pd.DataFrame:
        from qlib.data import D

        if instruments is None or isinstance(instruments, str):
            instruments = D.instruments("all" if instruments is None else instruments, filter_pipe=self.filter_pipe)
        cal = D.calendar(freq=self.freq)
        start = cal[0] if start_time is None else pd.Timestamp(start_time)
        i0 = int(np.searchsorted(cal, start))
        ext_start = cal[max(0, i0 - (max(self.windows) - 1))] if len(cal) else start
        exprs = [f"${f}" for f in self.fields] + self.label[0]
        raw = D.features(instruments, exprs, ext_start, end_time, freq=self.freq,
                         inst_processors=self.inst_processors or [])
        raw = raw.sort_index()  # (instrument, datetime), each instrument's rows contiguous in time
        # Column by column into one float32 block (no float64 copy of every factor and window at once:
        # on 5,000 stocks x 14 years that copy and its temporaries peaked at 14.7 GiB, now ~7 GiB).
        keep = (raw.index.get_level_values("datetime") >= start) if start_time is not None else slice(None)
        starts = _group_starts(raw.index.get_level_values("instrument"))
        k, n_label = len(self.fields), raw.shape[1] - len(self.fields)
        index = raw.index[keep]
        vals = np.empty((len(index), k * len(self.windows) + n_label), dtype=np.float32)
        for j in range(k):
            x = raw.iloc[:, j].to_numpy(dtype=np.float64)[:, None]
            for w, n in enumerate(self.windows):
                vals[:, w * k + j] = _rolling_mean(x, starts, n)[keep, 0]
        vals[:, k * len(self.windows):] = raw.iloc[:, k:].to_numpy(np.float32)[keep]
        del raw, x
        cols = pd.MultiIndex.from_tuples([("feature", c) for c in self.columns()]
                                         + [("label", c) for c in self.label[1]])
        out = pd.DataFrame(vals, index=index, columns=cols, copy=False)
        del vals
        out = out.swaplevel().sort_index()
        out.index = out.index.set_names(["datetime", "instrument"])
        return out


def _group_starts(groups: pd.Index) -> np.ndarray:
    """For each row of ``groups`` (each group's rows contiguous), the position of its group's first row."""
    codes = pd.factorize(groups)[0]
    first = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    return np.repeat(first, np.diff(np.r_[first, len(codes)]))


def _rolling_mean(x: np.ndarray, start_of: np.ndarray, n: int) -> np.ndarray:
    """Per-group rolling mean of the last ``n`` rows of ``x [rows x k]`` (NaN skipped; NaN if none).

    ``start_of``: :func:`_group_starts` of the rows.
    """
    if n == 1:
        return x.copy()
    ok = np.isfinite(x)
    cs = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(np.where(ok, x, 0.0), axis=0)])
    cc = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(ok, axis=0)])
    rows = np.arange(len(start_of))
    lo = np.maximum(rows - n + 1, start_of)
    s, c = cs[rows + 1] - cs[lo], cc[rows + 1] - cc[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


class MinuteFactors(DataHandlerLP):
    """Every ``mf_*`` factor's N-day means (``windows``) as features; neutralised forward-return label.

    ``names`` picks factors of the library (default: all 15); ``label_horizon`` is h of the label;
    ``neutralize`` is a :data:`qlib_ext.processors.NEUTRALIZE_PRESETS` name, a list of exposures or None
    (raw label); ``label_price`` the label's price (``$close`` on a dataset without ``$vwap``).
    ``infer_processors`` default: none (see :data:`DEFAULT_INFER_PROCESSORS`); processors given that
    take a fit window get [``fit_start_time``, ``fit_end_time``]; ``learn_processors`` default:
    ``DropnaLabel`` then ``Neutralize``.  A dataset without the fields raises :class:`MissingMinuteFactors`;
    one without the label's or the neutralisation's fields ``MissingFieldsError`` naming them.
    """

    def __init__(self, instruments: str | list = "csiall", start_time=None, end_time=None, freq: str = "day",
                 fit_start_time=None, fit_end_time=None, windows: Sequence[int] = (1, 5, 20),
                 names: Sequence[str] | None = None, label_horizon: int = 10, label_price: str = "$vwap",
                 neutralize: str | Sequence[str] | None = "industry_size", infer_processors: Sequence | None = None,
                 learn_processors: Sequence | None = None, filter_pipe=None, inst_processors=None,
                 check_fields: bool = True, **kwargs):
        self.windows = [int(w) for w in windows]
        self.factor_fields = [f.field for f in resolve(names)]
        self.label_horizon, self.label_price = label_horizon, label_price
        self.neutralize = neutralize
        neut = neutralize_kwargs(neutralize, "MinuteFactors")
        label = kwargs.pop("label", None) or self.get_label_config()
        if check_fields:
            check_minute_fields(self.factor_fields, freq)
            require_fields("MinuteFactors", {}, dict(zip(label[1], label[0], strict=True)), neut, feature_fix="",
                           label_fix="label_price='$close' (the close-to-close forward return)", freq=freq)
        if infer_processors is None:
            infer_processors = DEFAULT_INFER_PROCESSORS
        if learn_processors is None:
            learn_processors = [{"class": "DropnaLabel"}]
            if neut is not None:
                learn_processors.append({"class": "Neutralize", "module_path": "qlib_ext.processors",
                                         "kwargs": {"fields_group": "label", **neut}})
        data_loader = MinuteFactorLoader(self.factor_fields, self.windows, label, freq=freq,
                                         filter_pipe=filter_pipe, inst_processors=inst_processors)
        super().__init__(instruments=instruments, start_time=start_time, end_time=end_time,
                         data_loader=data_loader,
                         infer_processors=_processors(infer_processors, fit_start_time, fit_end_time),
                         learn_processors=_processors(learn_processors, fit_start_time, fit_end_time),
                         **kwargs)

    def get_label_config(self) -> tuple[list[str], list[str]]:
        """``forward_return_label(label_horizon, label_price)`` as Qlib's ``LABEL0``."""
        return [forward_return_label(self.label_horizon, price=self.label_price)], ["LABEL0"]
