"""Brute-force constraint checks for optimizer tests (plain Python loops over stocks, written from the
report's definitions, not from qlib_ext.optim's constraint code), and tests that they can fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.optim import OptimInput
from qlib_ext.optim.random_problem import SyntheticMarket

TOL = 1e-7


def brute_force_violations(inp: OptimInput, w, stock=None, industry=None, styles=None, turnover=None,
                           floor=None, moments=None, budget=1.0, tradability=True) -> dict:
    """{check: largest violation} at weights ``w`` (Series on inp.index or array); 0 means it holds."""
    w = np.asarray(pd.Series(w).reindex(inp.index).fillna(0.0) if isinstance(w, pd.Series) else w, float)
    b, w0, n = inp.benchmark, inp.w0, inp.n
    out = {"budget": abs(sum(w) - budget), "long_only": max(0.0, -min(w))}
    locked_out = set()  # stocks a tradability rule keeps outside their band: they must stay at w0
    if tradability:
        worst = 0.0
        for i in range(n):
            if inp.suspended[i]:
                worst = max(worst, abs(w[i] - w0[i]))
            if inp.limit_up[i]:
                worst = max(worst, w[i] - w0[i])
            if inp.limit_down[i]:
                worst = max(worst, w0[i] - w[i])
            if stock is not None and (inp.suspended[i] and abs(w0[i] - b[i]) > stock
                                      or inp.limit_up[i] and w0[i] < b[i] - stock
                                      or inp.limit_down[i] and w0[i] > b[i] + stock):
                locked_out.add(i)
        out["tradability"] = worst
    if stock is not None:
        out["stock"] = max([abs(w[i] - b[i]) - stock for i in range(n) if i not in locked_out] + [0.0])
        out["locked_out_moved"] = max([abs(w[i] - w0[i]) for i in locked_out] + [0.0])
    if industry is not None:
        dev: dict = {}
        for i in range(n):
            dev[inp.industry[i]] = dev.get(inp.industry[i], 0.0) + w[i] - b[i]
        out["industry"] = max(0.0, max(abs(v) for v in dev.values()) - industry)
    for s, bound in (styles or {}).items():
        x = inp.exposure(s)
        out[f"style[{s}]"] = max(0.0, abs(sum(x[i] * (w[i] - b[i]) for i in range(n))) - bound)
    if turnover is not None:
        out["turnover"] = max(0.0, 0.5 * sum(abs(w[i] - w0[i]) for i in range(n)) - turnover)
    if floor is not None:
        out["floor"] = max(0.0, floor - sum(w[i] for i in range(n) if b[i] > 0))
    for k, bound in (moments or {}).items():
        out[f"moment{k}"] = max(0.0, abs(moment(inp, w, k) - moment(inp, b, k)) - bound)
    return out


def moment(inp: OptimInput, v, k: int, factor: str = "size") -> float:
    """Report p.13: sum_i v_i (x_i - x_b)^k with x_b the benchmark's size exposure (loops)."""
    x = inp.exposure(factor)
    x_b = sum(inp.benchmark[i] * x[i] for i in range(inp.n))
    return sum(v[i] * (x[i] - x_b) ** k for i in range(inp.n))


def assert_holds(viol: dict, tol: float = TOL) -> None:
    bad = {k: v for k, v in viol.items() if v > tol}
    assert not bad, f"constraints violated: {bad}"


@pytest.fixture(scope="module")
def cross_section() -> OptimInput:
    return SyntheticMarket(300, n_industries=8, seed=11).cross_section(0)


def test_checks_pass_on_benchmark(cross_section):
    inp = cross_section
    viol = brute_force_violations(inp, inp.benchmark, stock=0.01, industry=0.02, styles={"size": 0.0},
                                  floor=1.0, moments={2: 0.0, 3: 0.0}, tradability=False)
    assert_holds(viol, 1e-9)


def test_checks_fail_when_broken(cross_section):
    inp = cross_section
    b = inp.benchmark
    tilted = b.copy()
    big = np.argmax(b)
    small = np.flatnonzero(b == 0)[0]
    tilted[big] -= 0.03
    tilted[small] += 0.03  # 3% into one non-member
    viol = brute_force_violations(inp, tilted, stock=0.01, floor=1.0, budget=1.0, tradability=False)
    assert viol["stock"] == pytest.approx(0.02)
    assert viol["floor"] == pytest.approx(0.03)
    size = inp.exposure("size")
    expect = abs(0.03 * (size[small] - size[big]))
    assert brute_force_violations(inp, tilted, styles={"size": 0.0})["style[size]"] == pytest.approx(expect)
    assert brute_force_violations(inp, b * 0.9)["budget"] == pytest.approx(0.1)
    assert brute_force_violations(inp, tilted, moments={2: 0.0})["moment2"] > 0


def test_isin_matches_pandas_with_repeats_and_missing_codes():
    from qlib_ext.optim.inputs import isin

    values = pd.Index(["SH600000", "SZ000001", "SH600000", "BJ830000", "SZ300750"])
    pool = ["SZ000001", "SH600000", "SH600000", "SH688981"]  # repeated, and a code not in values
    assert isin(values, pool).tolist() == values.isin(pool).tolist() == [True, True, True, False, False]
    assert not isin(values, []).any()


def test_factor_cov_rounding_is_averaged_and_the_tolerances_are_the_boundary():
    """Asymmetry and negative eigenvalues up to the documented tolerances are rounding (accepted, the matrix
    symmetrised); just past them they are refused (qlib_ext.optim.checks)."""
    from qlib_ext.optim.checks import PSD_RTOL, SYM_RTOL, check_factor_cov

    names = ["a", "b"]
    C = np.array([[2.0, 1.0], [1.0, 2.0]])
    tilted = C.copy()
    tilted[0, 1] += 0.5 * SYM_RTOL * 2.0
    out = check_factor_cov(tilted, names)
    np.testing.assert_array_equal(out, out.T)
    assert out[0, 1] == pytest.approx(1.0 + 0.25 * SYM_RTOL * 2.0, abs=1e-15)
    tilted[0, 1] = 1.0 + 2 * SYM_RTOL * 2.0
    with pytest.raises(ValueError, match=r"not symmetric: \['a', 'b'\]"):
        check_factor_cov(tilted, names)
    v = np.array([1.0, -1.0]) / np.sqrt(2)
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    for lam_min, ok in ((-0.5 * PSD_RTOL, True), (-2 * PSD_RTOL, False)):
        M = np.outer(u, u) + lam_min * np.outer(v, v)            # eigenvalues 1 and lam_min
        if ok:
            check_factor_cov(M, names)
        else:
            with pytest.raises(ValueError, match=r"most negative eigenvalue -2e-08"):
                check_factor_cov(M, names)
