"""LimitExchange (one-word limit boards, suspensions) and the qrun smoke workflow end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.backtest import BUY_LIMIT, LIMIT_THRESHOLD, SELL_LIMIT, LimitExchange
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "smoke_csi500.yaml"
TOL = 0.005  # half a fen, as in the expressions


def _stack(df: pd.DataFrame, index: pd.MultiIndex) -> pd.Series:
    """A (datetime x instrument) panel as a series on Qlib's (instrument, datetime) index."""
    return df.stack().swaplevel().reindex(index)


def test_limit_exchange_matches_pandas(micro_market, tmp_path):
    qlib_ext.init(micro_market, mlruns=tmp_path / "mlruns")
    cal = read_calendar(micro_market)
    codes = sorted(read_instruments(micro_market)["instrument"].unique())
    ex = LimitExchange(
        freq="day",
        start_time=cal[0],
        end_time=cal[-1],
        codes=codes,
        limit_threshold=[BUY_LIMIT, SELL_LIMIT],  # a list, as YAML gives it
        deal_price="vwap",
        open_cost=0.0015,
        close_cost=0.0015,
        min_cost=0,
    )
    assert ex.limit_threshold == LIMIT_THRESHOLD and ex.buy_price == "$vwap"
    q = ex.quote_df
    got_buy, got_sell = q["limit_buy"].astype(bool), q["limit_sell"].astype(bool)

    # an independent computation from the raw .bin files
    low, high, close, up, down, paused = (
        _stack(read_panel(micro_market, f, codes), q.index)
        for f in ("low", "high", "close", "up_limit", "down_limit", "paused")
    )
    assert paused.notna().any()
    one_word_up = (low >= up - TOL).fillna(False).astype(bool)  # NaN (suspended) compares False
    one_word_down = (high <= down + TOL).fillna(False).astype(bool)
    suspended = (paused > 0.5).fillna(False).astype(bool)
    no_price = close.isna()  # Qlib's own "suspended" (also outside the listing spans)
    pd.testing.assert_series_equal(got_buy, one_word_up | suspended | no_price, check_names=False)
    pd.testing.assert_series_equal(got_sell, one_word_down | suspended | no_price, check_names=False)

    # exactly the one-word / paused days among the listed ones, and the test is not vacuous
    listed = paused.notna()
    assert (got_buy[listed] == (one_word_up | suspended)[listed]).all()
    assert one_word_up.sum() > 0 and suspended.sum() > 0 and one_word_down.sum() > 0
    normal = listed & ~one_word_up & ~suspended
    assert normal.sum() > 0.9 * listed.sum() and not got_buy[normal].any()

    # the strategy-facing check: a one-word limit-up stock cannot be bought, a normal one can
    stock, day = one_word_up[one_word_up].index[0]
    assert ex.check_stock_limit(stock, day, day, direction=1)  # OrderDir.BUY
    stock, day = normal[normal].index[0]
    assert not ex.check_stock_limit(stock, day, day, direction=1)


def test_limit_exchange_from_config_dict(micro_market, tmp_path):
    """The YAML path: get_exchange(exchange={class, module_path, kwargs}) with list thresholds."""
    from qlib.backtest import get_exchange
    from qlib.backtest.exchange import Exchange

    qlib_ext.init(micro_market, mlruns=tmp_path / "mlruns")
    cal = read_calendar(micro_market)
    codes = sorted(read_instruments(micro_market)["instrument"].unique())[:5]
    kwargs = {
        "start_time": str(cal[-20].date()),
        "end_time": str(cal[-1].date()),
        "codes": codes,
        "limit_threshold": list(LIMIT_THRESHOLD),
        "deal_price": "vwap",
    }
    ex = get_exchange(
        exchange={"class": "LimitExchange", "module_path": "qlib_ext.backtest", "kwargs": kwargs}
    )
    assert isinstance(ex, LimitExchange)
    assert ex.limit_type == Exchange.LT_TP_EXP
    assert ex.quote_df.index.get_level_values("datetime").min() == cal[-20]
    with pytest.raises(NotImplementedError):  # the Qlib pitfall LimitExchange exists for
        Exchange(**kwargs)


def test_smoke_workflow_end_to_end(tiny_market, tmp_path, monkeypatch):
    """Run workflows/smoke_csi500.yaml through Qlib's own qrun entry on the tiny market."""
    from qlib.cli.run import render_template, workflow
    from qlib.workflow import R
    from ruamel.yaml import YAML

    monkeypatch.setenv("QLIB_EXT_PROVIDER_URI", str(tiny_market))
    monkeypatch.setenv("QLIB_EXT_MLFLOW_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    yaml = YAML(typ="safe", pure=True)
    config = yaml.load(render_template(str(WORKFLOW)))
    assert config["qlib_init"]["provider_uri"] == str(tiny_market)
    config["task"]["model"]["kwargs"].update(num_boost_round=30, early_stopping_rounds=10)
    cfg_path = tmp_path / "smoke.yaml"
    yaml.default_flow_style = False
    with cfg_path.open("w") as fh:
        yaml.dump(config, fh)

    workflow(str(cfg_path))

    recorders = R.list_recorders(experiment_name=config["experiment_name"])
    assert len(recorders) == 1
    rec = next(iter(recorders.values()))
    assert rec.status == "FINISHED"
    assert Path(rec.get_local_dir()).resolve().is_relative_to(tmp_path.resolve())

    test_start, test_end = config["task"]["dataset"]["kwargs"]["segments"]["test"]
    cal = read_calendar(tiny_market)
    n_days = int(((cal >= test_start) & (cal <= test_end)).sum())

    report = rec.load_object("portfolio_analysis/report_normal_1day.pkl")
    assert len(report) == n_days
    assert report.index[0] == pd.Timestamp(test_start) and report.index[-1] == pd.Timestamp(test_end)
    excess = report["return"] - report["bench"] - report["cost"]
    assert np.isfinite(excess.to_numpy(dtype=float)).all()

    analysis = rec.load_object("portfolio_analysis/port_analysis_1day.pkl")
    for key in ("excess_return_without_cost", "excess_return_with_cost"):
        assert np.isfinite(analysis.loc[(key, "annualized_return"), "risk"])
    ic = rec.load_object("sig_analysis/ic.pkl")
    assert ic.notna().sum() > 0.8 * n_days

    pred = rec.load_object("pred.pkl")
    assert pred.index.get_level_values("datetime").nunique() == n_days
