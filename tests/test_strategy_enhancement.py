"""IndexEnhancementStrategy in Qlib backtests on the tiny market: tradability in the executed trades,
the turnover cap between rebalances, infeasible bounds relaxed without stopping the backtest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from qlib.backtest import backtest

import qlib_ext
from qlib_ext.backtest import report_exchange_config
from qlib_ext.data.panel import read_calendar, read_panel
from qlib_ext.risk import build_risk
from qlib_ext.strategy import IndexEnhancementStrategy

FIELDS = ("close", "vwap", "low", "high", "up_limit", "down_limit", "paused")
TOL = 0.005  # half a fen, as in qlib_ext.backtest


@pytest.fixture(scope="module")
def store(tiny_market, tmp_path_factory):
    return build_risk(tiny_market, out=tmp_path_factory.mktemp("risk") / "risk", export_qlib=False, progress=False)


@pytest.fixture(scope="module")
def panels(tiny_market) -> dict:
    return {f: read_panel(tiny_market, f) for f in FIELDS}


@pytest.fixture(scope="module")
def flags(panels) -> dict:
    """Independent tradability flags from the raw bins (date x instrument)."""
    p = panels
    suspended = (p["paused"] > 0.5) | p["close"].isna()
    return {"suspended": suspended, "limit_up": (p["low"] >= p["up_limit"] - TOL) & ~suspended,
            "limit_down": (p["high"] <= p["down_limit"] + TOL) & ~suspended}


def reversal_pred(close: pd.DataFrame) -> pd.DataFrame:
    """A pred.pkl-shaped signal: minus the 5-day return (the market's planted reversal)."""
    score = -(close / close.shift(5) - 1)
    pred = score.stack().rename("score").to_frame()
    pred.index.names = ["datetime", "instrument"]
    return pred


def run(market, store, signal, start, end, tmp_path, **kwargs):
    """(daily report, positions by day, the strategy) of a backtest with the report's trading rules."""
    qlib_ext.init(market, mlruns=tmp_path / "mlruns")
    strategy = IndexEnhancementStrategy(signal=signal, risk_store=str(store), **kwargs)
    exchange = report_exchange_config(start, end)
    executor = {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}}
    bench = {"csi500": "SH000905", "csi1000": "SH000852"}[kwargs.get("benchmark", "csi500")]
    metrics, _ = backtest(start_time=start, end_time=end, strategy=strategy, executor=executor, benchmark=bench,
                          account=1e8, exchange_kwargs={"exchange": exchange})
    report, positions = metrics["1day"]
    return report, positions, strategy


def amounts(positions: dict, days: pd.DatetimeIndex) -> pd.DataFrame:
    """Shares held at each day's close (date x instrument)."""
    rows = {d: pd.Series(positions[d].get_stock_amount_dict(), dtype=float) for d in days}
    return pd.DataFrame(rows).T.fillna(0.0).reindex(days)


def assert_no_blocked_orders(diag: pd.DataFrame, flags: dict) -> None:
    """Orders the exchange dealt nothing of were cash-clipped buys, never a blocked direction."""
    for day, text in diag["rejected"].items():
        for item in str(text).split():
            stock, side = item.split(":")
            stop = flags["suspended"].loc[day, stock]
            assert not (stop or flags["limit_up" if side == "buy" else "limit_down"].loc[day, stock]), item
            assert side == "buy", item  # a sell only needs shares, which the position has


