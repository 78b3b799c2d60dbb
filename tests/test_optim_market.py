"""The optimizer on the tiny synthetic market's cross-sections: CSI 500 enhancement, weekly rebalances
in 2024Q1 with holdings drifting on the market's own returns; constraints checked by brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_optim_checks import assert_holds, brute_force_violations

from qlib_ext.data.panel import read_panel
from qlib_ext.optim import IndexOptimizer, NonlinearSize, OptimInput, SizeMoment, figure10_constraints
from qlib_ext.optim.random_problem import nonlinear_size

FIELDS = ("close", "high", "low", "up_limit", "down_limit", "mcap", "turnover", "industry", "paused", "w_csi500")


def zscore(s: pd.Series) -> pd.Series:
    return (s - s.mean()) / s.std()


@pytest.fixture(scope="module")
def panels(tiny_market) -> dict:
    return {f: read_panel(tiny_market, f) for f in FIELDS}


def cross_section(p: dict, date: pd.Timestamp, w0: pd.Series | None) -> OptimInput:
    """alpha = -z(5-day return); size = z(ln mcap); nlsize; volatility = z(20-day std); liquidity."""
    i = p["close"].index.get_loc(date)
    close = p["close"]
    alpha = -zscore((close.iloc[i] / close.iloc[i - 5] - 1).dropna())
    ln_cap = np.log(p["mcap"].iloc[i].dropna())
    size = zscore(ln_cap)
    ret = close.iloc[i - 20 : i + 1].pct_change(fill_method=None)
    expo = pd.DataFrame({"size": size, "nonlinear_size": pd.Series(nonlinear_size(size.to_numpy()), index=size.index),
                         "volatility": zscore(ret.std()), "liquidity": zscore(p["turnover"].iloc[i - 19 : i + 1].mean())})
    row = {f: p[f].iloc[i] for f in FIELDS}
    locked = np.isclose(row["high"], row["low"], rtol=1e-6)
    return OptimInput.build(
        alpha=alpha, benchmark=row["w_csi500"].fillna(0.0), w0=w0,
        industry=row["industry"].dropna().astype(int), exposures=expo,
        suspended=row["paused"] == 1,
        limit_up=pd.Series(locked & np.isclose(row["close"], row["up_limit"], rtol=1e-6), index=row["close"].index),
        limit_down=pd.Series(locked & np.isclose(row["close"], row["down_limit"], rtol=1e-6), index=row["close"].index),
    )


def test_weekly_csi500_enhancement_holds_every_constraint(panels):
    cons = figure10_constraints() + [NonlinearSize(0.3), SizeMoment(2, 0.3), SizeMoment(3, 0.3)]
    opt = IndexOptimizer(cons)
    dates = panels["close"].index[-60::5]  # 12 weekly rebalances, 2024-01 .. 2024-03
    close = panels["close"].ffill()
    w_prev, prev_date, statuses, turnovers = None, None, [], []
    for date in dates:
        if w_prev is not None:  # holdings drift with the week's returns
            grow = (close.loc[date] / close.loc[prev_date]).reindex(w_prev.index).fillna(1.0)
            w_prev = (w_prev * grow) / (w_prev * grow).sum()
        inp = cross_section(panels, date, w_prev)
        assert inp.benchmark.sum() == pytest.approx(1.0) and (inp.benchmark > 0).sum() >= 8
        res = opt.solve(inp)
        statuses.append(res.status)
        assert res.ok, (date, res.attempts, res.notes)
        assert_holds(brute_force_violations(
            inp, res.weights, stock=0.01, industry=0.02, styles={"size": 0.3, "nonlinear_size": 0.3},
            turnover=0.2 if w_prev is not None else None, floor=0.8, moments={2: 0.3, 3: 0.3}))
        if w_prev is not None:
            turnovers.append(0.5 * (res.weights - w_prev.reindex(res.weights.index).fillna(0)).abs().sum())
        w_prev, prev_date = res.weights[res.weights > 0], date
    assert statuses.count("optimal") == len(dates)
    assert max(turnovers) <= 0.2 + 1e-7
    assert np.mean(turnovers) > 0.05  # the portfolio does trade on the signal


def test_cross_section_alpha_tilts_the_portfolio(panels):
    date = panels["close"].index[-1]
    inp = cross_section(panels, date, None)
    res = IndexOptimizer(figure10_constraints()).solve(inp)
    assert res.status == "optimal"
    active = res.weights.to_numpy() - inp.benchmark
    assert np.corrcoef(active, inp.alpha)[0, 1] > 0.2  # overweights what the signal likes
    assert res.alpha > inp.alpha @ inp.benchmark
    assert res.active_exposures["size"] == pytest.approx(inp.exposure("size") @ active)
    assert abs(res.active_exposures["size"]) <= 0.3 + 1e-7
