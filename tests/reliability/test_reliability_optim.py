"""Bad input to the optimizer (``qlib_ext.optim``): NaN/constant/infinite signals, empty universes,
benchmark weights off 1, infeasible constraints (elastic fallback, recorded) and solver failures
(fallback solver or weights, recorded).  Constraint checks are brute force (plain sums), not the
optimizer's own evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.optim import (
    ConstituentFloor,
    FullyInvested,
    IndexOptimizer,
    LongOnly,
    StockDeviation,
    StyleDeviation,
    Tradability,
    Turnover,
    figure10_constraints,
)
from qlib_ext.optim import solvers as solvers_mod
from qlib_ext.optim.random_problem import SyntheticMarket


@pytest.fixture(scope="module")
def market() -> dict:
    """One cross-section as the pandas objects a strategy passes in."""
    inp = SyntheticMarket(200, n_industries=6, seed=3).cross_section(0)
    s = lambda v: pd.Series(v, index=inp.index)  # noqa: E731
    return {"alpha": s(inp.alpha), "benchmark": s(inp.benchmark),
            "industry": s(np.asarray(inp.industries)[inp.industry]),
            "exposures": pd.DataFrame(inp.exposures, index=inp.index, columns=inp.factors)}


def solve(market: dict, constraints=None, **override):
    args = {**market, **override}
    return IndexOptimizer(constraints).optimize(args.pop("alpha"), args.pop("benchmark"), **args)


def assert_figure10_holds(res, market: dict, tol: float = 1e-7) -> None:
    """Budget, long-only, 1% stock band, 2% industry band, size within 0.3, 80% in members (brute force)."""
    w = res.weights
    b = market["benchmark"].reindex(w.index).fillna(0.0) / market["benchmark"].sum()
    assert abs(w.sum() - 1) < tol and w.min() > -tol
    assert (w - b).abs().max() < 0.01 + tol
    ind = market["industry"].reindex(w.index)
    assert (w - b).groupby(ind).sum().abs().max() < 0.02 + tol
    assert abs((market["exposures"]["size"].reindex(w.index) * (w - b)).sum()) < 0.3 + tol
    assert w[b > 0].sum() > 0.8 - tol


# -- signals ------------------------------------------------------------------------------------
def test_optim_all_nan_signal_fills_every_stock_and_notes_it(market):
    """Documented: stocks without a signal get ``alpha_fill`` (0 when no stock has one); the answer is
    still a feasible portfolio of the benchmark's members, and the note says how many were filled."""
    nan = market["alpha"] * np.nan
    res = solve(market, alpha=nan)
    members = int((market["benchmark"] > 0).sum())
    assert res.status == "optimal" and len(res.weights) == members
    assert f"alpha filled ('min') for {members} stocks without a signal" in res.notes
    assert_figure10_holds(res, market)
    assert res.alpha == 0.0


def test_optim_constant_signal_gives_a_feasible_deterministic_portfolio(market):
    flat = market["alpha"] * 0 + 1.0
    a, b = solve(market, alpha=flat), solve(market, alpha=flat)
    assert a.status == "optimal"
    assert_figure10_holds(a, market)
    assert a.alpha == pytest.approx(1.0)                  # every portfolio scores the same
    pd.testing.assert_series_equal(a.weights, b.weights, check_exact=True)


def test_optim_infinite_signal_names_the_stock(market):
    alpha = market["alpha"].copy()
    alpha.iloc[3] = np.inf
    with pytest.raises(ValueError, match=alpha.index[3]):
        solve(market, alpha=alpha)


# -- universes and benchmark weights ------------------------------------------------------------
def test_optim_empty_universe_is_a_clear_error(market):
    with pytest.raises(ValueError, match="empty universe: no stock has a signal, a benchmark weight or a holding"):
        IndexOptimizer().optimize(pd.Series(dtype=float), pd.Series(dtype=float))


