"""Solver back-ends for a ``Program``: Clarabel (interior point) and HiGHS (simplex / QP), direct.

Both get the sparse matrices straight, no cvxpy in between.  The program is rescaled first:
weights in percent (bounds x 100) and the objective divided by its largest coefficient, which
halves Clarabel's iteration count on these problems (weights ~1e-3 against alphas ~1).
Default options per solver are in ``DEFAULT_OPTIONS``; the default order (:func:`default_solvers`)
is HiGHS's dual simplex first for the pure LP (a vertex in ~50 iterations of a ~40-row problem) and
Clarabel first for the QP (``risk_aversion > 0``), the other one as the fallback.  Every outcome is
checked against the unscaled program by brute force; a solution that breaks a bound by more than
``check_tol`` is downgraded to 'inaccurate'.

Warm start: an optimal LP vertex from HiGHS comes back as a :class:`WarmBasis` keyed by stock, side
and row key; given to the next ``solve_highs`` it is mapped onto that program (stocks that are new
start non-basic at their lower bound, rows not seen before basic) and passed as an *alien* basis,
which HiGHS completes and repairs.  It only changes where the simplex starts, never the optimum.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .program import Program

SCALE = 100.0
CHECK_TOL = 1e-7
# Measured on bench/optimizer.py problems (n = 5,000): Clarabel without iterative refinement is ~40%
# faster at the same accuracy (answers are verified anyway); HiGHS's presolve costs more than the
# ~20 simplex iterations it saves.  Caller options override these.
# HiGHS without its own scaling: our program is scaled already (percent weights, unit objective), and
# on the bench problems its scaling doubled the simplex iterations.
DEFAULT_OPTIONS: dict[str, dict] = {"clarabel": {"iterative_refinement_enable": False},
                                    "highs": {"presolve": "off", "simplex_scale_strategy": 0}}
#: HiGHS basis status codes (``highspy.HighsBasisStatus``)
LOWER, BASIC, UPPER, ZERO = 0, 1, 2, 3
#: bound distance (scaled units) under which a vertex coordinate counts as at its bound
AT_BOUND = 1e-9


def default_solvers(risk_aversion: float = 0.0) -> tuple[str, ...]:
    """The solver order: HiGHS (dual simplex) first for the LP, Clarabel first for the QP."""
    return ("clarabel", "highs") if risk_aversion > 0 else ("highs", "clarabel")


@dataclass
class WarmBasis:
    """A simplex basis of one program, keyed so that it maps onto the next rebalance's program."""

    index: object             # pd.Index of the stocks
    col_stock: np.ndarray     # stock position per column (-1: not a trade column)
    col_side: np.ndarray      # 0 = u, 1 = v
    col_status: np.ndarray    # HiGHS status per column
    row_keys: list
    row_status: np.ndarray

    def statuses_for(self, prog: Program) -> tuple[np.ndarray, np.ndarray]:
        """Column and row statuses of ``prog`` taken from this basis by identity (see the module docstring)."""
        table = np.full(2 * len(self.index) + 1, LOWER, dtype=np.int8)  # last slot: unknown stock
        trade = self.col_stock >= 0
        table[2 * self.col_stock[trade] + self.col_side[trade]] = self.col_status[trade]
        pos = np.asarray(self.index.get_indexer(prog.index))
        stock = np.where(prog.col_stock >= 0, pos[np.maximum(prog.col_stock, 0)], -1)
        slot = np.where(stock >= 0, 2 * stock + np.maximum(prog.col_side, 0), len(table) - 1)
        cols = table[slot]
        seen: dict = {}
        for key, status in zip(_occurrences(self.row_keys), self.row_status):
            seen[key] = status
        rows = np.array([seen.get(k, BASIC) for k in _occurrences(prog.row_keys)], dtype=np.int8)
        return _valid_status(cols, prog.col_lo, prog.col_hi), _valid_status(rows, prog.row_lo, prog.row_hi)


def _occurrences(keys: list) -> list:
    """``(key, i)``: the i-th row of that key, so that repeated keys map one to one."""
    count: Counter = Counter()
    out = []
    for k in keys:
        out.append((k, count[k]))
        count[k] += 1
    return out


