"""Constraint objects and inputs: every constraint holds on the optimum (checked by brute force), the
moment rows equal the direct moment, tradability rules, YAML construction, input alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from test_optim_checks import assert_holds, brute_force_violations, moment

from qlib_ext.optim import (
    ConstituentFloor,
    Constraint,
    FullyInvested,
    IndexOptimizer,
    IndustryDeviation,
    LongOnly,
    NonlinearSize,
    OptimInput,
    SizeMoment,
    StockDeviation,
    StyleDeviation,
    Tradability,
    TradeRows,
    Turnover,
    figure10_constraints,
    figure10_settings,
    make_constraint,
)
from qlib_ext.optim.constraints import dense_rows
from qlib_ext.optim.program import build_program
from qlib_ext.optim.random_problem import SyntheticMarket
from qlib_ext.optim.reference import CvxpyLP

FULL = dict(stock=0.01, industry=0.02, styles={"size": 0.3, "nonlinear_size": 0.2}, turnover=0.2, floor=0.8,
            moments={2: 0.15, 3: 0.3})


def full_set() -> list:
    return figure10_constraints() + [NonlinearSize(0.2), SizeMoment(2, 0.15), SizeMoment(3, 0.3)]


@pytest.mark.parametrize("n,n_ind,seed", [(300, 6, 1), (800, 31, 2)])
def test_full_set_holds_by_brute_force(n, n_ind, seed):
    market, opt = SyntheticMarket(n, n_industries=n_ind, seed=seed), IndexOptimizer(full_set())
    w0 = None
    for t in range(3):
        inp = market.cross_section(t, w0)
        res = opt.solve(inp)
        assert res.status == "optimal", res.attempts
        checks = dict(FULL, turnover=FULL["turnover"] if t else None)
        assert_holds(brute_force_violations(inp, res.weights, **checks))
        assert res.weights.index.equals(inp.index)
        assert res.turnover == pytest.approx(0.5 * np.abs(res.weights.to_numpy() - inp.w0).sum())
        assert res.constituent_weight == pytest.approx(res.weights[inp.benchmark > 0].sum())
        if t:
            assert res.binding.get("Turnover") == 1  # the 20% cap is what limits the trade
        w0 = res.weights


def test_moment_rows_equal_direct_moment_and_bind():
    inp = SyntheticMarket(400, n_industries=8, seed=5).cross_section(0)
    w = np.random.default_rng(0).dirichlet(np.ones(inp.n))
    for k in (2, 3):
        rows = SizeMoment(k, 0.1).rows(inp)
        assert (rows.G @ w)[0] == pytest.approx(moment(inp, w, k), rel=1e-12)
        assert rows.hi[0] - rows.lo[0] == pytest.approx(0.2)
    base = [FullyInvested(), LongOnly(), StockDeviation(0.01), ConstituentFloor(0.8)]
    free = IndexOptimizer(base).solve(inp).weights.to_numpy()
    for k in (2, 3):
        gap = abs(moment(inp, free, k) - moment(inp, inp.benchmark, k))
        assert gap > 0.02, "the unconstrained optimum should move the moment"
        res = IndexOptimizer(base + [SizeMoment(k, gap / 2)]).solve(inp)
        new_gap = abs(moment(inp, res.weights.to_numpy(), k) - moment(inp, inp.benchmark, k))
        assert new_gap == pytest.approx(gap / 2, abs=1e-7)  # binding at the narrower bound
        assert res.binding.get(f"SizeMoment{k}") == 1
        assert res.alpha < inp.alpha @ free


def test_tradability_rules_and_band_override():
    market = SyntheticMarket(300, n_industries=6, seed=7, p_suspended=0, p_limit_up=0, p_limit_down=0)
    first = IndexOptimizer(figure10_constraints()).solve(market.cross_section(0))
    inp = market.cross_section(1, first.weights)
    held = np.flatnonzero(inp.w0 > 0.004)
    members = np.flatnonzero(inp.benchmark > 0.012)
    sus, up, down = held[:3], held[3:6], held[6:9]
    starved = np.setdiff1d(members, held)[:2]  # members not held: limit-up keeps them below b - 1%
    inp.suspended[sus] = True
    inp.limit_up[np.r_[up, starved]] = True
    inp.limit_down[down] = True
    res = IndexOptimizer(figure10_constraints()).solve(inp)
    assert res.status == "optimal"
    w = res.weights.to_numpy()
    np.testing.assert_array_equal(w[sus], inp.w0[sus])
    assert (w[up] <= inp.w0[up]).all() and (w[down] >= inp.w0[down]).all()
    np.testing.assert_array_equal(w[starved], inp.w0[starved])  # cannot be bought into the band
    assert any("outside the stock band" in note for note in res.notes)
    assert_holds(brute_force_violations(inp, w, stock=0.01, industry=0.02, styles={"size": 0.3},
                                        turnover=0.2, floor=0.8))
    # without the rule the optimizer would have traded some of these stocks
    free = IndexOptimizer([c for c in figure10_constraints() if c.name != "Tradability"]).solve(inp)
    moved = np.abs(free.weights.to_numpy()[np.r_[sus, up, down]] - inp.w0[np.r_[sus, up, down]])
    assert moved.max() > 1e-4


def test_yaml_construction_and_errors():
    spec = [{"class": "StockDeviation", "kwargs": {"bound": 0.02}},
            {"class": "SizeMoment", "module_path": "qlib_ext.optim.constraints", "kwargs": {"k": 3, "bound": 0.2}},
            {"class": "FullyInvested"}, {"class": "LongOnly"}]
    opt = IndexOptimizer(spec)
    assert [c.name for c in opt.constraints] == ["StockDeviation", "SizeMoment3", "FullyInvested", "LongOnly"]
    assert opt.constraints[0].bound == 0.02
    with pytest.raises(ValueError, match="StockDeviation: bound 2.0"):
        StockDeviation(2.0)
    with pytest.raises(ValueError, match="not a Constraint"):
        make_constraint({"class": "OptimInput"})
    with pytest.raises(ValueError, match="unique"):
        IndexOptimizer([Turnover(0.1), Turnover(0.2)])
    with pytest.raises(ValueError, match="unknown solvers"):
        IndexOptimizer(solvers=("gurobi",))
    inp = SyntheticMarket(50, n_industries=3, seed=1).cross_section(0)
    with pytest.raises(KeyError, match="'value'"):
        StyleDeviation({"value": 0.3}).rows(inp)


def test_input_universe_and_alpha_fill():
    idx = [f"S{i}" for i in range(6)]
    alpha = pd.Series([3.0, 1.0, -2.0, np.nan], index=idx[:4])
    bench = pd.Series([0.5, 0.5], index=["S3", "S4"])  # S4: member without a signal
    w0 = pd.Series([0.3, 0.2], index=["S0", "S5"])      # S5: held only
    expo = pd.DataFrame({"size": [0.1, np.nan, 0.3, 0.4, 0.5, 0.6]}, index=idx)
    inp = OptimInput.build(alpha, bench, w0, exposures=expo, industry=pd.Series({"S0": 1, "S3": 2}))  # S4: none
    assert list(inp.index) == idx
    np.testing.assert_allclose(inp.alpha, [3.0, 1.0, -2.0, -2.0, -2.0, -2.0])  # 'min' fill
    np.testing.assert_allclose(inp.benchmark, [0, 0, 0, 0.5, 0.5, 0])
    np.testing.assert_allclose(inp.w0, [0.3, 0, 0, 0, 0, 0.2])
    assert inp.exposure("size")[1] == 0.0 and len(inp.industries) == 3
    assert any("NaN exposures" in n for n in inp.notes) and any("industry unknown" in n for n in inp.notes)
    zero = OptimInput.build(alpha, bench, alpha_fill="zero")
    assert zero.alpha[list(zero.index).index("S4")] == 0.0
    with pytest.raises(ValueError, match="negative weights"):
        OptimInput.build(alpha, -bench)
    with pytest.raises(ValueError, match="w0 sums to"):
        OptimInput.build(alpha, bench, w0 * 3)
    with pytest.raises(ValueError, match="unknown rule"):
        OptimInput.build(alpha, bench, alpha_fill="median")
    with pytest.raises(TypeError, match="alpha"):
        OptimInput.build(alpha.to_numpy(), bench)


def test_industry_and_style_rows_are_deviations():
    inp = SyntheticMarket(200, n_industries=5, seed=3).cross_section(0)
    rows = IndustryDeviation(0.02).rows(inp)
    for j, name in enumerate(inp.industries):
        members = inp.industry == j
        assert rows.lo[j] == pytest.approx(inp.benchmark[members].sum() - 0.02), name
    style = StyleDeviation({"size": 0.3, "beta": 0.5}).rows(inp)
    assert style.keys == ["StyleDeviation[size]", "StyleDeviation[beta]"]
    assert style.hi[1] == pytest.approx(inp.exposure("beta") @ inp.benchmark + 0.5)
    assert Tradability().box(inp)[0].min() == -np.inf


class TradeCostBudget(Constraint):
    """A constraint of the trade shape written in a test: ``sum_i c_i |w_i - w0_i| <= budget`` with
    ``c_i`` larger for small caps (a cost budget instead of a flat turnover cap)."""

    def __init__(self, budget: float = 0.002, name: str | None = None):
        super().__init__(name, penalty=2.0)
        self.budget = budget

    def trade_rows(self, inp):
        if not inp.has_w0:
            return None
        cost = 0.001 + 0.002 * (inp.exposure("size") < 0)
        return TradeRows(sp.csr_matrix(cost[None, :]), np.array([self.budget]), [self.name])


def test_a_new_shape_compiles_itself_everywhere():
    """Program, checks, elastic prices and the cvxpy reference take a trade-shaped constraint from its
    own statement: HiGHS = Clarabel = naive = parametric cvxpy, and it binds."""
    market = SyntheticMarket(300, n_industries=6, seed=9)
    cons = [c for c in figure10_constraints() if c.name != "Turnover"] + [TradeCostBudget(0.0005)]
    ours, clar = IndexOptimizer(cons), IndexOptimizer(cons, solvers=("clarabel",))
    dpp = CvxpyLP(cons, parametric=True)
    w0 = IndexOptimizer(figure10_constraints()).solve(market.cross_section(0)).weights
    for t in (1, 2):
        inp = market.cross_section(t, w0)
        res = ours.solve(inp)
        w = res.weights.to_numpy()
        cost = 0.001 + 0.002 * (inp.exposure("size") < 0)
        assert res.status == "optimal" and res.binding.get("TradeCostBudget") == 1
        assert cost @ np.abs(w - inp.w0) == pytest.approx(0.0005, abs=1e-8)
        for other in (clar.solve(inp).weights.to_numpy(), CvxpyLP(cons).solve(inp), dpp.solve(inp)):
            np.testing.assert_allclose(other, w, atol=1e-6)
        w0 = res.weights


def test_slack_keys_are_priced_by_their_constraint():
    """``penalty_for`` prices each key the constraint's rows produce (no guessing from attributes)."""

    class TwoSided(StyleDeviation):
        def penalty_for(self, key: str) -> float:
            return 1.0 if key.endswith("[beta]") else 50.0

    inp = SyntheticMarket(200, n_industries=4, seed=2).cross_section(0)
    cons = [FullyInvested(), LongOnly(), TwoSided({"size": 0.3, "beta": 0.2})]
    prog = build_program(inp, cons, "feasibility")
    prices = dict(zip(prog.slack_keys, prog.c[prog.slack_cols]))
    assert prices == {"TwoSided[size]": 50.0, "TwoSided[beta]": 1.0}
    elastic = build_program(inp, figure10_constraints(penalties={"StockDeviation": 7.0}), "feasibility")
    prices = dict(zip(elastic.slack_keys, elastic.c[elastic.slack_cols]))
    assert prices["StockDeviation"] == 7.0 and prices["StyleDeviation[size]"] == 10.0