def test_optim_benchmark_without_members_is_a_clear_error(market):
    with pytest.raises(ValueError, match="benchmark has no positive weight in the universe"):
        solve(market, benchmark=market["benchmark"] * 0)


def test_optim_benchmark_not_summing_to_one_is_rescaled_and_noted(market):
    res = solve(market, benchmark=market["benchmark"] * 0.7)
    assert "benchmark weights summed to 0.700000; rescaled to 1" in res.notes
    pd.testing.assert_series_equal(res.weights, solve(market).weights, atol=1e-9)


def test_optim_negative_benchmark_weight_names_the_stock(market):
    b = market["benchmark"].copy()
    name = b.index[b > 0][0]
    b[name] = -0.01
    with pytest.raises(ValueError, match=rf"benchmark: negative weights for \['{name}'\]"):
        solve(market, benchmark=b)


def test_optim_missing_style_exposure_names_the_factor(market):
    with pytest.raises(KeyError, match="exposure 'size' not in the optimizer input"):
        solve(market, exposures=market["exposures"].drop(columns="size"))


def test_optim_duplicate_instruments_named(market):
    alpha = pd.concat([market["alpha"], market["alpha"].iloc[:1]])
    with pytest.raises(ValueError, match=rf"alpha: duplicate instruments \['{alpha.index[0]}'\]"):
        solve(market, alpha=alpha)


# -- infeasible constraints and solver failures -------------------------------------------------
def off_benchmark(market: dict) -> dict:
    """Holdings entirely outside the benchmark: a 100% floor with 20% turnover cannot both hold."""
    outside = market["benchmark"].index[market["benchmark"] == 0][:100]
    return {"w0": pd.Series(0.01, index=outside)}


def test_optim_infeasible_constraints_relax_elastically_and_record_it(market):
    cons = [FullyInvested(), LongOnly(), Turnover(0.2), ConstituentFloor(1.0)]
    res = solve(market, cons, **off_benchmark(market))
    assert res.status == "relaxed" and res.ok
    assert res.attempts[0]["phase"] == "plain" and res.attempts[0]["status"] == "infeasible"
    assert [a["phase"] for a in res.attempts[1:]] == ["elastic_feasibility", "elastic_capped"]
    assert res.relaxed == {"Turnover": pytest.approx(0.8, abs=1e-6)}
    w = res.weights
    turnover = 0.5 * (w - off_benchmark(market)["w0"].reindex(w.index).fillna(0)).abs().sum()
    assert turnover == pytest.approx(1.0, abs=1e-6) and w[market["benchmark"].reindex(w.index) > 0].sum() > 1 - 1e-7


def test_optim_hard_infeasible_falls_back_to_current_weights_and_records_it(market):
    w0 = pd.Series(0.002, index=market["alpha"].index)          # 40% invested; nothing may be bought
    res = solve(market, [FullyInvested(), LongOnly(), Tradability()], w0=w0,
                limit_up=pd.Series(True, index=w0.index))
    assert res.status == "fallback_w0" and res.solver == "none" and not res.ok
    assert "no solver answer; returned w0 weights" in res.notes
    np.testing.assert_allclose(res.weights.to_numpy(), 1 / len(w0))


def test_optim_first_solver_failure_falls_back_to_second_and_records_it(market, monkeypatch):
    expected = solve(market, figure10_constraints())

    monkeypatch.setitem(solvers_mod.SOLVERS, "highs", lambda prog, **o: solvers_mod.Outcome(
        "highs", "failed", 0.0, message="simulated HiGHS crash"))  # the default order: HiGHS, then Clarabel
    res = solve(market, figure10_constraints())
    assert res.status == "optimal" and res.solver == "clarabel"
    assert res.attempts[0] == {"phase": "plain", "solver": "highs", "status": "failed", "seconds": 0.0,
                               "message": "simulated HiGHS crash", "iterations": 0, "warm": False}
    np.testing.assert_allclose(res.weights.to_numpy(), expected.weights.to_numpy(), atol=1e-6)


