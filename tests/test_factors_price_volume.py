"""The named factor expressions and the vwap label, evaluated by Qlib, against pandas on the raw bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.data.panel import read_panel
from qlib_ext.factors import (
    PRICE_VOLUME_FACTORS,
    REPORT_FACTORS,
    factor_expressions,
    forward_return_label,
    loader_config,
    resolve_factor,
)


def _panels(root, fields):
    return {f: read_panel(root, f).astype(np.float64) for f in fields}


def _expected(p: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each factor computed independently with pandas on (calendar x instrument) panels."""
    close, turn = p["close"], p["turnover"]
    r1 = close / close.shift(1) - 1
    roll = {"min_periods": 1}  # Qlib's rolling operators use min_periods=1 and skip NaN
    return {
        "ret_10": close / close.shift(10) - 1,
        "std_10d": r1.rolling(10, **roll).std(),
        "turn_10d": turn.rolling(10, **roll).mean(),
        "size": np.log(p["mcap"]),
        "ret_5": close / close.shift(5) - 1,
        "ret_20": close / close.shift(20) - 1,
        "ret_w24": close.shift(5) / close.shift(20) - 1,
        "std_20d": r1.rolling(20, **roll).std(),
        "turn_20d": turn.rolling(20, **roll).mean(),
        "amp_10d": ((p["high"] - p["low"]) / close.shift(1)).rolling(10, **roll).mean(),
        "vr_5_20": p["volume"].rolling(5, **roll).mean() / p["volume"].rolling(20, **roll).mean(),
    }


def _on_index(panel: pd.DataFrame, index: pd.MultiIndex) -> np.ndarray:
    """A (datetime x instrument) panel read at Qlib's (instrument, datetime) index (pandas 3 stack keeps NaN)."""
    return panel.stack().swaplevel().reindex(index).to_numpy()


def _assert_same(got: np.ndarray, want: np.ndarray, name: str, rtol: float = 2e-5, atol: float = 1e-7):
    got = np.where(np.isinf(got), np.nan, got)
    want = np.where(np.isinf(want), np.nan, want)
    assert (np.isnan(got) == np.isnan(want)).all(), f"{name}: NaN patterns differ"
    assert np.isfinite(got).mean() > 0.8, f"{name}: mostly NaN, the comparison would be vacuous"
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=rtol, atol=atol, err_msg=name)


def test_factors_match_pandas(micro_market, tmp_path):
    qlib_ext.init(micro_market, mlruns=tmp_path)
    from qlib.data import D

    exprs, names = factor_expressions()
    assert names == list(PRICE_VOLUME_FACTORS) and set(REPORT_FACTORS) <= set(names)
    got = D.features(D.instruments("all"), exprs, freq="day")
    got.columns = names
    want = _expected(_panels(micro_market, ["close", "high", "low", "turnover", "volume", "mcap"]))
    assert set(want) == set(names)  # every factor has an independent computation
    for name in names:
        _assert_same(got[name].to_numpy(np.float64), _on_index(want[name], got.index), name)


@pytest.mark.parametrize("horizon", [1, 10])
def test_label_is_forward_vwap_return(micro_market, tmp_path, horizon):
    qlib_ext.init(micro_market, mlruns=tmp_path)
    from qlib.data import D

    got = D.features(D.instruments("all"), [forward_return_label(horizon)], freq="day").iloc[:, 0]
    vwap = read_panel(micro_market, "vwap").astype(np.float64)
    want = vwap.shift(-(horizon + 1)) / vwap.shift(-1) - 1  # buy at t+1 vwap, sell at t+1+h vwap
    _assert_same(got.to_numpy(np.float64), _on_index(want, got.index), f"label h={horizon}")

    # suspended at t+1 (no vwap) -> NaN label; the last h+1 sessions have no label
    paused = _on_index(read_panel(micro_market, "paused").shift(-1), got.index)
    assert (paused == 1).sum() > 0 and got[paused == 1].isna().all()
    dates = got.index.get_level_values("datetime")
    last = np.sort(dates.unique())[-(horizon + 1):]
    assert got[dates.isin(last)].isna().all() and got[~dates.isin(last)].notna().mean() > 0.9


def test_names_and_configs():
    assert forward_return_label() == "Ref($vwap, -11)/Ref($vwap, -1) - 1"
    assert forward_return_label(np.int64(5)) == "Ref($vwap, -6)/Ref($vwap, -1) - 1"
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="horizon"):
            forward_return_label(bad)
    assert factor_expressions(["turn_10d", "ret_10"]) == (
        [PRICE_VOLUME_FACTORS["turn_10d"], PRICE_VOLUME_FACTORS["ret_10"]], ["turn_10d", "ret_10"])
    with pytest.raises(ValueError, match="ret_11"):
        factor_expressions(["ret_10", "ret_11"])
    assert resolve_factor("std_10d") == PRICE_VOLUME_FACTORS["std_10d"]
    assert resolve_factor("Mean($amount, 5)") == "Mean($amount, 5)"
    with pytest.raises(ValueError, match="momentum"):
        resolve_factor("momentum")
    cfg = loader_config(["ret_10"], horizon=5)
    assert cfg == {"feature": ([PRICE_VOLUME_FACTORS["ret_10"]], ["ret_10"]),
                   "label": (["Ref($vwap, -6)/Ref($vwap, -1) - 1"], ["LABEL0"])}
