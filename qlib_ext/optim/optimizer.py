"""The index-enhancement optimizer: maximise ``alpha . w`` under the report's constraints (SPEC section 6).

One call per rebalance, plain numpy/pandas in, an ``OptimResult`` out; it never raises for an
infeasible problem or a solver failure:

1. solve the LP with each solver in ``solvers`` until one returns a verified optimum
   (a crash, a numerical failure or an answer that breaks a bound moves on to the next); the default
   order is HiGHS's dual simplex then Clarabel for the LP, Clarabel then HiGHS for the QP
   (``solvers.default_solvers``), and HiGHS starts from the previous rebalance's optimal basis
   (``warm_start``: mapped by stock and constraint row, so it applies whenever the constraint set is
   the same, whatever stocks entered or left; it changes the path, not the optimum);
2. if the problem is infeasible, the elastic re-solve: phase 1 finds the cheapest widening of the
   soft constraints (penalty x slack), phase 2 maximises alpha with the slacks capped there;
   ``result.relaxed`` says which bound moved by how much;
3. if even that fails (hard constraints clash, or every solver failed): the current weights
   renormalised (the benchmark when there are none), recorded in ``status`` and ``attempts``.

Invalid inputs are not a solver failure: they are refused before any solve (:mod:`.checks`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .checks import check_risk_input
from .constraints import Constraint, figure10_constraints, make_constraint
from .inputs import AlphaFill, OptimInput, check_styles
from .program import HardInfeasible, build_program, effective_box
from .result import OptimResult, make_result
from .solvers import CHECK_TOL, SOLVERS, Outcome, WarmBasis, default_solvers, run_solver

SLACK_ROUND = 1e-9  # slacks below this (solver noise) do not count as a relaxation
DUST = 1e-9  # weights below this are zeroed where allowed (Clarabel leaves ~30 such, summing ~1e-10)


class IndexOptimizer:
    """Reusable optimizer; every knob is a keyword so it builds from YAML.

    constraints: Constraint objects or ``{class, module_path, kwargs}`` mappings (default: the
    report's figure-10 set).  risk_aversion: lambda of the optional tracking-risk penalty
    ``lambda * (w-b)'(X F X' + D)(w-b)`` (0 = off, as in the report).  solvers: tried in order
    (None: :func:`~qlib_ext.optim.solvers.default_solvers`).  solver_options: {solver: {option: value}}.
    elastic: relax soft constraints when infeasible.  warm_start: HiGHS starts each LP from the last
    optimal basis this optimizer found (state kept on the instance; ``reset()`` forgets it).
    """

    def __init__(self, constraints: Sequence[Constraint | Mapping[str, Any]] | None = None,
                 risk_aversion: float = 0.0, solvers: Sequence[str] | None = None,
                 solver_options: Mapping[str, Mapping[str, Any]] | None = None, elastic: bool = True,
                 check_tol: float = CHECK_TOL, warm_start: bool = True):
        self.constraints = [make_constraint(c) for c in (figure10_constraints() if constraints is None else constraints)]
        names = [c.name for c in self.constraints]
        if len(set(names)) != len(names):
            raise ValueError(f"constraint names must be unique, got {names}")
        solvers = default_solvers(risk_aversion) if solvers is None else tuple(solvers)
        unknown = [s for s in solvers if s not in SOLVERS]
        if unknown or not solvers:
            raise ValueError(f"unknown solvers {unknown} (have {sorted(SOLVERS)})")
        if risk_aversion < 0:
            raise ValueError(f"risk_aversion must be >= 0, got {risk_aversion}")
        self.risk_aversion = float(risk_aversion)
        self.solvers = tuple(solvers)
        self.solver_options = {k: dict(v) for k, v in (solver_options or {}).items()}
        self.elastic = bool(elastic)
        self.check_tol = float(check_tol)
        self.warm_start = bool(warm_start)
        self._basis: WarmBasis | None = None

    def reset(self) -> None:
        """Forget the warm-start basis (the next solve starts cold)."""
        self._basis = None

    def optimize(self, alpha: pd.Series, benchmark: pd.Series, w0: pd.Series | None = None,
                 alpha_fill: AlphaFill = "min", **frames: Any) -> OptimResult:
        """Build the input from pandas objects (see ``OptimInput.build``) and solve."""
        return self.solve(OptimInput.build(alpha, benchmark, w0, alpha_fill=alpha_fill, **frames))

    def solve(self, inp: OptimInput) -> OptimResult:
        """Optimal weights for one rebalance; see the module docstring for the fallback chain.

        The input is checked first (:func:`~qlib_ext.optim.checks.check_risk_input`): non-finite alpha or
        exposures, and with ``risk_aversion > 0`` an invalid covariance or specific variance, are a
        ValueError, never a fallback or an "optimal" answer."""
        check_risk_input(inp, self.risk_aversion)
        check_styles(inp, self.constraints)
        t0 = time.perf_counter()
        attempts: list[dict] = []
        notes = list(inp.notes)
        notes += [n for c in self.constraints if (n := c.skipped(inp))]
        try:
            prog = build_program(inp, self.constraints, "plain", self.risk_aversion)
            if prog.band_overrides:
                notes.append(f"{prog.band_overrides} stocks kept outside the stock band by tradability")
            out = self._chain(prog, "plain", attempts)
            if out.status in ("optimal", "inaccurate"):
                return self._finish(inp, prog.weights(out.x), out.status, out.solver, t0, attempts, notes,
                                    rows=prog.rows)
            if out.status == "infeasible" and self.elastic:
                res = self._elastic(inp, attempts)
                if res is not None:
                    w, status, solver, relaxed = res
                    return self._finish(inp, w, status, solver, t0, attempts, notes, relaxed, rows=prog.rows)
        except HardInfeasible as exc:
            notes.append(f"hard constraints infeasible: {exc}")
        return self._fallback(inp, t0, attempts, notes)

    def _chain(self, prog, phase: str, attempts: list) -> Outcome:
        """First verified optimum over the solvers; else the first inaccurate answer; else the last
        outcome ('infeasible' wins over 'failed' so the elastic step runs)."""
        best: Outcome | None = None
        infeasible: Outcome | None = None
        last = None
        for name in self.solvers:
            opts = dict(self.solver_options.get(name, {}))
            if name == "highs" and phase == "plain" and self.warm_start and self._basis is not None:
                opts["basis"] = self._basis
            out = run_solver(name, prog, self.check_tol, **opts)
            attempts.append({"phase": phase, **out.as_dict()})
            if phase == "plain" and out.status == "optimal" and out.basis is not None and self.warm_start:
                self._basis = out.basis
            last = out
            if out.status == "optimal":
                return out
            if out.status == "inaccurate" and best is None:
                best = out
            if out.status == "infeasible":
                infeasible = infeasible or out
                break  # a certificate of infeasibility: relax rather than ask another solver
        return best or infeasible or last

    def _elastic(self, inp: OptimInput, attempts: list):
        feas = build_program(inp, self.constraints, "feasibility")
        out = self._chain(feas, "elastic_feasibility", attempts)
        if out.status not in ("optimal", "inaccurate"):
            return None
        slack = feas.slacks(out.x)
        caps = {k: v * (1 + 1e-6) + SLACK_ROUND for k, v in slack.items()}
        prog = build_program(inp, self.constraints, "capped", self.risk_aversion, slack_caps=caps)
        out = self._chain(prog, "elastic_capped", attempts)
        if out.status not in ("optimal", "inaccurate"):
            return None
        relaxed = {k: v for k, v in prog.slacks(out.x).items() if v > SLACK_ROUND}
        status = "relaxed" if relaxed and out.status == "optimal" else out.status
        return prog.weights(out.x), status, out.solver, relaxed

    def _finish(self, inp, w, status, solver, t0, attempts, notes, relaxed=None, clip=True,
                rows=None) -> OptimResult:
        if clip:  # interior-point noise (~1e-10) must not leave a weight below 0, past a tradability
            L, U = effective_box(inp, self.constraints)[:2]  # bound, or as a dust position
            w = np.clip(w, L, U)
            w = np.where((w < DUST) & (L <= 0), 0.0, w)
        return make_result(inp, self.constraints, w, rows=rows, status=status, solver=solver,
                           solve_time=time.perf_counter() - t0, relaxed=relaxed or {},
                           attempts=attempts, notes=notes)

    def _fallback(self, inp: OptimInput, t0: float, attempts: list, notes: list) -> OptimResult:
        if inp.has_w0:
            w, status = inp.w0 / inp.w0.sum(), "fallback_w0"
        else:
            w, status = inp.benchmark.copy(), "fallback_benchmark"
        notes.append(f"no solver answer; returned {status.split('_')[1]} weights")
        return self._finish(inp, w, status, "none", t0, attempts, notes, clip=False)
