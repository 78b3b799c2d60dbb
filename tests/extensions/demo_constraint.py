"""A constraint added in one file (test-only; issue 20): the signal's top names may be overweight by
at most ``excess`` in total.

    sum_{i in T} (w_i - b_i) <= excess,   T = the top ``share`` of the universe by alpha

A concentration cap on the signal's favourites (the figure-10 bands cap each stock and each
industry, not the bet on the signal's head).  It states only its rows; the program, the checks,
the elastic re-solve and the cvxpy reference take it from there.  From a YAML::

    optimizer:
      constraints:
        - {class: TopSignalCap, module_path: extensions.demo_constraint, kwargs: {share: 0.1, excess: 0.02}}
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from qlib_ext.optim import Constraint, LinearRows, OptimInput


class TopSignalCap(Constraint):
    """``sum_{i in T} (w_i - b_i) <= excess`` over the top ``share`` of stocks by alpha (weight units)."""

    def __init__(self, share: float = 0.1, excess: float = 0.02, name: str | None = None, penalty: float = 5.0):
        super().__init__(name, penalty)
        if not 0 < share <= 1 or excess < 0:
            raise ValueError(f"{self.name}: share must be in (0, 1] and excess >= 0, got {share}, {excess}")
        self.share, self.excess = float(share), float(excess)

    def top(self, inp: OptimInput) -> np.ndarray:
        """Mask of the top ``share`` of the universe by alpha (at least one stock)."""
        k = max(1, int(round(self.share * inp.n)))
        mask = np.zeros(inp.n, dtype=bool)
        mask[np.argsort(-inp.alpha, kind="stable")[:k]] = True
        return mask

    def rows(self, inp: OptimInput) -> LinearRows:
        g = self.top(inp).astype(float)
        return LinearRows(sp.csr_matrix(g[None, :]), np.array([-np.inf]), np.array([g @ inp.benchmark + self.excess]),
                          [self.name])
