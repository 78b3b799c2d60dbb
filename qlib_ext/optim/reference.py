"""The same problem stated plainly in cvxpy, as a cross-check and as bench/optimizer.py's peers.

``w`` is the variable, turnover is ``sum |w - w0|`` through ``cp.abs``, boxes are ``w >= lo``
constraints: the way a user would write it, sharing only the constraint objects' own statements
(``rows`` / ``box``) and the tradability override rule with ``program.py``.

* ``parametric=False``: data baked in as constants; a new problem (and canonicalisation) per date.
* ``parametric=True``: data as ``cp.Parameter``s (DPP), compiled once per shape and re-solved;
  infinite bounds become +-``BIG`` since a Parameter cannot hold inf.  No risk term here.
"""

from __future__ import annotations

import numpy as np

from .inputs import OptimInput
from .program import effective_box, turnover_constraint

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
        """Every number the problem needs, by name (arrays; ``inf`` clipped when parametric)."""
        _, _, lo, hi, _ = effective_box(inp, self.constraints)
        d = {"alpha": inp.alpha, "lo": lo, "hi": hi}
        tc = turnover_constraint(inp, self.constraints)
        if tc is not None:
            d["w0"], d["limit"] = inp.w0, np.array(2 * tc.limit)
        for i, c in enumerate(self.constraints):
            if c.kind == "linear":
                rows = c.rows(inp)
                G = rows.G.toarray() if self.parametric else rows.G
                d[f"G{i}"], d[f"lo{i}"], d[f"hi{i}"] = G, rows.lo, rows.hi
        if self.parametric:
            d = {k: np.clip(v, -BIG, BIG) for k, v in d.items()}
        return d

    def _build(self, data: dict, eq: dict):
        import cvxpy as cp

        if self.parametric:
            p = {k: cp.Parameter(np.shape(v), name=k) for k, v in data.items()}
        else:
            p = data
        n = len(data["alpha"])
        w = cp.Variable(n)
        cons = [w >= p["lo"], w <= p["hi"]]
        if "w0" in p:
            cons.append(cp.sum(cp.abs(w - p["w0"])) <= p["limit"])
        for i, c in enumerate(self.constraints):
            if c.kind != "linear":
                continue
            Gw = p[f"G{i}"] @ w
            if eq[i]:
                cons.append(Gw == p[f"lo{i}"])
                continue
            lo_fin, hi_fin = np.isfinite(data[f"lo{i}"]), np.isfinite(data[f"hi{i}"])
            if lo_fin.all() or self.parametric:
                cons.append(Gw >= p[f"lo{i}"])
            elif lo_fin.any():
                cons.append(Gw[np.flatnonzero(lo_fin)] >= data[f"lo{i}"][lo_fin])
            if hi_fin.all() or self.parametric:
                cons.append(Gw <= p[f"hi{i}"])
            elif hi_fin.any():
                cons.append(Gw[np.flatnonzero(hi_fin)] <= data[f"hi{i}"][hi_fin])
        objective = p["alpha"] @ w
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
        eq = {i: bool(np.all(data[f"lo{i}"] == data[f"hi{i}"])) for i, c in enumerate(self.constraints)
              if c.kind == "linear"}
        key = tuple(sorted((k, np.shape(v)) for k, v in data.items())) + tuple(sorted(eq.items()))
        if not self.parametric or key not in self._compiled:
            self._compiled[key] = self._build(data, eq)
        prob, w, params = self._compiled[key]
        if params is not None:
            for k, v in data.items():
                params[k].value = v
        prob.solve(solver=self.solver, **self.solver_kwargs)
        self.last_status = prob.status
        return np.full(inp.n, np.nan) if w.value is None else np.asarray(w.value)