def test_optim_every_solver_failing_returns_benchmark_and_records_each_attempt(market, monkeypatch):
    import clarabel
    import highspy

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("simulated Clarabel crash")

    monkeypatch.setattr(clarabel, "DefaultSolver", Broken)
    monkeypatch.setattr(highspy.Highs, "run", lambda self: (_ for _ in ()).throw(RuntimeError("simulated HiGHS crash")))
    res = solve(market, figure10_constraints())
    assert res.status == "fallback_benchmark" and not res.ok
    assert [(a["solver"], a["status"]) for a in res.attempts] == [("highs", "failed"), ("clarabel", "failed")]
    assert "simulated HiGHS crash" in res.attempts[0]["message"]
    assert "simulated Clarabel crash" in res.attempts[1]["message"]
    b = market["benchmark"] / market["benchmark"].sum()
    np.testing.assert_allclose(res.weights.to_numpy(), b.reindex(res.weights.index).fillna(0).to_numpy())


def test_optim_unknown_solver_and_bad_bounds_are_refused_up_front():
    with pytest.raises(ValueError, match=r"unknown solvers \['gurobi'\]"):
        IndexOptimizer(solvers=("clarabel", "gurobi"))
    with pytest.raises(ValueError, match=r"StockDeviation: bound 1.5 outside \[0.0, 1.0\]"):
        StockDeviation(1.5)
    with pytest.raises(ValueError, match=r"StyleDeviation\[size\]: bound -0.1 outside"):
        StyleDeviation({"size": -0.1})


def test_optim_rerun_is_bitwise_deterministic(market):
    runs = [solve(market, figure10_constraints()) for _ in range(2)]
    assert runs[0].status == "optimal"
    pd.testing.assert_series_equal(runs[0].weights, runs[1].weights, check_exact=True)


# -- inputs that do not share an index (issue 12) -------------------------------------------------
def members_of(market: dict) -> pd.Index:
    return market["benchmark"].index[market["benchmark"] > 0]


@pytest.mark.parametrize("name", ["alpha", "industry", "exposures"])
def test_optim_input_indexed_by_integers_is_named(market, name):
    bad = market[name].reset_index(drop=True)
    with pytest.raises(ValueError, match=rf"^{name}: covers 0\.0% of the \d+ benchmark members.*"
                                         rf"{name} is indexed by integers"):
        solve(market, **{name: bad})


@pytest.mark.parametrize("name", ["alpha", "industry", "exposures"])
def test_optim_input_of_other_codes_is_named(market, name):
    bad = market[name].copy()
    bad.index = [f"X{c}" for c in bad.index]                    # another market's codes
    with pytest.raises(ValueError, match=rf"^{name}: covers 0\.0% .*{name} has \['X"):
        solve(market, **{name: bad})


@pytest.mark.parametrize("name", ["alpha", "industry", "exposures"])
def test_optim_overlap_threshold_at_the_boundary(market, name):
    """Covering exactly ``min_overlap`` of the members passes (members left out are filled and noted);
    one member fewer is an error naming the input and the share."""
    members = members_of(market)
    m = len(members)
    half = m // 2 if m % 2 == 0 else None
    assert half is not None, "the fixture's benchmark should have an even number of members"
    keep = market[name].index.difference(members[half:])        # non-members + the first half of the members
    res = solve(market, **{name: market[name].loc[keep]})
    assert res.status == "optimal"
    note = {"alpha": f"alpha filled ('min') for {m - half} stocks",
            "industry": f"industry unknown for {m - half} stocks",
            "exposures": "NaN exposures set to 0 in"}[name]
    assert any(n.startswith(note) for n in res.notes), res.notes
    fewer = keep.difference(members[half - 1:half])
    with pytest.raises(ValueError, match=rf"^{name}: covers {100 * (half - 1) / m:.1f}% of the {m} benchmark members "
                                         r"\(min_overlap 50%\)"):
        solve(market, **{name: market[name].loc[fewer]})
    # the threshold is a keyword: at 0 the sparse input passes, at 1 the half one fails
    assert solve(market, min_overlap=0.0, **{name: market[name].loc[fewer]}).status == "optimal"
    with pytest.raises(ValueError, match="min_overlap 100%"):
        solve(market, min_overlap=1.0, **{name: market[name].loc[keep]})