def _valid_status(status: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A non-basic status on an infinite bound moved to the finite one (or ZERO when free)."""
    s = status.copy()
    lo_inf, hi_inf = ~np.isfinite(lo), ~np.isfinite(hi)
    s[(s == LOWER) & lo_inf] = UPPER
    s[(s == UPPER) & hi_inf] = LOWER
    s[(s != BASIC) & lo_inf & hi_inf] = ZERO
    return s


def _vertex_status(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Status of each coordinate of a vertex: at its lower bound, at its upper bound, else basic."""
    s = np.full(len(v), BASIC, dtype=np.int8)
    s[np.abs(v - hi) <= AT_BOUND * np.maximum(1.0, np.abs(hi))] = UPPER
    s[np.abs(v - lo) <= AT_BOUND * np.maximum(1.0, np.abs(lo))] = LOWER
    return s


@dataclass
class Outcome:
    """One solver attempt: status in {'optimal', 'inaccurate', 'infeasible', 'failed'}."""

    solver: str
    status: str
    seconds: float
    x: np.ndarray | None = None
    message: str = ""
    iterations: int = 0
    basis: WarmBasis | None = None
    warm: bool = False

    def as_dict(self) -> dict:
        return {"solver": self.solver, "status": self.status, "seconds": round(self.seconds, 6),
                "message": self.message, "iterations": self.iterations, "warm": self.warm}


def _scaled(prog: Program) -> tuple[np.ndarray, sp.csc_matrix | None, float]:
    """Objective and Hessian for variables in percent; returns (c, P, objective scale)."""
    k = float(np.max(np.abs(prog.c), initial=0.0)) or 1.0
    P = None if prog.P is None else sp.csc_matrix(prog.P / (k * SCALE))
    return prog.c / k, P, k


def _stacked_rows(A: sp.csr_matrix, row_sel: list, col_sel: list, rhs: list) -> tuple[sp.csc_matrix, np.ndarray]:
    """CSC of ``[s1 A[m1]; s2 A[m2]; ...; t1 I[c1]; ...]`` built from COO triplets in one pass."""
    coo = A.tocoo()
    rows, cols, vals, offset = [], [], [], 0
    for mask, sign in row_sel:
        new_id = np.cumsum(mask) - 1 + offset
        keep = mask[coo.row]
        rows.append(new_id[coo.row[keep]])
        cols.append(coo.col[keep])
        vals.append(sign * coo.data[keep])
        offset += int(mask.sum())
    for idx, sign in col_sel:
        rows.append(offset + np.arange(len(idx)))
        cols.append(idx)
        vals.append(np.full(len(idx), sign))
        offset += len(idx)
    M = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(offset, A.shape[1]))
    return M, np.concatenate(rhs)


def solve_clarabel(prog: Program, **settings) -> Outcome:
    """Clarabel on ``[A; I]`` split into a zero cone (equalities) and a non-negative cone."""
    import clarabel

    t0 = time.perf_counter()
    c, P, _ = _scaled(prog)
    m = prog.n_cols
    eq = prog.row_lo == prog.row_hi
    up, dn = np.isfinite(prog.row_hi) & ~eq, np.isfinite(prog.row_lo) & ~eq
    cu, cd = np.flatnonzero(np.isfinite(prog.col_hi)), np.flatnonzero(np.isfinite(prog.col_lo))
    M, rhs = _stacked_rows(prog.A, [(eq, 1.0), (up, 1.0), (dn, -1.0)], [(cu, 1.0), (cd, -1.0)],
                           [prog.row_hi[eq], prog.row_hi[up], -prog.row_lo[dn], prog.col_hi[cu], -prog.col_lo[cd]])
    rhs *= SCALE
    cones = [clarabel.ZeroConeT(int(eq.sum())), clarabel.NonnegativeConeT(M.shape[0] - int(eq.sum()))]
    s = clarabel.DefaultSettings()
    s.verbose = False
    for key, val in settings.items():
        setattr(s, key, val)
    P = P if P is not None else sp.csc_matrix((m, m))
    try:
        sol = clarabel.DefaultSolver(sp.triu(P, format="csc"), c, M, rhs, cones, s).solve()
    except Exception as exc:  # noqa: BLE001 - any solver crash becomes a recorded failure
        return Outcome("clarabel", "failed", time.perf_counter() - t0, message=f"{type(exc).__name__}: {exc}")
    status = str(sol.status)
    kind = {"Solved": "optimal", "AlmostSolved": "inaccurate", "PrimalInfeasible": "infeasible",
            "AlmostPrimalInfeasible": "infeasible"}.get(status, "failed")
    x = np.asarray(sol.x) / SCALE if kind in ("optimal", "inaccurate") else None
    return Outcome("clarabel", kind, time.perf_counter() - t0, x, status, int(sol.iterations))