def test_program_result_and_reference_do_not_dispatch_on_kind():
    import inspect

    from qlib_ext.optim import program, reference, result

    for module in (program, result, reference):
        assert ".kind" not in inspect.getsource(module), module.__name__


def test_figure10_lives_once_in_the_packaged_preset():
    from qlib_ext.config import load_config, package_dir

    raw = load_config("optimizer", package_dir() / "optimizer" / "figure10.yaml")
    assert figure10_settings() == {k: v for k, v in raw.items() if k in figure10_settings()}
    cons = {c.name: c for c in figure10_constraints()}
    assert list(cons) == ["FullyInvested", "LongOnly", "StockDeviation", "IndustryDeviation", "StyleDeviation",
                          "Turnover", "ConstituentFloor", "Tradability"]
    assert (cons["StockDeviation"].bound, cons["IndustryDeviation"].bound, cons["Turnover"].limit,
            cons["ConstituentFloor"].floor, cons["StyleDeviation"].bounds) == (
        raw["stock_deviation"], raw["industry_deviation"], raw["turnover"], raw["constituent_floor"],
        raw["style_deviation"])
    assert [c.name for c in figure10_constraints(constituent_floor=None, size_moment2=0.2)][-2:] == [
        "SizeMoment2", "Tradability"]
    with pytest.raises(ValueError, match="unknown constraint keys"):
        figure10_constraints(floor=0.5)


