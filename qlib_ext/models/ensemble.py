"""``Ensemble``: the report's "AI price-volume factor", each member signal z-scored per day, equal-weight mean.

Huatai 2024 (p.4, figure 9) combines the daily K-line GRU, the weekly K-line GRU and the minute-factor
model by standardising each signal cross-sectionally and averaging them with equal weights.

Why a ``Model`` and not a recorder: the combined signal then *is* the task's model output, so
``SignalRecord`` writes it as ``pred.pkl`` and ``SigAnaRecord``, ``PortAnaRecord``, the strategy and
every later recorder consume it unchanged, in one plain qrun task; members are ordinary Qlib model
configs (``init_instance_by_config``), each with its own dataset config (a sequence dataset for a
GRU, a tabular one for LightGBM) or the task's dataset.  A recorder would need the members'
recorders to exist first and a second run to join them.

Each member's predictions of the task segments are made right after its ``fit`` and its dataset is
dropped before the next member loads (peak memory: one member's data).  ``member_predictions``
keeps every member's raw scores per segment for per-signal analysis (pickled with the model in the
recorder's ``params.pkl``).
"""

from __future__ import annotations

import copy
import gc
import time

import numpy as np
import pandas as pd
from qlib.log import get_module_logger
from qlib.model.base import Model
from qlib.utils import init_instance_by_config

from .rolling import resolve_model_config

__all__ = ["Ensemble", "combine", "zscore_by_day"]

logger = get_module_logger("qlib_ext.models.Ensemble")


def zscore_by_day(score: pd.Series, ddof: int = 1) -> pd.Series:
    """``(s - mean_day) / std_day`` within each datetime (NaN on days with < 2 finite scores or no spread)."""
    s = pd.Series(score, dtype=np.float64)
    g = s.groupby(level="datetime")
    sd = g.transform("std", ddof=ddof)
    return ((s - g.transform("mean")) / sd.where(sd > 0)).rename(score.name)


def combine(scores: dict[str, pd.Series], weights: dict[str, float] | None = None, join: str = "outer",
            ddof: int = 1) -> pd.Series:
    """Weighted mean of the members' daily z-scores (equal weights by default), one Qlib score Series.

    ``join="outer"``: every (datetime, instrument) any member scores, averaged over the members that
    score it (weights renormalised); ``"inner"``: only pairs every member scores.
    """
    if not scores:
        raise ValueError("combine: no member scores")
    if join not in ("outer", "inner"):
        raise ValueError(f"combine: join must be 'outer' or 'inner', got {join!r}")
    w = {k: 1.0 for k in scores} if weights is None else {k: float(weights[k]) for k in scores}
    if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"combine: weights must be >= 0 with a positive sum, got {w}")
    z = pd.concat({k: zscore_by_day(_series(v)) for k, v in scores.items()}, axis=1, join=join)
    wts = np.array([w[k] for k in z.columns])
    ok = z.notna().to_numpy()
    num = np.nansum(z.to_numpy() * wts, axis=1)
    den = (ok * wts).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return pd.Series(out, index=z.index, name="score").dropna().sort_index()


class Ensemble(Model):
    """Equal-weight mean of member signals z-scored per day (see the module docstring).

    ``members``: a list of ``{name, model, dataset}``: ``model`` a ``{class, module_path, kwargs}``
    config or a preset name of ``configs/models/<profile>.yaml``; ``dataset`` a dataset config, or
    absent for the task's own dataset.  ``weights``: ``{name: weight}`` (default equal); ``join``:
    see :func:`combine`; ``segments``: the segments each member predicts after its fit.
    """

    def __init__(self, members: list[dict], weights: dict[str, float] | None = None, join: str = "outer",
                 segments: tuple[str, ...] | list[str] = ("test",), profile: str | None = None):
        if not members:
            raise ValueError("Ensemble: members is empty")
        self.members = []
        for i, m in enumerate(members):
            if not isinstance(m, dict) or "model" not in m:
                raise ValueError(f"Ensemble: member {i} must be a dict with a 'model' key, got {m!r}")
            self.members.append({"name": str(m.get("name", f"member{i}")),
                                 "model": resolve_model_config(m["model"], profile),
                                 "dataset": copy.deepcopy(m.get("dataset"))})
        names = [m["name"] for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"Ensemble: member names must be distinct, got {names}")
        if weights is not None and set(weights) != set(names):
            raise ValueError(f"Ensemble: weights name {sorted(weights)}, members are {names}")
        self.weights, self.join, self.segments = weights, join, tuple(segments)
        self.models: dict[str, Model] = {}
        self.member_predictions: dict[str, dict[str, pd.Series]] = {}
        self.timings: dict[str, float] = {}

    def fit(self, dataset, evals_result: dict | None = None):
        """Fit each member on its dataset and keep its predictions of ``segments``."""
        for m in self.members:
            t0 = time.time()
            ds = dataset if m["dataset"] is None else init_instance_by_config(copy.deepcopy(m["dataset"]))
            model = init_instance_by_config(copy.deepcopy(m["model"]))
            res: dict = {}
            model.fit(ds, evals_result=res)
            self.models[m["name"]] = model
            self.member_predictions[m["name"]] = {seg: _series(model.predict(ds, segment=seg))
                                                  for seg in self.segments if seg in ds.segments}
            if evals_result is not None:
                evals_result[m["name"]] = res
            self.timings[m["name"]] = time.time() - t0
            logger.info(f"Ensemble member {m['name']}: fitted and predicted in {self.timings[m['name']]:.1f}s")
            if ds is not dataset:
                del ds
                gc.collect()
        return self

    def member_scores(self, segment: str = "test") -> pd.DataFrame:
        """The members' raw scores of ``segment`` side by side (outer join)."""
        return pd.concat({k: v[segment] for k, v in self.member_predictions.items()}, axis=1)

    def predict(self, dataset, segment: str = "test") -> pd.Series:
        """The combined signal of ``segment`` (members' stored predictions, else predicted now)."""
        if not self.models:
            raise ValueError("Ensemble is not fitted yet")
        scores = {}
        for m in self.members:
            stored = self.member_predictions[m["name"]]
            if isinstance(segment, str) and segment in stored:
                scores[m["name"]] = stored[segment]
            else:
                ds = dataset if m["dataset"] is None else init_instance_by_config(copy.deepcopy(m["dataset"]))
                scores[m["name"]] = _series(self.models[m["name"]].predict(ds, segment=segment))
        return combine(scores, self.weights, self.join)


def _series(pred) -> pd.Series:
    if isinstance(pred, pd.DataFrame):
        pred = pred.iloc[:, 0]
    return pd.Series(pred, dtype=np.float64).rename("score")
