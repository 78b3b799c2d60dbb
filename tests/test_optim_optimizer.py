"""The solver wrapper: same optimum as a plain cvxpy statement, elastic relaxation with exact slacks,
turnover across a rebalance sequence, solver-failure fallbacks, the tracking-risk term."""

from __future__ import annotations

import clarabel
import highspy
import numpy as np
import pandas as pd
import pytest
from test_optim_checks import assert_holds, brute_force_violations

from qlib_ext.optim import (
    ConstituentFloor,
    FullyInvested,
    IndexOptimizer,
    LongOnly,
    NonlinearSize,
    OptimInput,
    SizeMoment,
    StockDeviation,
    Tradability,
    Turnover,
    figure10_constraints,
)
from qlib_ext.optim.random_problem import SyntheticMarket
from qlib_ext.optim.reference import CvxpyLP


def full_set() -> list:
    return figure10_constraints() + [NonlinearSize(0.2), SizeMoment(2, 0.15), SizeMoment(3, 0.3)]


def test_reused_optimizer_equals_fresh_cvxpy_rebuild():
    market = SyntheticMarket(500, n_industries=12, seed=21)
    cons = full_set()
    ours, ours_highs = IndexOptimizer(cons), IndexOptimizer(cons, solvers=("highs",))
    parametric = CvxpyLP(cons, parametric=True)
    w0 = None
    for t in range(4):  # different alphas, caps, memberships, holdings and locks per date
        inp = market.cross_section(t, w0)
        res = ours.solve(inp)
        fresh = CvxpyLP(cons).solve(inp)
        assert res.status == "optimal"
        np.testing.assert_allclose(res.weights.to_numpy(), fresh, atol=1e-6)
        np.testing.assert_allclose(ours_highs.solve(inp).weights.to_numpy(), fresh, atol=1e-6)
        np.testing.assert_allclose(parametric.solve(inp), fresh, atol=1e-6)
        w0 = res.weights


def off_benchmark_case(n=400, seed=4, w0=None):
    """Benchmark: 200 members at 0.5% each; w0 (default) = 100 non-members at 1%: no constituent weight."""
    inp = SyntheticMarket(n, n_industries=6, seed=seed).cross_section(0)
    bench = pd.Series(0.005, index=inp.index[:200])
    w0 = pd.Series(0.01, index=inp.index[200:300]) if w0 is None else w0
    return OptimInput.build(pd.Series(inp.alpha, index=inp.index), bench, w0)


def test_infeasible_floor_relaxes_turnover_by_exact_amount():
    inp = off_benchmark_case()
    cons = [FullyInvested(), LongOnly(), StockDeviation(0.01), Turnover(0.2), ConstituentFloor(1.0)]
    res = IndexOptimizer(cons).solve(inp)
    assert res.status == "relaxed"
    assert [a["status"] for a in res.attempts][0] == "infeasible"
    # all weight must move into members: one-sided turnover 100%, i.e. the 20% cap widened by 80%
    assert set(res.relaxed) == {"Turnover"}
    assert res.relaxed["Turnover"] == pytest.approx(0.8, abs=1e-6)
    assert res.constituent_weight == pytest.approx(1.0, abs=1e-7)
    assert res.turnover == pytest.approx(1.0, abs=1e-6)
    assert res.violations["Turnover"] == pytest.approx(0.8, abs=1e-6)
    assert_holds(brute_force_violations(inp, res.weights, stock=0.01, floor=1.0))
    # price turnover above the floor: now the floor gives way, by the same 80%
    cons[3] = Turnover(0.2, penalty=100.0)
    res = IndexOptimizer(cons).solve(inp)
    assert set(res.relaxed) == {"ConstituentFloor"}
    assert res.relaxed["ConstituentFloor"] == pytest.approx(0.8, abs=1e-6)
    assert res.constituent_weight == pytest.approx(0.2, abs=1e-6)
    assert_holds(brute_force_violations(inp, res.weights, stock=0.01, turnover=0.2))


def test_infeasible_band_relaxes_by_exact_amount():
    index = off_benchmark_case().index
    w0 = pd.Series(0.01, index=index[200:300])
    w0.iloc[0] += 0.05  # a 6% position in a non-member against a 1% band
    inp = off_benchmark_case(w0=w0 / w0.sum())
    i = list(inp.index).index(w0.index[0])
    cons = [FullyInvested(), LongOnly(), StockDeviation(0.01), Turnover(0.02, penalty=100.0)]
    res = IndexOptimizer(cons).solve(inp)
    # 2% of turnover can sell 2% of the outsider: the band has to widen by the rest
    assert set(res.relaxed) == {"StockDeviation"}
    assert res.relaxed["StockDeviation"] == pytest.approx(inp.w0[i] - 0.01 - 0.02, abs=1e-6)
    assert res.weights.iloc[i] == pytest.approx(inp.w0[i] - 0.02, abs=1e-6)
    assert res.violations["StockDeviation"] == pytest.approx(res.relaxed["StockDeviation"], abs=1e-6)
    assert_holds(brute_force_violations(inp, res.weights, turnover=0.02))