def test_turnover_cap_holds_between_weekly_rebalances(tiny_market, store, panels, flags, tmp_path):
    start, end = "2023-10-09", "2024-03-28"
    report, positions, strat = run(tiny_market, store, reversal_pred(panels["close"]), start, end, tmp_path,
                                   benchmark="csi1000", rebalance_days=5)
    diag = strat.diagnostics()
    cal = read_calendar(tiny_market)
    days = cal[(cal >= start) & (cal <= end)]
    assert report.index.equals(days)
    assert diag["status"].isin(["optimal", "relaxed"]).all(), diag[["status", "notes"]]
    assert (diag["status"] == "optimal").mean() >= 0.8  # relaxed: e.g. an index reconstitution week
    assert (np.diff(days.get_indexer(diag.index)) == 5).all() and diag.index[0] == days[0]
    assert (diag["signal_date"] == cal[cal.get_indexer(diag.index) - 1]).all()
    assert (diag["exposure_date"] <= diag["signal_date"]).all()

    # planned (optimizer) turnover: the first rebalance builds the book from cash, then <= 20%, or
    # 20% + the slack the elastic re-solve recorded when the bounds could not all hold
    cap = 0.2 + diag["relaxed"].map(lambda r: json.loads(r).get("Turnover", 0.0))
    assert diag["turnover"].iloc[0] == pytest.approx(0.5, abs=1e-6)
    assert (diag["turnover"] <= cap + 1e-7).iloc[1:].all()
    assert (diag["turnover"].iloc[1:][cap.iloc[1:] == 0.2] <= 0.2 + 1e-7).all()
    assert diag["turnover"].iloc[1:].mean() > 0.05  # it does trade on the signal
    assert_no_blocked_orders(diag, flags)

    # executed turnover from Qlib's report: only on rebalance days, equal to the diagnostics' figure
    traded = report["turnover"] / 2
    assert (traded.drop(diag.index) == 0).all()
    np.testing.assert_allclose(traded.loc[diag.index], diag["executed_turnover"], rtol=1e-9)

    # ... and independently from consecutive positions: sum |delta shares| x vwap / 2 / prior account value
    held = amounts(positions, days)
    for prev, day in zip(days[:-1], days[1:]):
        if day not in diag.index[1:]:
            continue
        delta = (held.loc[day] - held.loc[prev]).abs()
        value = (delta * panels["vwap"].loc[day].reindex(delta.index)).sum() / 2 / report.loc[prev, "account"]
        assert value == pytest.approx(traded.loc[day], rel=1e-6)
        # executed >= planned only through price moves between the signal close and the vwap, and lots
        assert value <= cap.loc[day] * 1.05 + 0.002

    # the targets keep the report's bands (stock 1%, 80% in members), checked on the recorded weights
    w = strat.log.weights_frame()
    free = ~(w["suspended"] | w["limit_up"] | w["limit_down"])
    assert ((w["weight"] - w["benchmark"]).abs()[free] <= 0.01 + 1e-7).all()
    member = w[w["benchmark"] > 0].groupby(level="datetime")["weight"].sum()
    assert (member >= 0.8 - 1e-7).all()


def test_frozen_stocks_obey_the_rules_in_executed_trades(tiny_market, store, panels, flags, tmp_path):
    """Daily rebalances with a signal that wants to sell every suspended / limit-down stock and buy
    every limit-up one on its flagged day: the plan and the executed positions must not do it."""
    start, end = "2023-06-01", "2024-03-28"
    cal = read_calendar(tiny_market)
    days = cal[(cal >= start) & (cal <= end)]
    pred = reversal_pred(panels["close"])["score"].unstack()
    events = [(d, s, k) for k, f in flags.items() for d, s in f.loc[days[1]:days[-1]].stack().loc[lambda x: x].index]
    assert {k for _, _, k in events} == {"suspended", "limit_up", "limit_down"}, "no events to test in the window"
    attract, repel = {}, {}
    for day, stock, kind in events:  # before the event: be held (or, for limit-up, not); on it: the opposite
        i = cal.get_loc(day)
        want_out = kind != "limit_up"
        for d in cal[i - 8 : i - 1]:
            attract[(d, stock)] = 10.0 if want_out else -10.0
        repel[(cal[i - 1], stock)] = -10.0 if want_out else 10.0
    for (d, s), v in {**attract, **repel}.items():
        pred.loc[d, s] = v
    signal = pred.stack().rename("score").to_frame().rename_axis(["datetime", "instrument"])

    report, positions, strat = run(tiny_market, store, signal, start, end, tmp_path,
                                   benchmark="csi1000", rebalance_days=1)
    assert len(report) == len(days) and strat.diagnostics()["status"].isin(["optimal", "relaxed"]).all()

    # 1. the optimizer saw the same flags as the raw bins give, and planned within the rule
    w = strat.log.weights_frame()
    for kind in flags:
        want = flags[kind].stack().reindex(w.index)
        assert want.notna().all()
        np.testing.assert_array_equal(w[kind].to_numpy(bool), want.to_numpy(bool), err_msg=kind)
    s, u, d = w["suspended"], w["limit_up"], w["limit_down"]
    assert ((w["weight"] - w["w0"]).abs()[s] <= 1e-9).all()
    assert (w["weight"] - w["w0"])[u].max() <= 1e-9 and (w["weight"] - w["w0"])[d].min() >= -1e-9
    blocked_sells = ((s | d) & (w["w0"] > 0) & (w["alpha"] == -10.0)).sum()
    blocked_buys = (u & (w["alpha"] == 10.0)).sum()
    assert blocked_sells >= 2 and blocked_buys >= 1, (blocked_sells, blocked_buys)  # the test is not vacuous

    # 2. the executed positions: no trade when suspended, no buy on limit-up, no sell on limit-down
    held = amounts(positions, days)
    change = held.diff()
    change.iloc[0] = held.iloc[0]
    for kind, rule in (("suspended", lambda x: x.abs() < 1e-9), ("limit_up", lambda x: x <= 1e-9),
                       ("limit_down", lambda x: x >= -1e-9)):
        f = flags[kind].loc[days].reindex(columns=held.columns, fill_value=False)
        bad = f & ~rule(change)
        assert not bad.to_numpy().any(), (kind, bad.stack()[lambda x: x].index[:5].tolist())
    assert_no_blocked_orders(strat.diagnostics(), flags)