def test_optim_constrained_style_all_nan_among_members_names_style_and_constraint(market):
    expo = market["exposures"].copy()
    members = members_of(market)
    expo.loc[members, "size"] = np.nan                          # finite only outside the benchmark
    with pytest.raises(ValueError, match=r"exposures: style 'size' \(constraint StyleDeviation\) has no finite value "
                                         rf"among the {len(members)} benchmark members"):
        solve(market, figure10_constraints(), exposures=expo)
    # one finite member is enough to constrain: the rest are filled with 0 and counted
    expo.loc[members[0], "size"] = market["exposures"].loc[members[0], "size"]
    res = solve(market, figure10_constraints(), exposures=expo)
    assert res.status in ("optimal", "relaxed")
    assert f"NaN exposures set to 0 in ['size'] ({len(members) - 1} stocks)" in res.notes
    # an unconstrained style may be all NaN: nothing reads it
    other = [c for c in market["exposures"].columns if c != "size"][0]
    expo = market["exposures"].copy()
    expo[other] = np.nan
    assert solve(market, figure10_constraints(), exposures=expo).status == "optimal"


# -- risk-model inputs (issue 19): refused where they enter, never a plain "optimal" -------------
from qlib_ext.optim import OptimInput  # noqa: E402
from qlib_ext.optim.checks import MAX_SPECIFIC_FILL, PSD_RTOL  # noqa: E402

RISK_FACTORS = ["size", "beta", "momentum"]


def risk_frames(market: dict, seed: int = 0) -> dict:
    """A valid factor covariance (PSD) over three styles and positive specific variances."""
    rng = np.random.default_rng(seed)
    L = rng.normal(0, 0.1, (3, 3))
    cov = pd.DataFrame(L @ L.T + 0.01 * np.eye(3), index=RISK_FACTORS, columns=RISK_FACTORS)
    spec = pd.Series(rng.uniform(0.01, 0.05, len(market["alpha"])), index=market["alpha"].index)
    return {"factor_cov": cov, "specific_var": spec}


def solve_risk(market: dict, **override):
    args = {**market, **risk_frames(market), **override}
    cons = [FullyInvested(), LongOnly(), StockDeviation(0.02), ConstituentFloor(0.8)]
    return IndexOptimizer(cons, risk_aversion=30.0).optimize(args.pop("alpha"), args.pop("benchmark"), **args)


def test_optim_valid_risk_inputs_solve(market):
    res = solve_risk(market)
    assert res.status == "optimal" and not [n for n in res.notes if "specific_var" in n]


def test_optim_negative_factor_variance_is_refused_naming_the_factor(market):
    """Before: "optimal" with the active size exposure pushed to its bound (the QP maximised size risk)."""
    cov = risk_frames(market)["factor_cov"].copy()
    cov.loc["size", "size"] = -5.0
    with pytest.raises(ValueError, match=r"factor_cov: negative variance for \['size'\] \(\[-5\.0\]\)"):
        solve_risk(market, factor_cov=cov)


def test_optim_non_psd_factor_covariance_names_the_most_negative_eigenvalue(market):
    cov = pd.DataFrame(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * 1e-4,
                       index=RISK_FACTORS, columns=RISK_FACTORS)          # correlation 2: eigenvalue -1e-4
    with pytest.raises(ValueError, match=r"not positive semidefinite: most negative eigenvalue -0\.0001 .*"
                                         r"loads on \['(size|beta)', '(size|beta)'"):
        solve_risk(market, factor_cov=cov)