def test_hard_infeasible_falls_back_to_w0():
    inp = SyntheticMarket(100, n_industries=4, seed=2, p_suspended=0, p_limit_up=0, p_limit_down=0).cross_section(0)
    w0 = pd.Series(0.005, index=inp.index)  # 50% invested, the rest cash
    inp = OptimInput.build(pd.Series(inp.alpha, index=inp.index), pd.Series(inp.benchmark, index=inp.index), w0,
                           limit_up=pd.Series(True, index=inp.index))  # nothing can be bought
    res = IndexOptimizer([FullyInvested(), LongOnly(), Tradability()]).solve(inp)
    assert res.status == "fallback_w0" and res.solver == "none"
    np.testing.assert_allclose(res.weights.to_numpy(), inp.w0 / inp.w0.sum())
    assert [a["phase"] for a in res.attempts] == ["plain", "elastic_feasibility"]


def test_turnover_cap_holds_across_a_drifting_sequence():
    market = SyntheticMarket(400, n_industries=10, seed=8)
    opt, rng = IndexOptimizer(full_set()), np.random.default_rng(3)
    w_prev, turnovers = None, []
    for t in range(6):
        inp = market.cross_section(t, w_prev)
        res = opt.solve(inp)
        assert res.ok, res.attempts
        if w_prev is not None:
            drifted = w_prev.reindex(res.weights.index).fillna(0.0)
            turnovers.append(0.5 * (res.weights - drifted).abs().sum())
        assert_holds(brute_force_violations(inp, res.weights, stock=0.01, industry=0.02, floor=0.8))
        # a week of returns moves the holdings before the next rebalance
        w = res.weights * (1 + rng.normal(0.0, 0.03, len(res.weights)))
        w_prev = (w / w.sum())[w > 0]
    assert max(turnovers) <= 0.2 + 1e-7
    assert min(turnovers) > 0.15  # the cap binds: the signal wants more trading


def test_clarabel_failure_falls_back_to_highs(monkeypatch):
    inp = SyntheticMarket(300, n_industries=6, seed=9).cross_section(0)
    expected = IndexOptimizer(figure10_constraints()).solve(inp)
    clarabel_first = ("clarabel", "highs")

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("simulated Clarabel crash")

    monkeypatch.setattr(clarabel, "DefaultSolver", Broken)
    res = IndexOptimizer(figure10_constraints(), solvers=clarabel_first).solve(inp)
    assert res.status == "optimal" and res.solver == "highs"
    assert res.attempts[0]["solver"] == "clarabel" and res.attempts[0]["status"] == "failed"
    assert "simulated Clarabel crash" in res.attempts[0]["message"]
    np.testing.assert_allclose(res.weights.to_numpy(), expected.weights.to_numpy(), atol=1e-6)
    monkeypatch.setattr(highspy.Highs, "run", lambda self: (_ for _ in ()).throw(RuntimeError("no HiGHS")))
    res = IndexOptimizer(figure10_constraints(), solvers=clarabel_first).solve(inp)
    assert res.status == "fallback_benchmark"  # no w0 at the first rebalance
    np.testing.assert_allclose(res.weights.to_numpy(), inp.benchmark)
    assert [a["status"] for a in res.attempts] == ["failed", "failed"]


def test_inaccurate_answers_are_flagged():
    inp = SyntheticMarket(200, n_industries=5, seed=4).cross_section(0)
    res = IndexOptimizer(figure10_constraints(), check_tol=-1.0).solve(inp)  # no answer can pass
    assert res.status == "inaccurate" and res.solver == "highs"  # the first inaccurate answer is kept
    assert [a["status"] for a in res.attempts] == ["inaccurate", "inaccurate"]
    assert not res.ok


def test_first_rebalance_skips_turnover_and_notes_it():
    inp = SyntheticMarket(200, n_industries=5, seed=4).cross_section(0)
    res = IndexOptimizer(figure10_constraints()).solve(inp)
    assert res.turnover > 0.2 and "Turnover" not in res.violations
    assert any("turnover constraint skipped" in n for n in res.notes)