def test_infeasible_bounds_are_relaxed_and_the_backtest_finishes(tiny_market, store, panels, tmp_path):
    start, end = "2023-12-01", "2024-03-28"
    report, _, strat = run(tiny_market, store, reversal_pred(panels["close"]), start, end, tmp_path,
                           benchmark="csi500", preset="floor100", optimizer={"turnover": 0.01})
    cal = read_calendar(tiny_market)
    assert len(report) == ((cal >= start) & (cal <= end)).sum() and report.index[-1] == pd.Timestamp(end)
    diag = strat.diagnostics()
    assert diag["status"].isin(["optimal", "relaxed"]).all(), diag["status"].value_counts()
    relaxed = diag[diag["status"] == "relaxed"]
    assert len(relaxed) >= 1, diag[["status", "turnover", "constituent_weight"]]
    # e.g. the December index reconstitution: new members cannot all be bought with 1% turnover
    w = strat.log.weights_frame()
    members = {d: set(g.index.get_level_values("instrument")[g["benchmark"] > 0]) for d, g in w.groupby(level="datetime")}
    dates = sorted(members)
    changed = {b for a, b in zip(dates, dates[1:]) if members[a] != members[b]}
    assert changed & set(relaxed.index), (changed, list(relaxed.index))
    for _, row in relaxed.iterrows():
        slack = json.loads(row["relaxed"])
        assert slack and min(slack.values()) > 0
        assert row["turnover"] <= 0.01 + slack.get("Turnover", 0.0) + 1e-7
        assert row["constituent_weight"] >= 1.0 - slack.get("ConstituentFloor", 0.0) - 1e-7
        assert row[[f"relaxed[{k}]" for k in slack]].tolist() == pytest.approx(list(slack.values()))


def test_clear_errors(tiny_market, tmp_path):
    qlib_ext.init(tiny_market, mlruns=tmp_path / "mlruns")
    pred = pd.DataFrame({"score": [1.0]}, index=pd.MultiIndex.from_tuples(
        [(pd.Timestamp("2024-01-02"), "SH600000")], names=["datetime", "instrument"]))
    with pytest.raises(FileNotFoundError, match=r"qlib-ext risk build --data"):
        IndexEnhancementStrategy(signal=pred, risk_store=str(tmp_path / "no_store"))
    with pytest.raises(FileNotFoundError, match=r"qlib-ext risk build --data"):
        IndexEnhancementStrategy(signal=pred)  # default <provider_uri>/risk is absent too
    with pytest.raises(ValueError, match="placeholder"):
        IndexEnhancementStrategy(signal="<PRED>")
    with pytest.raises(ValueError, match="tradability_day"):
        IndexEnhancementStrategy(signal=pred, tradability_day="tomorrow")


def test_signal_day_flags_and_the_tracking_risk_term(tiny_market, store, panels, flags, tmp_path):
    """tradability_day="signal" freezes by the signal day's flags; risk_aversion > 0 loads the risk
    model's design matrix (country + industries + styles), covariance and specific risk."""
    start, end = "2024-01-02", "2024-03-28"
    _, _, strat = run(tiny_market, store, reversal_pred(panels["close"]), start, end, tmp_path,
                      benchmark="csi1000", tradability_day="signal", optimizer={"risk_aversion": 10.0})
    diag = strat.diagnostics()
    assert (diag["status"] == "optimal").all()
    w = strat.log.weights_frame().reset_index()
    w["signal_date"] = w["datetime"].map(diag["signal_date"])
    for kind in flags:
        want = flags[kind].stack().reindex(pd.MultiIndex.from_frame(w[["signal_date", "instrument"]]))
        np.testing.assert_array_equal(w[kind].to_numpy(bool), want.to_numpy(bool), err_msg=kind)
    # sum w = sum b = 1; holds with suspended holdings too, which keep their last exposures (stale rows)
    assert diag["active[country]"].abs().max() < 1e-7 and diag["n_stale_exposures"].max() >= 1
    assert {"ind_110000", "size"} <= {c[len("active["):-1] for c in diag.columns if c.startswith("active[")}