def test_a_bug_in_the_warm_start_raises_instead_of_passing_for_a_solver_failure(monkeypatch):
    from qlib_ext.optim import solvers

    market = SyntheticMarket(200, n_industries=4, seed=6)
    opt = IndexOptimizer(figure10_constraints())
    inp0 = market.cross_section(0)
    w0 = opt.solve(inp0).weights
    inp = market.cross_section(1, w0)
    assert opt._basis is not None
    cold = IndexOptimizer(figure10_constraints(), warm_start=False).solve(inp)
    warm = opt.solve(inp)
    assert [a["warm"] for a in warm.attempts] == [True] and warm.solver == "highs"
    np.testing.assert_allclose(warm.weights, cold.weights, atol=1e-9)

    def broken(self, prog):
        raise IndexError("bug in our basis mapping")

    monkeypatch.setattr(solvers.WarmBasis, "statuses_for", broken)
    with pytest.raises(IndexError, match="basis mapping"):
        solvers.solve_highs(build_program(inp, opt.constraints), basis=opt._basis)
    with pytest.raises(IndexError, match="basis mapping"):  # not a 'failed' HiGHS attempt and a move to Clarabel
        opt.solve(inp)


def test_dense_rows_equal_scipy_conversion():
    rng = np.random.default_rng(4)
    blocks = [rng.normal(size=(3, 50)), (rng.random((1, 50)) < 0.3).astype(float), np.ones((1, 7)),
              np.where(rng.random((2, 40)) < 0.5, 0.0, rng.normal(size=(2, 40))), np.zeros((2, 5))]
    for M in blocks:
        a, b = sp.csr_matrix(M), dense_rows(M)
        assert a.shape == b.shape
        for field in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
