"""Rolling: Qlib RollingGen windows, out-of-sample only (label horizon included), per-window normalisation, warm start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qlib.data.dataset.handler import DataHandlerLP
from qlib.model.base import Model

from qlib_ext.factors import forward_return_label
from qlib_ext.models.rolling import Rolling

H = 10  # label horizon of the test handler


class Recording(Model):
    """Fits a least-squares line on the train rows and records what each fit saw."""

    log: list = []

    def __init__(self, n_epochs: int = 5):
        self.n_epochs = n_epochs
        self.coef = None

    def fit(self, dataset, evals_result=None, init_from=None):
        df = dataset.prepare(["train", "valid"], col_set=["feature", "label"], data_key=DataHandlerLP.DK_L)
        seen = pd.concat(df).index.get_level_values("datetime")
        tr = df[0].dropna()
        x, y = tr["feature"].to_numpy(), tr["label"].to_numpy()[:, 0]
        self.coef = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
        norm = dataset.handler.infer_processors[0]
        Recording.log.append({"seen_last": seen.max(), "seen_first": seen.min(), "segments": dict(dataset.segments),
                              "warm": init_from is not None, "n_epochs": self.n_epochs,
                              "median": np.array(norm.mean_train, copy=True)})
        return self

    def predict(self, dataset, segment="test"):
        x = dataset.prepare(segment, col_set="feature", data_key=DataHandlerLP.DK_I)
        return pd.Series(np.c_[x.to_numpy(), np.ones(len(x))] @ self.coef, index=x.index)


FEATURES = ["$close/Ref($close, 5) - 1", "Mean($turnover, 10)", "$vwap/$close - 1"]


@pytest.fixture(scope="module")
def rolled(micro_market, tmp_path_factory):
    from qlib.data import D
    from qlib.data.dataset import DatasetH

    import qlib_ext

    qlib_ext.init(micro_market, mlruns=tmp_path_factory.mktemp("mlruns"))
    cal = D.calendar()
    train, valid, test = (cal[5], cal[69]), (cal[70], cal[99]), (cal[100], cal[-1])
    handler = DataHandlerLP(
        instruments="all", start_time=cal[5], end_time=cal[-1],
        data_loader={"class": "QlibDataLoader", "kwargs": {"config": {
            "feature": (FEATURES, ["r5", "turn10", "vwap_close"]),
            "label": ([forward_return_label(H)], ["LABEL0"])}}},
        infer_processors=[{"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature", "clip_outlier": True,
                                                                   "fit_start_time": train[0], "fit_end_time": train[1]}},
                          {"class": "Fillna", "kwargs": {"fields_group": "feature"}}],
        learn_processors=[{"class": "DropnaLabel"}])
    ds = DatasetH(handler, segments={"train": train, "valid": valid, "test": test})
    Recording.log = []
    model = Rolling({"class": Recording, "kwargs": {"n_epochs": 5}}, step=30, rtype="sliding", label_horizon=H,
                    warm_overrides={"n_epochs": 1})
    model.fit(ds)
    return model, ds, list(Recording.log), cal


def test_windows_are_qlib_rolling_segments_covering_the_test_span(rolled):
    model, ds, log, cal = rolled
    pos = {d: i for i, d in enumerate(cal)}
    w = model.windows
    assert len(w) == int(np.ceil((len(cal) - 100) / 30)) and len(log) == len(w)
    assert w[0]["test"][0] == cal[100] and w[-1]["test"][1] == cal[-1]
    for a, b in zip(w, w[1:]):
        assert pos[b["test"][0]] == pos[a["test"][1]] + 1                 # contiguous, no overlap
        assert pos[b["train"][0]] - pos[a["train"][0]] == 30              # sliding by the step
    pred = model.predict(ds, "test")
    assert not pred.index.duplicated().any()
    days = pred.index.get_level_values("datetime")
    assert days.min() == cal[100] and days.max() <= cal[-1]


def test_no_date_is_predicted_by_a_model_that_saw_its_label(rolled):
    model, ds, log, cal = rolled
    pos = {d: i for i, d in enumerate(cal)}
    by_window = model.window_of
    for k, (seg, rec) in enumerate(zip(model.windows, log)):
        assert rec["segments"]["test"] == seg["test"]
        days = model.predictions[by_window == k].index.get_level_values("datetime").unique()
        assert days.min() >= seg["test"][0] and days.max() <= seg["test"][1]
        # the last sample the model learnt from has its label Ref($vwap, -(H+1)) known before the first
        # day it predicts: last seen + H + 1 sessions < first predicted
        last_seen = max(rec["seen_last"], seg["train"][1], seg["valid"][1])
        assert pos[last_seen] + H + 1 < pos[days.min()], (k, last_seen, days.min())
        assert rec["seen_last"] <= seg["valid"][1] and rec["seen_first"] >= seg["train"][0]


def test_normalisation_is_fitted_per_window_on_its_train_segment(rolled):
    """microsoft/qlib issue 1620: each window's RobustZScoreNorm median = raw median of that window's train."""
    model, ds, log, cal = rolled
    raw = ds.handler._data["feature"]
    medians = []
    for seg, rec in zip(model.windows, log):
        direct = np.nanmedian(raw.loc[seg["train"][0]:seg["train"][1]].to_numpy(), axis=0)
        np.testing.assert_allclose(rec["median"], direct, rtol=1e-6)
        medians.append(direct)
    assert not np.allclose(medians[0], medians[-1])


def test_warm_start_passes_the_previous_model_and_overrides(rolled):
    model, ds, log, cal = rolled
    assert [r["warm"] for r in log] == [False] + [True] * (len(log) - 1)
    assert [r["n_epochs"] for r in log] == [5] + [1] * (len(log) - 1)


def test_only_out_of_sample_segments_can_be_predicted(rolled):
    model, ds, log, cal = rolled
    with pytest.raises(ValueError, match="out of sample only"):
        model.predict(ds, "train")
    with pytest.raises(ValueError, match="not fitted"):
        Rolling({"class": Recording}).predict(ds, "test")
    with pytest.raises(ValueError, match="step"):
        Rolling({"class": Recording}, step=0).fit(ds)