@pytest.mark.parametrize("solver", ["clarabel", "highs"])
def test_risk_term_matches_cvxpy_quadratic(solver):
    market = SyntheticMarket(300, n_industries=6, seed=12)
    base = market.cross_section(0)
    rng = np.random.default_rng(0)
    factors = ["size", "beta", "momentum"]
    L = rng.normal(0, 0.1, (3, 3))
    cov = pd.DataFrame(L @ L.T + 0.01 * np.eye(3), index=factors, columns=factors)
    s = lambda v: pd.Series(v, index=base.index)  # noqa: E731
    inp = OptimInput.build(s(base.alpha), s(base.benchmark), exposures=pd.DataFrame(base.exposures, base.index, base.factors),
                           industry=s(base.industry), specific_var=s(rng.uniform(0.01, 0.05, base.n)), factor_cov=cov)
    cons = [FullyInvested(), LongOnly(), StockDeviation(0.02), ConstituentFloor(0.8)]
    lam = 30.0
    res = IndexOptimizer(cons, risk_aversion=lam, solvers=(solver,)).solve(inp)
    assert res.status == "optimal", res.attempts
    ref = CvxpyLP(cons, risk_aversion=lam).solve(inp)
    np.testing.assert_allclose(res.weights.to_numpy(), ref, atol=2e-6)
    lp = IndexOptimizer(cons).solve(inp).weights.to_numpy()
    d_qp, d_lp = res.weights.to_numpy() - inp.benchmark, lp - inp.benchmark
    te = lambda d: d @ (inp.specific_var * d)  # noqa: E731
    assert te(d_qp) < te(d_lp)  # the penalty lowers tracking risk


def test_default_is_highs_first_then_clarabel_and_clarabel_first_for_the_qp(monkeypatch):
    inp = SyntheticMarket(300, n_industries=6, seed=9).cross_section(0)
    res = IndexOptimizer(figure10_constraints()).solve(inp)
    assert res.solver == "highs" and [a["solver"] for a in res.attempts] == ["highs"]
    assert IndexOptimizer(risk_aversion=1.0).solvers == ("clarabel", "highs")
    monkeypatch.setattr(highspy.Highs, "run", lambda self: (_ for _ in ()).throw(RuntimeError("no HiGHS")))
    fell = IndexOptimizer(figure10_constraints()).solve(inp)
    assert fell.status == "optimal" and fell.solver == "clarabel"
    assert fell.attempts[0]["solver"] == "highs" and "no HiGHS" in fell.attempts[0]["message"]
    np.testing.assert_allclose(fell.weights.to_numpy(), res.weights.to_numpy(), atol=1e-6)


def drifting_sequence(n: int, rebalances: int, seed: int) -> list:
    """Inputs of a weekly sequence whose holdings come from the previous optimum, drifted by returns."""
    market, opt, rng = SyntheticMarket(n, seed=seed), IndexOptimizer(full_set()), np.random.default_rng(seed)
    inputs, w0 = [], None
    for t in range(rebalances):
        inp = market.cross_section(t, w0)
        inputs.append(inp)
        w = opt.solve(inp).weights
        w = w * (1 + rng.normal(0.0, 0.03, len(w)))
        w0 = (w / w.sum())[w > 0]
    return inputs


@pytest.mark.parametrize("n, seed", [(800, 7), (1500, 3)])
def test_highs_first_equals_clarabel_first_and_warm_equals_cold(n, seed):
    """The bench problems (figure 10 + nonlinear size + size moments, drifting holdings)."""
    inputs = drifting_sequence(n, 4, seed)
    highs, clar = IndexOptimizer(full_set()), IndexOptimizer(full_set(), solvers=("clarabel", "highs"))
    cold = IndexOptimizer(full_set(), warm_start=False)
    warm_used = []
    for inp in inputs:
        rh, rc, r0 = highs.solve(inp), clar.solve(inp), cold.solve(inp)
        assert rh.status == rc.status == r0.status == "optimal"
        assert rh.solver == "highs" and rc.solver == "clarabel"
        np.testing.assert_allclose(rh.weights.to_numpy(), rc.weights.to_numpy(), atol=1e-6)
        np.testing.assert_allclose(rh.weights.to_numpy(), r0.weights.to_numpy(), atol=1e-9)
        assert not r0.attempts[0]["warm"]
        warm_used.append(rh.attempts[0]["warm"])
    assert warm_used == [False] + [True] * (len(inputs) - 1)  # every rebalance after the first starts warm