def test_optim_rounding_off_psd_is_within_tolerance(market):
    """An eigenvalue just below 0 (rounding of a singular PSD matrix) is accepted as it is."""
    v = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    C = 1e-4 * (np.eye(3) - np.outer(v, v)) - 0.5 * PSD_RTOL * 1e-4 * np.outer(v, v)
    cov = pd.DataFrame(C, index=RISK_FACTORS, columns=RISK_FACTORS)
    assert np.linalg.eigvalsh(C)[0] < 0
    assert solve_risk(market, factor_cov=cov).status == "optimal"


def test_optim_asymmetric_factor_covariance_names_the_pair(market):
    cov = risk_frames(market)["factor_cov"].copy()
    cov.loc["size", "beta"] += 0.01
    with pytest.raises(ValueError, match=r"factor_cov: not symmetric: \['size', 'beta'\]"):
        solve_risk(market, factor_cov=cov)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_optim_non_finite_factor_covariance_names_the_entry(market, value):
    """Before: NaN fell back to the benchmark after "NumericalError"/"Unbounded" without naming the NaN."""
    cov = risk_frames(market)["factor_cov"].copy()
    cov.loc["beta", "momentum"] = value
    with pytest.raises(ValueError, match=r"factor_cov: 1 non-finite entries, first at \[\('beta', 'momentum'\)\]"):
        solve_risk(market, factor_cov=cov)


@pytest.mark.parametrize("value", [-0.01, 0.0, np.inf])
def test_optim_specific_variance_not_positive_names_the_stock(market, value):
    """Before (negative): "optimal", no note."""
    spec = risk_frames(market)["specific_var"].copy()
    spec.iloc[7] = value
    with pytest.raises(ValueError, match=rf"specific_var: 1 stocks with a variance that is not finite and > 0, "
                                         rf"e\.g\. \[\('{spec.index[7]}'"):
        solve_risk(market, specific_var=spec)


def test_optim_all_missing_specific_variance_is_an_error(market):
    """Before: "filled with the median" (of all-NaN: NaN) and HiGHS/Clarabel still said "optimal"."""
    spec = risk_frames(market)["specific_var"] * np.nan
    with pytest.raises(ValueError, match=r"specific_var: missing for all \d+ stocks of the universe"):
        solve_risk(market, specific_var=spec)


def test_optim_specific_variance_fill_only_for_a_minority(market):
    spec = risk_frames(market)["specific_var"].copy()
    res = solve_risk(market)                                  # the universe: members + stocks with a signal
    n = len(res.weights)
    k = int(MAX_SPECIFIC_FILL * n)
    few = spec.copy()
    few.loc[res.weights.index[:k]] = np.nan                  # exactly the allowed share: filled and noted
    res = solve_risk(market, specific_var=few)
    assert res.status == "optimal"
    median = float(np.median(spec.loc[res.weights.index[k:]]))
    assert f"specific_var filled with the median ({median:.3g}) for {k} stocks" in res.notes
    many = spec.copy()
    many.loc[res.weights.index[:k + 1]] = np.nan
    with pytest.raises(ValueError, match=rf"specific_var: missing for {k + 1} of the {n} stocks"):
        solve_risk(market, specific_var=many)


def test_optim_infinite_exposure_names_stock_and_factor(market):
    """Before: "optimal" (only NaN was checked)."""
    expo = market["exposures"].copy()
    expo.iloc[5, expo.columns.get_loc("beta")] = -np.inf
    with pytest.raises(ValueError, match=rf"exposures: 1 infinite values, e\.g\. \[\('{expo.index[5]}', 'beta', -inf\)\]"):
        solve(market, exposures=expo)