def solve_highs(prog: Program, basis: WarmBasis | None = None, **options) -> Outcome:
    """HiGHS with column and row bounds passed natively (dual simplex for LPs, its QP solver else).

    ``basis``: a previous rebalance's :class:`WarmBasis` to start the simplex from (LP only).  An
    optimal LP answer carries its own basis in ``Outcome.basis`` for the next call.
    """
    import highspy

    t0 = time.perf_counter()
    c, P, _ = _scaled(prog)
    inf = highspy.kHighsInf
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, val in options.items():
        h.setOptionValue(key, val)
    A = sp.csc_matrix(prog.A)
    n, m = prog.n_cols, A.shape[0]
    col_lo, col_hi = (np.where(np.isfinite(v), SCALE * v, s * inf) for v, s in ((prog.col_lo, -1), (prog.col_hi, 1)))
    row_lo, row_hi = (np.where(np.isfinite(v), SCALE * v, s * inf) for v, s in ((prog.row_lo, -1), (prog.row_hi, 1)))
    lp_only = P is None
    warm = lp_only and basis is not None and prog.col_stock is not None and len(prog.row_keys) == m
    # our warm-start mapping runs outside the solver's try: a failure there is a bug and raises,
    # it must not pass for a solver failure (and a silent move to the next solver)
    hb = _highs_basis(basis.statuses_for(prog)) if warm else None
    try:
        # the array overload of passModel: no element-wise conversion of Python sequences
        h.passModel(n, m, A.nnz, int(highspy.MatrixFormat.kColwise), int(highspy.ObjSense.kMinimize), 0.0,
                    c, col_lo, col_hi, row_lo, row_hi, A.indptr[:-1].astype(np.int32), A.indices.astype(np.int32),
                    A.data.astype(np.float64), np.zeros(n, dtype=np.int32))
        if not lp_only:
            Q = sp.tril(P, format="csc")
            hess = highspy.HighsHessian()
            hess.dim_, hess.format_ = prog.n_cols, highspy.HessianFormat.kTriangular
            hess.start_, hess.index_, hess.value_ = Q.indptr, Q.indices, Q.data
            h.passHessian(hess)
        if hb is not None:
            warm = h.setBasis(hb) == highspy.HighsStatus.kOk
        h.run()
    except Exception as exc:  # noqa: BLE001
        return Outcome("highs", "failed", time.perf_counter() - t0, message=f"{type(exc).__name__}: {exc}")
    status = h.modelStatusToString(h.getModelStatus())
    kind = {"Optimal": "optimal", "Infeasible": "infeasible"}.get(status, "failed")
    out = Outcome("highs", kind, time.perf_counter() - t0, message=status, warm=bool(warm))
    info = h.getInfo()
    out.iterations = int(info.simplex_iteration_count) + int(getattr(info, "qp_iteration_count", 0))
    if kind == "optimal":
        sol = h.getSolution()
        xs = np.asarray(sol.col_value)
        out.x = xs / SCALE
        if lp_only and prog.col_stock is not None and len(prog.row_keys) == m:
            out.basis = WarmBasis(prog.index, prog.col_stock, prog.col_side, _vertex_status(xs, col_lo, col_hi),
                                  list(prog.row_keys), _vertex_status(np.asarray(sol.row_value), row_lo, row_hi))
    out.seconds = time.perf_counter() - t0
    return out


def _highs_basis(statuses: tuple[np.ndarray, np.ndarray]):
    """An *alien* ``highspy.HighsBasis`` from (column, row) status codes: HiGHS completes / repairs a
    basis with the wrong number of basic variables."""
    import highspy

    cols, rows = statuses
    status = [highspy.HighsBasisStatus(i) for i in range(5)]
    hb = highspy.HighsBasis()
    hb.col_status, hb.row_status = [status[i] for i in cols], [status[i] for i in rows]
    hb.alien = True
    return hb


SOLVERS: dict[str, Callable[..., Outcome]] = {"clarabel": solve_clarabel, "highs": solve_highs}


def run_solver(name: str, prog: Program, check_tol: float = CHECK_TOL, **options) -> Outcome:
    """Solve with ``name`` and verify the answer against the program's bounds."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r} (have {sorted(SOLVERS)})")
    out = SOLVERS[name](prog, **{**DEFAULT_OPTIONS.get(name, {}), **options})
    if out.x is not None:
        viol = prog.violation(out.x)
        if viol > check_tol and out.status == "optimal":
            out.status, out.message = "inaccurate", f"{out.message}; max bound violation {viol:.2e}"
    return out
