"""The optimizer's answer and its diagnostics, evaluated on the returned weights by brute force."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .inputs import OptimInput
from .program import effective_box

BIND_TOL = 1e-7


@dataclass
class OptimResult:
    """Weights of one rebalance and what happened on the way.

    status: 'optimal' | 'inaccurate' (best answer a solver flagged) | 'relaxed' (elastic re-solve;
    see ``relaxed``) | 'fallback_w0' (current weights renormalised) | 'fallback_benchmark' (no w0).
    ``solve_time``: seconds from input to weights (assembly and every solver attempt).
    ``relaxed``: {slack key: widening of the bound, in the constraint's unit}.  ``binding``:
    {constraint: rows at a bound}.  ``violations``: {constraint: largest violation of the
    *unrelaxed* bound} (0 when met).  ``attempts``: every solver call, in order.
    """

    weights: pd.Series
    status: str
    solver: str
    solve_time: float
    relaxed: dict = field(default_factory=dict)
    binding: dict = field(default_factory=dict)
    violations: dict = field(default_factory=dict)
    turnover: float = float("nan")
    constituent_weight: float = float("nan")
    active_exposures: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    alpha: float = float("nan")
    attempts: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the answer is a solver's optimum of the stated (possibly relaxed) problem."""
        return self.status in ("optimal", "relaxed")

    def summary(self) -> dict:
        """Flat record for logs and recorders."""
        return {"status": self.status, "solver": self.solver, "solve_time": self.solve_time,
                "turnover": self.turnover, "constituent_weight": self.constituent_weight,
                "alpha": self.alpha, "n_holdings": int((self.weights > 0).sum()),
                **{f"relaxed[{k}]": v for k, v in self.relaxed.items()},
                **{f"active[{k}]": v for k, v in self.active_exposures.items()}}


def evaluate(inp: OptimInput, constraints: list, w: np.ndarray, tol: float = BIND_TOL,
             rows: dict | None = None) -> tuple[dict, dict]:
    """(binding, violations) of every constraint at ``w``, from each constraint's own ``check``
    (``rows``: {name: LinearRows} already built for this input, to skip rebuilding them)."""
    binding: dict[str, int] = {}
    viol: dict[str, float] = {}
    band = effective_box(inp, constraints)[2:4]
    for c in constraints:
        for value, lo, hi in c.check(inp, w, band, (rows or {}).get(c.name)):
            gap = np.maximum(np.maximum(lo - value, value - hi), 0.0)
            viol[c.name] = max(viol.get(c.name, 0.0), float(gap.max(initial=0.0)))
            at = (np.abs(value - lo) <= tol) | (np.abs(value - hi) <= tol)
            if at.any():
                binding[c.name] = binding.get(c.name, 0) + int(at.sum())
    return binding, viol


def make_result(inp: OptimInput, constraints: list, w: np.ndarray, rows: dict | None = None,
                **fields) -> OptimResult:
    """Result with the derived figures (turnover, constituent weight, active exposures, checks)."""
    binding, viol = evaluate(inp, constraints, w, rows=rows)
    active = pd.Series(inp.exposures.T @ (w - inp.benchmark), index=inp.factors, dtype=float)
    return OptimResult(
        weights=pd.Series(w, index=inp.index, name="weight"),
        turnover=float(0.5 * np.abs(w - inp.w0).sum()),
        constituent_weight=float(w[inp.members].sum()),
        active_exposures=active, alpha=float(inp.alpha @ w),
        binding=binding, violations=viol, **fields,
    )
