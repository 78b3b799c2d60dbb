"""A constraint added in one file (tests/extensions/demo_constraint.py) runs from YAML: through the
optimizer (HiGHS = Clarabel = the naive cvxpy statement, elastic re-solve) and through a qrun-shaped
strategy config on the tiny market, where it binds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from extensions import demo_constraint
from extensions.demo_constraint import TopSignalCap
from qlib.backtest import backtest

import qlib_ext
from qlib_ext.backtest import report_exchange_config
from qlib_ext.data.panel import read_panel
from qlib_ext.optim import FullyInvested, IndexOptimizer, LongOnly, Turnover, figure10_constraints
from qlib_ext.optim.random_problem import SyntheticMarket
from qlib_ext.optim.reference import CvxpyLP
from qlib_ext.risk import build_risk

MODULE = demo_constraint.__name__
CAP = {"class": "TopSignalCap", "module_path": MODULE, "kwargs": {"share": 0.1, "excess": 0.02}}


def top_active(inp, w) -> float:
    return float((w - inp.benchmark)[TopSignalCap(0.1).top(inp)].sum())


def test_new_constraint_agrees_across_solvers_and_binds():
    market = SyntheticMarket(400, n_industries=8, seed=11)
    base = figure10_constraints()
    cons = figure10_constraints(constraints=[CAP])
    assert isinstance(cons[-1], TopSignalCap)
    ours, clarabel = IndexOptimizer(cons), IndexOptimizer(cons, solvers=("clarabel",))
    free, naive, dpp = IndexOptimizer(base), CvxpyLP(cons), CvxpyLP(cons, parametric=True)
    w0 = None
    for t in range(3):
        inp = market.cross_section(t, w0)
        res = ours.solve(inp)
        assert res.status == "optimal" and res.binding.get("TopSignalCap") == 1
        w = res.weights.to_numpy()
        assert top_active(inp, w) == pytest.approx(0.02, abs=1e-7)
        assert top_active(inp, free.solve(inp).weights.to_numpy()) > 0.03  # without it the head is heavier
        for other in (clarabel.solve(inp).weights.to_numpy(), naive.solve(inp), dpp.solve(inp)):
            np.testing.assert_allclose(other, w, atol=1e-6)
        w0 = res.weights


def test_new_constraint_relaxes_at_its_own_price():
    """Holdings piled into the signal's head and a 20% turnover cap: the two cannot both hold; the
    elastic re-solve widens the cheaper one, by the exact amount."""
    market = SyntheticMarket(300, n_industries=6, seed=3)
    inp = market.cross_section(0)
    head = TopSignalCap(0.1).top(inp)
    w0 = pd.Series(0.5 * inp.benchmark + 0.5 * head / head.sum(), index=inp.index)
    inp = market.cross_section(0, w0)
    start = top_active(inp, inp.w0)
    assert start > 0.3
    cons = [FullyInvested(), LongOnly(), Turnover(0.2), TopSignalCap(0.1, 0.0)]  # head penalty 5 > turnover 1
    res = IndexOptimizer(cons).solve(inp)
    assert res.status == "relaxed" and set(res.relaxed) == {"Turnover"}
    assert res.relaxed["Turnover"] == pytest.approx(start - 0.2, abs=1e-6)
    assert top_active(inp, res.weights.to_numpy()) == pytest.approx(0.0, abs=1e-7)
    cons[2] = Turnover(0.2, penalty=100.0)
    res = IndexOptimizer(cons).solve(inp)
    assert res.status == "relaxed" and set(res.relaxed) == {"TopSignalCap"}
    assert res.relaxed["TopSignalCap"] == pytest.approx(start - 0.2, abs=1e-6)
    assert res.violations["TopSignalCap"] == pytest.approx(start - 0.2, abs=1e-6)


QRUN_STRATEGY = """
class: IndexEnhancementStrategy
module_path: qlib_ext.strategy
kwargs:
  signal: {pred}
  benchmark: csi500
  risk_store: {store}
  rebalance_days: 5
  preset: figure10
  optimizer:
    constraints:
      - class: TopSignalCap
        module_path: {module}
        kwargs: {{share: 0.1, excess: 0.01}}
"""


@pytest.fixture(scope="module")
def store(tiny_market, tmp_path_factory):
    return build_risk(tiny_market, out=tmp_path_factory.mktemp("risk") / "risk", export_qlib=False, progress=False)


def run_strategy(market, config: dict, tmp_path):
    qlib_ext.init(market, mlruns=tmp_path / "mlruns")
    start, end = "2023-10-09", "2023-12-29"
    executor = {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}}
    from qlib.utils import init_instance_by_config

    strategy = init_instance_by_config(config)  # as qrun's PortAnaRecord does with the YAML's strategy
    backtest(start_time=start, end_time=end, strategy=strategy, executor=executor, benchmark="SH000905",
             account=1e8, exchange_kwargs={"exchange": report_exchange_config(start, end)})
    return strategy


def test_new_constraint_from_a_qrun_strategy_config_binds_on_tiny(tiny_market, store, tmp_path):
    close = read_panel(tiny_market, "close")
    pred = (-(close / close.shift(5) - 1)).stack().rename("score").to_frame().rename_axis(["datetime", "instrument"])
    pred.to_pickle(tmp_path / "pred.pkl")
    config = yaml.safe_load(QRUN_STRATEGY.format(pred=tmp_path / "pred.pkl", store=store, module=MODULE))
    strat = run_strategy(tiny_market, config, tmp_path / "with")
    assert type(strat.optimizer.constraints[-1]).__name__ == "TopSignalCap"
    diag = strat.diagnostics()
    assert len(diag) >= 10 and diag["status"].isin(["optimal", "relaxed"]).all()
    binds = diag["binding"].map(lambda s: json.loads(s).get("TopSignalCap", 0) > 0)
    assert binds.mean() >= 0.5, diag[["status", "binding"]]

    def head(log) -> pd.Series:
        """Active weight of each date's top 10% by alpha, from the recorded weights of the whole universe."""
        out = {}
        for g in log.weights:
            day = g["datetime"].iloc[0]
            k = max(1, int(round(0.1 * len(g))))
            top = g.sort_values("alpha", ascending=False, kind="stable").iloc[:k]
            out[day] = (top["weight"] - top["benchmark"]).sum()
        return pd.Series(out)

    capped = head(strat.log)
    slack = diag["relaxed"].map(lambda s: json.loads(s).get("TopSignalCap", 0.0)).reindex(capped.index)
    assert (capped <= 0.01 + slack + 1e-7).all()
    config["kwargs"]["optimizer"] = {}
    free = head(run_strategy(tiny_market, config, tmp_path / "without").log)
    assert (free.loc[binds[binds].index] > 0.01 + 1e-4).mean() >= 0.9  # the cap is what held them back
