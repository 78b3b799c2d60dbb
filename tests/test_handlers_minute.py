"""MinuteFactors: mf_* N-day means as Qlib computes them, the neutralised label, the LightGBM finds the intraday alpha."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from qlib.data.dataset.handler import DataHandlerLP

import qlib_ext
from qlib_ext.data.panel import read_panel
from qlib_ext.handlers.minute import MinuteFactors, MissingMinuteFactors, minute_feature_config
from qlib_ext.ops.build import build_minute_factors
from qlib_ext.processors import NEUTRALIZE_PRESETS

NAMES = ["corr_vr", "rvol", "rskew", "ret_close30"]  # the planted intraday alpha lives in corr_vr
WINDOWS = [1, 5, 10, 20]
SEGMENTS = {"train": ("2020-11-02", "2022-06-30"), "valid": ("2022-07-01", "2022-12-30"),
            "test": ("2023-01-03", "2024-03-15")}


@pytest.fixture(scope="module")
def market(tiny_market, tmp_path_factory):
    root = tmp_path_factory.mktemp("minute") / "ds"
    shutil.copytree(tiny_market, root)
    build_minute_factors(root, progress=False, names=NAMES)
    qlib_ext.init(root, mlruns=tmp_path_factory.mktemp("mlruns"))
    return root


@pytest.fixture(scope="module")
def handler(market):
    return MinuteFactors(instruments="csiall", start_time=SEGMENTS["train"][0], end_time=SEGMENTS["test"][1],
                         windows=WINDOWS, names=NAMES)


def test_dataset_without_mf_fields_names_the_command(tiny_market, tmp_path):
    # first in the file: the module fixtures below init Qlib on the copy that has the fields
    qlib_ext.init(tiny_market, mlruns=tmp_path / "mlruns")
    with pytest.raises(MissingMinuteFactors, match="qlib-ext factors minute --data"):
        MinuteFactors(instruments="csiall", start_time="2023-01-03", end_time="2023-02-28")


def test_features_equal_qlib_mean_expressions_and_pandas(market, handler):
    from qlib.data import D

    feat = handler.fetch(col_set="feature", data_key=DataHandlerLP.DK_R)
    exprs, names = minute_feature_config(WINDOWS, NAMES)
    assert list(feat.columns) == names and feat.shape[1] == len(NAMES) * len(WINDOWS)
    stocks = list(feat.index.get_level_values("instrument").unique()[[0, 17, 60]])
    ref = D.features(stocks, exprs, start_time=SEGMENTS["train"][0], end_time=SEGMENTS["test"][1])
    ref = ref.swaplevel().sort_index()
    ref.columns = names
    np.testing.assert_allclose(feat.loc[ref.index].to_numpy(), ref.to_numpy(), rtol=1e-5, atol=1e-7)
    # one stock-day by hand: the 10-day mean of the stored field, from the bins
    panel = read_panel(market, "mf_corr_vr", stocks[:1])[stocks[0]]
    day = pd.Timestamp("2022-03-15")
    i = panel.index.get_loc(day)
    want = np.nanmean(panel.iloc[i - 9 : i + 1])
    assert feat.loc[(day, stocks[0]), "mf_corr_vr_mean10"] == pytest.approx(want, rel=1e-5)


def test_label_raw_is_the_vwap_return_and_learn_label_is_neutral(market, handler):
    from qlib.data import D

    raw = handler.fetch(col_set="label", data_key=DataHandlerLP.DK_R).iloc[:, 0]
    learn = handler.fetch(col_set="label", data_key=DataHandlerLP.DK_L).iloc[:, 0]
    day = pd.Timestamp("2022-03-15")
    stock = raw.loc[day].dropna().index[3]
    vwap = read_panel(market, "vwap", [stock])[stock]
    i = vwap.index.get_loc(day)
    assert raw.loc[(day, stock)] == pytest.approx(vwap.iloc[i + 11] / vwap.iloc[i + 1] - 1, rel=1e-5)
    # learn label of one day: orthogonal to industry dummies and ln(mcap), z-scored (lstsq oracle)
    y = learn.loc[day].dropna()
    expo = D.features(list(y.index), ["$industry", "Log($mcap)"], start_time=day, end_time=day)
    expo = expo.droplevel("datetime").reindex(y.index)
    x = np.c_[pd.get_dummies(expo.iloc[:, 0]).to_numpy(float), expo.iloc[:, 1].to_numpy()]
    beta, *_ = np.linalg.lstsq(x, y.to_numpy(), rcond=None)
    np.testing.assert_allclose(x @ beta, 0.0, atol=1e-4)
    assert y.std() == pytest.approx(1.0, rel=1e-3)
    assert np.corrcoef(y, raw.loc[day].reindex(y.index))[0, 1] > 0.5


def test_neutralize_keyword(market):
    short = {"instruments": "csiall", "start_time": "2023-01-03", "end_time": "2023-02-28", "names": NAMES}
    strict = MinuteFactors(neutralize="strict", **short)
    assert tuple(strict.learn_processors[-1].against) == NEUTRALIZE_PRESETS["strict"]
    plain = MinuteFactors(neutralize=None, **short)
    lab = plain.fetch(col_set="label", data_key=DataHandlerLP.DK_L).iloc[:, 0]
    raw = plain.fetch(col_set="label", data_key=DataHandlerLP.DK_R).iloc[:, 0].reindex(lab.index)
    np.testing.assert_allclose(lab, raw)
    with pytest.raises(ValueError, match="unknown preset"):
        MinuteFactors(neutralize="sector", **short)


def test_lightgbm_finds_the_intraday_alpha(handler):
    from qlib.contrib.model.gbdt import LGBModel
    from qlib.data.dataset import DatasetH

    ds = DatasetH(handler, segments=SEGMENTS)
    model = LGBModel(loss="mse", num_boost_round=200, early_stopping_rounds=50, learning_rate=0.05, num_leaves=7,
                     min_data_in_leaf=200, num_threads=1, seed=0, verbose=-1)
    model.fit(ds)
    pred = model.predict(ds, "test")
    label = handler.fetch(col_set="label", data_key=DataHandlerLP.DK_R).iloc[:, 0]
    both = pd.DataFrame({"p": pred, "y": label.reindex(pred.index)}).dropna()
    ic = both.groupby(level="datetime").apply(lambda d: d.p.rank().corr(d.y.rank()))
    ic = ic.iloc[::10]  # non-overlapping 10-session labels: an honest t-statistic
    t = ic.mean() / ic.std(ddof=1) * np.sqrt(len(ic))
    assert len(ic) > 25
    assert ic.mean() > 0.03 and t > 2, (ic.mean(), t)
    # the alpha is the volume-return correlation: it carries the model's top split gains
    cols = handler.fetch(col_set="feature", data_key=DataHandlerLP.DK_R).columns  # LightGBM sees Column_<i>
    gain = pd.Series(model.model.feature_importance("gain"), index=cols)
    assert gain.groupby(lambda c: c.split("_mean")[0]).sum().idxmax() == "mf_corr_vr"


def _all_at_once(loader, instruments, start, end) -> pd.DataFrame:
    """The loader's output as it was computed before the column-by-column rewrite (every factor and
    window as one float64 block, cast at the end): the reference the rewrite must match bit for bit."""
    from qlib.data import D

    from qlib_ext.handlers.minute import _group_starts, _rolling_mean

    cal = D.calendar()
    i0 = int(np.searchsorted(cal, pd.Timestamp(start)))
    raw = D.features(D.instruments(instruments), [f"${f}" for f in loader.fields] + loader.label[0],
                     cal[max(0, i0 - (max(loader.windows) - 1))], end).sort_index()
    starts = _group_starts(raw.index.get_level_values("instrument"))
    x = raw.iloc[:, : len(loader.fields)].to_numpy(dtype=np.float64)
    feat = np.concatenate([_rolling_mean(x, starts, n) for n in loader.windows], axis=1).astype(np.float32)
    out = pd.DataFrame(np.concatenate([feat, raw.iloc[:, len(loader.fields):].to_numpy(np.float32)], axis=1),
                       index=raw.index)
    out = out.swaplevel().sort_index()
    return out.loc[pd.IndexSlice[pd.Timestamp(start):, :], :]


def test_column_by_column_load_is_bit_identical_to_the_all_at_once_one(market, handler):
    """The scale fix (issue 22: the full market's load peaked at 14.7 GiB) changes memory, not numbers."""
    got = handler.data_loader.load("csiall", SEGMENTS["train"][0], SEGMENTS["test"][1])
    ref = _all_at_once(handler.data_loader, "csiall", SEGMENTS["train"][0], SEGMENTS["test"][1])
    assert got.index.equals(ref.index) and got.index.names == ["datetime", "instrument"]
    assert got.to_numpy().dtype == np.float32
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())  # NaN == NaN, every bit of every value
    assert got.index.is_monotonic_increasing
