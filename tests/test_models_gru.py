"""GRUModel on the tiny market: learns the planted alpha, reproducible per seed, seeds averaged, warm start."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import qlib_ext
from qlib_ext.handlers import SequenceDataset
from qlib_ext.models import GRUModel

# the test year ends before the planted alpha's calendar fades it (2023H2, as the report describes)
SEGMENTS = {"train": ("2020-12-01", "2022-03-15"), "valid": ("2022-04-01", "2022-07-15"),
            "test": ("2022-08-01", "2023-06-15")}
# small and single-threaded: torch's 2 intra-op threads spin against each other on a loaded 2-core box
SMALL = dict(hidden_size=16, num_layers=1, batch_size=500, lr=5e-3, num_threads=1, progress=False)


@pytest.fixture(scope="module")
def dataset(tiny_market, tmp_path_factory):
    qlib_ext.init(tiny_market, mlruns=tmp_path_factory.mktemp("gru_mlruns"))
    handler = {"class": "DailyKline", "module_path": "qlib_ext.handlers",
               "kwargs": {"start_time": SEGMENTS["train"][0], "end_time": SEGMENTS["test"][1]}}
    ds = SequenceDataset(handler=handler, segments=SEGMENTS)
    ds.panel  # noqa: B018 - build it once here
    return ds


def rank_ic(pred: pd.Series, dataset) -> pd.Series:
    """Daily Spearman IC of the prediction against the learn label (independent of the trainer's metric)."""
    label = dataset.prepare("test", col_set="label", data_key="learn").iloc[:, 0]
    df = pd.concat([pred.rename("p"), label.rename("y")], axis=1, join="inner").dropna()
    return df.groupby(level="datetime").apply(lambda g: g["p"].rank().corr(g["y"].rank()))


def test_gru_learns_the_planted_alpha_out_of_sample(dataset):
    kw = dict(SMALL, hidden_size=32, batch_size=256)
    model = GRUModel(**kw, n_epochs=4, max_samples_per_epoch=6000, sample_every=2, early_stop=2, seed=3)
    evals: dict = {}
    model.fit(dataset, evals_result=evals)
    pred = model.predict(dataset, "test")
    assert pred.index.names == ["datetime", "instrument"] and np.isfinite(pred).all()
    test = dataset.prepare("test")
    assert len(pred) == len(test)
    ic = rank_ic(pred, dataset)
    assert len(ic) > 100
    assert ic.mean() > 0.03, f"out-of-sample mean rank IC {ic.mean():.4f}"
    assert len(evals["train"]) == len(evals["valid"]) >= 1


def test_same_seed_same_predictions_and_seeds_average(dataset):
    kw = dict(SMALL, n_epochs=1, max_samples_per_epoch=1500, sample_every=5)
    a = GRUModel(**kw, seed=0).fit(dataset).predict(dataset)
    b = GRUModel(**kw, seed=0).fit(dataset).predict(dataset)
    c = GRUModel(**kw, seed=1).fit(dataset).predict(dataset)
    assert np.array_equal(a.to_numpy(), b.to_numpy())
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    both = GRUModel(**kw, seed=0, n_seeds=2).fit(dataset).predict(dataset)
    np.testing.assert_allclose(both.to_numpy(), (a.to_numpy(np.float64) + c.to_numpy(np.float64)) / 2,
                               rtol=1e-5, atol=1e-6)


def test_pickle_round_trip_and_warm_start(dataset):
    kw = dict(SMALL, n_epochs=1, max_samples_per_epoch=1000, sample_every=5)
    model = GRUModel(**kw).fit(dataset)
    pred = model.predict(dataset)
    again = pickle.loads(pickle.dumps(model))
    assert all(v.device.type == "cpu" for s in again.states for v in s.values())
    assert np.array_equal(again.predict(dataset).to_numpy(), pred.to_numpy())
    # lr 0: a warm start keeps the previous weights exactly; a cold start does not
    frozen = dict(kw, lr=0.0, seed=7)
    warm = GRUModel(**frozen).fit(dataset, init_from=model).predict(dataset)
    assert np.array_equal(warm.to_numpy(), pred.to_numpy())
    cold = GRUModel(**frozen).fit(dataset).predict(dataset)
    assert not np.allclose(cold.to_numpy(), pred.to_numpy())
    model.warm_start = True
    model.lr = 0.0
    assert np.array_equal(model.fit(dataset).predict(dataset).to_numpy(), pred.to_numpy())


class NaNNet(nn.Module):
    """A swapped-in net whose output turns NaN: the trainer must stop and name the batch."""

    def __init__(self, d_feat: int):
        super().__init__()
        self.lin = nn.Linear(d_feat, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[:, -1]).squeeze(-1) * float("nan")


def test_nan_loss_stops_naming_batch_and_dates(dataset):
    model = GRUModel(**dict(SMALL, n_epochs=1, max_samples_per_epoch=600, sample_every=5), net={"class": NaNNet})
    with pytest.raises(FloatingPointError, match=r"epoch 0 batch 0 .*dated \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d"):
        model.fit(dataset)


def test_epoch_metrics_go_to_the_active_recorder(dataset):
    from qlib.workflow import R

    model = GRUModel(**dict(SMALL, n_epochs=2, max_samples_per_epoch=500, sample_every=10, early_stop=5))
    with R.start(experiment_name="gru_metrics"):
        model.fit(dataset)
        metrics = R.get_recorder().list_metrics()
    assert "gru.seed0.train_loss" in metrics and "gru.seed0.valid_rank_ic" in metrics
    model.fit(dataset)  # no active recorder: nothing to log, no error


def test_rejects_other_datasets_and_bad_keywords(dataset):
    with pytest.raises(ValueError, match="loss"):
        GRUModel(loss="mae")
    with pytest.raises(ValueError, match="d_feat=6"):
        GRUModel(**dict(SMALL, n_epochs=1, max_samples_per_epoch=100), d_feat=6).fit(dataset)
    with pytest.raises(TypeError, match="SequenceDataset"):
        GRUModel().fit(object())
