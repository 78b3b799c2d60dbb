"""Ensemble: per-day z-scores (mean 0, std 1), equal-weight mean, a Qlib signal SignalRecord/SigAnaRecord read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qlib.model.base import Model

from qlib_ext.models.ensemble import Ensemble, combine, zscore_by_day

DAYS = pd.bdate_range("2023-01-02", periods=30)
STOCKS = [f"SH60{i:04d}" for i in range(50)]


def _scores(seed: int, scale: float, shift: float, drop: float = 0.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product([DAYS, STOCKS], names=["datetime", "instrument"])
    s = pd.Series(shift + scale * rng.standard_t(4, size=len(idx)), index=idx, name="score")
    return s[rng.random(len(s)) >= drop]


class FixedModel(Model):
    """A stand-in member: predicts a fixed score series (drawn from ``seed``), records what it was fit on."""

    def __init__(self, seed: int = 0, scale: float = 1.0, shift: float = 0.0, drop: float = 0.0):
        self.pred = _scores(seed, scale, shift, drop)
        self.fitted_on = None

    def fit(self, dataset, evals_result=None):
        self.fitted_on = dataset
        return self

    def predict(self, dataset, segment="test"):
        start, end = dataset.segments[segment]
        return self.pred.loc[pd.Timestamp(start):pd.Timestamp(end)]


class SegmentsOnly:
    """The least a member's dataset needs here: its segments."""

    segments = {"train": (DAYS[0], DAYS[9]), "test": (DAYS[10], DAYS[-1])}


def _members(**drops):
    return [{"name": f"m{i}", "model": {"class": FixedModel, "kwargs": {"seed": i, "scale": 10.0 ** i, "shift": 5 * i,
                                                                        "drop": drops.get(f"m{i}", 0.0)}}}
            for i in range(3)]


def test_member_zscores_have_daily_mean_0_std_1_and_the_mean_is_equal_weight():
    raw = {f"m{i}": _scores(i, 10.0 ** i, 5 * i) for i in range(3)}
    # direct pandas: per day (x - mean) / std (ddof 1), then the plain mean of the three
    direct = {k: v.groupby(level="datetime").transform(lambda x: (x - x.mean()) / x.std()) for k, v in raw.items()}
    for k, v in raw.items():
        z = zscore_by_day(v)
        pd.testing.assert_series_equal(z, direct[k], check_names=False)
        stats = z.groupby(level="datetime").agg(["mean", "std"])
        np.testing.assert_allclose(stats["mean"], 0.0, atol=1e-12)
        np.testing.assert_allclose(stats["std"], 1.0, rtol=1e-12)
    got = combine(raw)
    want = (direct["m0"] + direct["m1"] + direct["m2"]) / 3
    pd.testing.assert_series_equal(got, want.sort_index().rename("score"))
    # equal weights: no member dominates despite scales 1, 10, 100
    corr = [np.corrcoef(got, direct[k])[0, 1] for k in raw]
    assert max(corr) - min(corr) < 0.1, corr


def test_outer_join_averages_available_members_and_weights_renormalise():
    a, b = _scores(0, 1, 0), _scores(1, 3, 1, drop=0.3)
    za, zb = zscore_by_day(a), zscore_by_day(b)
    got = combine({"a": a, "b": b}, weights={"a": 1.0, "b": 3.0})
    both = za.index.intersection(zb.index)
    np.testing.assert_allclose(got.loc[both], (za.loc[both] + 3 * zb.loc[both]) / 4)
    only_a = za.index.difference(zb.index)
    np.testing.assert_allclose(got.loc[only_a], za.loc[only_a])
    inner = combine({"a": a, "b": b}, join="inner")
    assert inner.index.equals(both.sort_values())


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="members is empty"):
        Ensemble([])
    with pytest.raises(ValueError, match="distinct"):
        Ensemble([{"name": "x", "model": {"class": FixedModel}}] * 2)
    with pytest.raises(ValueError, match="weights"):
        Ensemble(_members(), weights={"m0": 1.0})
    with pytest.raises(ValueError, match="join"):
        combine({"a": _scores(0, 1, 0)}, join="left")


def test_ensemble_model_fits_members_on_their_datasets_and_predicts_the_combination():
    own = {"class": SegmentsOnly, "kwargs": {}}
    members = _members(m2=0.2)
    members[1]["dataset"] = own
    ens = Ensemble(members)
    task_ds = SegmentsOnly()
    ens.fit(task_ds)
    assert ens.models["m0"].fitted_on is task_ds and ens.models["m2"].fitted_on is task_ds
    assert isinstance(ens.models["m1"].fitted_on, SegmentsOnly) and ens.models["m1"].fitted_on is not task_ds
    pred = ens.predict(task_ds, "test")
    test = slice(DAYS[10], DAYS[-1])
    want = combine({k: m.pred.loc[test] for k, m in ens.models.items()})
    pd.testing.assert_series_equal(pred, want)
    assert pred.index.get_level_values("datetime").min() == DAYS[10]
    assert list(ens.member_scores("test").columns) == ["m0", "m1", "m2"]


def test_signal_record_and_sig_ana_record_consume_it(micro_market, tmp_path):
    """The ensemble is the task's model: SignalRecord writes pred.pkl, SigAnaRecord its IC, unchanged."""
    from qlib.data.dataset import DatasetH
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.workflow import R
    from qlib.workflow.record_temp import SigAnaRecord, SignalRecord

    import qlib_ext

    qlib_ext.init(micro_market, mlruns=tmp_path / "mlruns")
    # an in-memory handler: the label is a known signal plus noise, so IC > 0 is expected
    sig = zscore_by_day(_scores(0, 1.0, 0.0)) + zscore_by_day(_scores(1, 1.0, 0.0))
    noise = _scores(7, 3.0, 0.0)
    df = pd.concat({("feature", "x"): sig, ("label", "LABEL0"): sig + noise}, axis=1)
    ds = DatasetH(DataHandlerLP.from_df(df), segments={"train": (DAYS[0], DAYS[9]), "test": (DAYS[10], DAYS[-1])})
    ens = Ensemble([{"name": "a", "model": {"class": FixedModel, "kwargs": {"seed": 0}}},
                    {"name": "b", "model": {"class": FixedModel, "kwargs": {"seed": 1, "scale": 50.0}}}])
    with R.start(experiment_name="ens_test"):
        ens.fit(ds)
        rec = R.get_recorder()
        SignalRecord(model=ens, dataset=ds, recorder=rec).generate()
        SigAnaRecord(recorder=rec, ana_long_short=False, ann_scaler=252).generate()
        pred = rec.load_object("pred.pkl")
        ic = rec.load_object("sig_analysis/ic.pkl")
    assert list(pred.columns) == ["score"] and pred.index.names == ["datetime", "instrument"]
    np.testing.assert_allclose(pred["score"], ens.predict(ds, "test").reindex(pred.index))
    # IC of the combination against the label, recomputed directly
    lab = df[("label", "LABEL0")].reindex(pred.index)
    direct = pd.DataFrame({"p": pred["score"], "l": lab}).groupby(level="datetime").apply(lambda d: d.p.corr(d.l))
    np.testing.assert_allclose(ic.sort_index().to_numpy(), direct.sort_index().to_numpy(), rtol=1e-6)
    assert direct.mean() > 0.2
