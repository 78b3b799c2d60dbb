"""qlib_ext.handlers.PriceVolume: the factors of qlib_ext.factors through a DataHandlerLP, and its label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.data.panel import read_calendar, read_panel
from qlib_ext.factors import PRICE_VOLUME_FACTORS, forward_return_label
from qlib_ext.handlers import PriceVolume

START, END = "2023-09-01", "2024-02-29"


@pytest.fixture(scope="module")
def qlib_micro(micro_market, tmp_path_factory):
    qlib_ext.init(micro_market, mlruns=tmp_path_factory.mktemp("mlruns"))
    return micro_market


def pandas_factors(root, inst: str, day: pd.Timestamp) -> dict[str, float]:
    """Every factor of one stock-day, straight from the bins (windows by calendar position)."""
    f = {k: read_panel(root, k, [inst])[inst].astype(np.float64)
         for k in ("close", "high", "low", "volume", "turnover", "mcap", "vwap")}
    t = f["close"].index.get_loc(day)
    c, r = f["close"], f["close"] / f["close"].shift(1) - 1

    def last(s: pd.Series, n: int) -> pd.Series:
        return s.iloc[t - n + 1 : t + 1]

    amp = (f["high"] - f["low"]) / c.shift(1)
    return {
        "ret_10": c.iloc[t] / c.iloc[t - 10] - 1, "std_10d": last(r, 10).std(ddof=1),
        "turn_10d": last(f["turnover"], 10).mean(), "size": np.log(f["mcap"].iloc[t]),
        "ret_5": c.iloc[t] / c.iloc[t - 5] - 1, "ret_20": c.iloc[t] / c.iloc[t - 20] - 1,
        "ret_w24": c.iloc[t - 5] / c.iloc[t - 20] - 1, "std_20d": last(r, 20).std(ddof=1),
        "turn_20d": last(f["turnover"], 20).mean(), "amp_10d": last(amp, 10).mean(),
        "vr_5_20": last(f["volume"], 5).mean() / last(f["volume"], 20).mean(),
        "LABEL0": f["vwap"].iloc[t + 11] / f["vwap"].iloc[t + 1] - 1,
    }


def test_features_are_the_factor_expressions_and_match_pandas(qlib_micro):
    from qlib.data import D

    h = PriceVolume(instruments="csiall", start_time=START, end_time=END, neutralize=None, learn_processors=[])
    feat = h.fetch(col_set="feature")
    assert list(feat.columns) == list(PRICE_VOLUME_FACTORS)
    direct = D.features(D.instruments("csiall"), list(PRICE_VOLUME_FACTORS.values()), START, END)
    direct = direct.swaplevel().sort_index().set_axis(list(PRICE_VOLUME_FACTORS), axis=1)
    pd.testing.assert_frame_equal(feat, direct, check_dtype=False, check_names=False)
    label = h.fetch(col_set="label")
    assert list(label.columns) == ["LABEL0"]

    # one stock-day with a complete 20-session history, against a direct pandas computation
    full = feat.join(label).dropna()
    cal = read_calendar(qlib_micro)
    day, inst = next((d, i) for d, i in full.index[len(full) // 2:]
                     if read_panel(qlib_micro, "close", [i])[i].loc[:d].iloc[-21:].notna().all()
                     and cal.get_loc(d) + 11 < len(cal))
    want = pandas_factors(qlib_micro, inst, day)
    assert set(want) == {*PRICE_VOLUME_FACTORS, "LABEL0"}
    got = full.loc[(day, inst)]
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=2e-5, abs=1e-9), name


def test_keywords_choose_factors_horizon_and_processors(qlib_micro):
    h = PriceVolume(instruments="csiall", start_time=START, end_time=END, factors=["ret_10", "size"],
                    label_horizon=5, neutralize=None)
    assert h.get_feature_config() == ([PRICE_VOLUME_FACTORS["ret_10"], PRICE_VOLUME_FACTORS["size"]], ["ret_10", "size"])
    assert h.get_label_config() == ([forward_return_label(5)], ["LABEL0"])
    assert [type(p).__name__ for p in h.learn_processors] == ["DropnaLabel", "CSZScoreNorm"]
    label = h.fetch(col_set="label", data_key=PriceVolume.DK_L)["LABEL0"]
    day = label.groupby(level="datetime").std()
    assert np.allclose(day, 1.0, atol=1e-4)  # CSZScoreNorm of the label by default
    with pytest.raises(ValueError, match="neutralize must be one of"):
        PriceVolume(instruments="csiall", start_time=START, end_time=END, neutralize="size")
    with pytest.raises(ValueError, match="unknown price-volume factor"):
        PriceVolume(instruments="csiall", start_time=START, end_time=END, factors=["ret_11"])
    a = PriceVolume(instruments="csiall", start_time=START, end_time=START, neutralize=None)
    a.learn_processors.append(None)  # no shared mutable default between instances
    b = PriceVolume(instruments="csiall", start_time=START, end_time=START, neutralize=None)
    assert None not in b.learn_processors


def test_industry_size_neutralised_label_is_the_ols_residual(qlib_micro):
    from qlib.data import D

    h = PriceVolume(instruments="csiall", start_time=START, end_time=END, neutralize="industry_size")
    assert [type(p).__name__ for p in h.learn_processors] == ["Neutralize", "DropnaLabel"]
    got = h.fetch(col_set="label", data_key=PriceVolume.DK_L)["LABEL0"]
    raw = D.features(D.instruments("csiall"), [forward_return_label(10), "$industry", "Log($mcap)"], START, END)
    raw = raw.swaplevel().sort_index().set_axis(["y", "industry", "size"], axis=1)
    day = got.index.get_level_values("datetime")[len(got) // 2]
    d = raw.loc[day].dropna()
    X = np.column_stack([pd.get_dummies(d["industry"]).to_numpy(float), d["size"].to_numpy()])
    beta, *_ = np.linalg.lstsq(X, d["y"].to_numpy(), rcond=None)
    resid = d["y"].to_numpy() - X @ beta
    want = pd.Series((resid - resid.mean()) / resid.std(ddof=1), index=d.index)
    np.testing.assert_allclose(got.loc[day].reindex(want.index).to_numpy(), want.to_numpy(), rtol=1e-4, atol=1e-4)
