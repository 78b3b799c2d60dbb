"""The same problem stated plainly in cvxpy, as a cross-check and as bench/optimizer.py's peers.

``w`` is the variable, boxes are ``w >= lo`` constraints and every other constraint writes its own
naive form (``cvxpy_data`` / ``cvxpy_form``: rows as ``G @ w``, turnover ``sum |w - w0|`` through
``cp.abs``): the way a user would write it, sharing only the constraint objects' own statements and
the tradability override rule (``effective_box``) with ``program.py``.

* ``parametric=False``: data baked in as constants; a new problem (and canonicalisation) per date.
* ``parametric=True``: data as ``cp.Parameter``s (DPP), compiled once per shape and re-solved;
  infinite bounds become +-``BIG`` since a Parameter cannot hold inf.  No risk term here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .inputs import OptimInput
from .program import effective_box

BIG = 1e4


class CvxpyLP:
    """``solve(inp) -> w`` for ``constraints`` (feasible problems only; no elastic mode)."""

    def __init__(self, constraints: list, parametric: bool = False, solver: str = "CLARABEL",
                 risk_aversion: float = 0.0, **solver_kwargs):
        if parametric and risk_aversion:
            raise ValueError("CvxpyLP: the parametric statement has no risk term")
        self.constraints, self.parametric, self.solver = list(constraints), parametric, solver
        self.risk_aversion, self.solver_kwargs = risk_aversion, solver_kwargs
        self._compiled: dict = {}
        self.last_status = ""

    def _data(self, inp: OptimInput) -> dict:
        """Every number the problem needs: ``{"": {alpha, lo, hi}, i: constraint i's cvxpy_data}``
        (sparse matrices made dense and ``inf`` clipped when parametric)."""
        _, _, lo, hi, _ = effective_box(inp, self.constraints)
        d = {"": {"alpha": inp.alpha, "lo": lo, "hi": hi}}
        d.update({i: c.cvxpy_data(inp) for i, c in enumerate(self.constraints)})
        if self.parametric:
            d = {i: {k: np.clip(v.toarray() if sp.issparse(v) else v, -BIG, BIG) for k, v in di.items()}
                 for i, di in d.items()}
        return d

    def _build(self, data: dict):
        import cvxpy as cp

        if self.parametric:
            p = {i: {k: cp.Parameter(np.shape(v), name=f"{k}{i}") for k, v in di.items()} for i, di in data.items()}
        else:
            p = data
        n = len(data[""]["alpha"])
        w = cp.Variable(n)
        cons = [w >= p[""]["lo"], w <= p[""]["hi"]]
        for i, c in enumerate(self.constraints):
            cons += c.cvxpy_form(w, p[i], data[i], self.parametric)
        objective = p[""]["alpha"] @ w
        if self.risk_aversion:
            objective = objective - self.risk_aversion * self._risk(w)
        prob = cp.Problem(cp.Maximize(objective), cons)
        return prob, w, (p if self.parametric else None)

    def _risk(self, w):
        import cvxpy as cp

        inp = self._inp
        X = np.stack([inp.exposure(f) for f in inp.risk_factors], axis=1)
        d = w - inp.benchmark
        return cp.sum(cp.multiply(inp.specific_var, cp.square(d))) + cp.quad_form(X.T @ d, cp.psd_wrap(inp.factor_cov))

    def solve(self, inp: OptimInput) -> np.ndarray:
        """Optimal weights (NaN where the solver gave no answer; see ``last_status``)."""
        self._inp = inp
        data = self._data(inp)
        key = tuple((i, tuple(sorted((k, np.shape(v)) for k, v in di.items()))) for i, di in data.items())
        key += tuple(c.cvxpy_signature(data[i]) for i, c in enumerate(self.constraints))
        if not self.parametric or key not in self._compiled:
            self._compiled[key] = self._build(data)
        prob, w, params = self._compiled[key]
        if params is not None:
            for i, di in data.items():
                for k, v in di.items():
                    params[i][k].value = v
        prob.solve(solver=self.solver, **self.solver_kwargs)
        self.last_status = prob.status
        return np.full(inp.n, np.nan) if w.value is None else np.asarray(w.value)