def test_optim_input_assembled_by_hand_is_checked_at_solve(market):
    """An OptimInput built without ``build`` cannot carry a bad covariance past the optimizer."""
    inp = OptimInput.build(market["alpha"], market["benchmark"], exposures=market["exposures"],
                           industry=market["industry"], **risk_frames(market))
    inp.factor_cov = inp.factor_cov.copy()
    inp.factor_cov[0, 0] = -5.0
    with pytest.raises(ValueError, match=r"negative variance for \['size'\]"):
        IndexOptimizer(risk_aversion=1.0).solve(inp)
    inp = OptimInput.build(market["alpha"], market["benchmark"], exposures=market["exposures"],
                           industry=market["industry"], **risk_frames(market))
    inp.specific_var = inp.specific_var * np.nan
    with pytest.raises(ValueError, match=r"specific_var: not finite and > 0"):
        IndexOptimizer(risk_aversion=1.0).solve(inp)
    inp.exposures = inp.exposures.copy()
    inp.exposures[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"exposures: 1 infinite values"):
        IndexOptimizer().solve(inp)


# -- the risk store refuses the same when it is built (issue 19) ----------------------------------
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from qlib_ext.risk import build as risk_build  # noqa: E402
from qlib_ext.risk import build_risk, load_covariance, load_meta  # noqa: E402

from .helpers import digest  # noqa: E402

RISK_CFG = {"cov_min_obs": 10}  # the micro market is short: covariances from 10 factor-return days


@pytest.fixture(scope="module")
def risk_dataset(micro_market, tmp_path_factory) -> Path:
    """A copy of the micro market (day bins) with a valid risk store built (covariances on its last dates)."""
    root = Path(shutil.copytree(micro_market, tmp_path_factory.mktemp("risk19") / "ds",
                                ignore=shutil.ignore_patterns("*.1min.bin", "1min.txt")))
    build_risk(root, progress=False, export_qlib=False, config=RISK_CFG)
    assert load_meta(root)["covariance_start"] is not None
    return root


def corrupt_on(day: str, edit):
    """A ``factor_covariance`` whose matrix of calendar date ``day`` is edited in place by ``edit(C)``."""
    real = risk_build.factor_covariance

    def fake(f, cfg):
        cov = real(f, cfg)
        t = int(np.searchsorted(risk_build.read_calendar(fake.root), pd.Timestamp(day)))
        edit(cov[t])
        return cov
    return fake


@pytest.mark.parametrize("edit, says", [
    (lambda C: C.__setitem__((-1, -1), -5.0), r"is not positive semidefinite: most negative eigenvalue -5"),
    (lambda C: C.__setitem__((0, 1), C[0, 1] + 1e-3), r"is not symmetric at \['country', "),
    (lambda C: C.__setitem__((2, 2), np.nan), r"has non-finite entries, first \['ind_"),
])
def test_risk_build_refuses_a_bad_covariance_and_keeps_the_old_store(risk_dataset, monkeypatch, edit, says):
    """Before: the store was written with the bad matrix (a NaN day silently skipped) and a backtest read it."""
    before = digest(risk_dataset, "risk")
    day = load_meta(risk_dataset)["end"]                     # a date with a complete covariance
    fake = corrupt_on(day, edit)
    fake.root = risk_dataset
    monkeypatch.setattr(risk_build, "factor_covariance", fake)
    with pytest.raises(ValueError, match=rf"risk build: factor covariance of {day} {says}.*the old store is kept"):
        build_risk(risk_dataset, progress=False, export_qlib=False, config=RISK_CFG)
    assert digest(risk_dataset, "risk") == before
    monkeypatch.undo()
    assert np.linalg.eigvalsh(load_covariance(risk_dataset, day).to_numpy())[0] > -1e-12


def test_risk_build_refuses_an_infinite_specific_risk(risk_dataset, monkeypatch):
    real = risk_build.specific_risk

    def fake(u, listed, cfg):
        spec = real(u, listed, cfg)
        spec[-3, 4] = np.inf
        return spec
    monkeypatch.setattr(risk_build, "specific_risk", fake)
    with pytest.raises(ValueError, match=r"risk build: specific risk of S[HZ]\d+ on 2024-03-27 is inf"):
        build_risk(risk_dataset, progress=False, export_qlib=False, config=RISK_CFG)
