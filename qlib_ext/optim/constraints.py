"""Constraint objects of the index-enhancement LP (report figure 10 and p.13-14; SPEC section 6).

Each constraint is a small object with its bound(s) as keyword arguments and a ``name`` used in
diagnostics.  It states itself in one of three shapes, read by the program assembler
(``program.py``), the plain cvxpy statement (``reference.py``) and the result checks alike:

* ``linear``:   ``lo <= G @ w <= hi`` rows (``rows(inp)``), each row tagged with a slack key;
* ``box``:      ``lo <= w <= hi`` per stock (``box(inp)``);
* ``turnover``: ``1/2 * sum |w - w0| <= limit`` (one-sided turnover).

Hard constraints (budget, long-only, tradability) are never relaxed; soft ones get one
non-negative slack per key in the elastic re-solve, priced by ``penalty`` per unit of widening
(in the constraint's own unit: weight for most, std units for styles, exposure**k for moments).
Default penalties relax turnover (1) before any risk or benchmark constraint (10): after an index
reconstitution, trading more is preferred to breaking the constituent floor or a deviation band.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .inputs import OptimInput

DEFAULT_PENALTY = 10.0


@dataclass
class LinearRows:
    """``lo <= G @ w <= hi`` with one slack key per row (rows sharing a key share one slack)."""

    G: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray
    keys: list


class Constraint:
    """Base: ``kind`` in {'linear', 'box', 'turnover'}; ``soft`` ones may be relaxed elastically."""

    kind: ClassVar[str] = "linear"
    soft: ClassVar[bool] = True

    def __init__(self, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        self.name = name or type(self).__name__
        if penalty <= 0:
            raise ValueError(f"{self.name}: penalty must be positive, got {penalty}")
        self.penalty = float(penalty)

    def rows(self, inp: OptimInput) -> LinearRows:
        raise NotImplementedError(f"{self.name} is a {self.kind} constraint")

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{self.name} is a {self.kind} constraint")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in ("name", "penalty"))
        return f"{type(self).__name__}({args})"


def _check_bound(name: str, value: float, lo: float = 0.0, hi: float = np.inf) -> float:
    value = float(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name}: bound {value} outside [{lo}, {hi}]")
    return value


def _deviation_rows(G: sp.csr_matrix, b: np.ndarray, bound: np.ndarray, keys: list) -> LinearRows:
    """Rows ``|G (w - b)| <= bound``."""
    gb = np.asarray(G @ b).ravel()
    return LinearRows(G, gb - bound, gb + bound, keys)


class FullyInvested(Constraint):
    """Budget ``sum(w) = total`` (position 1 in figure 10); hard."""

    soft = False

    def __init__(self, total: float = 1.0, name: str | None = None):
        super().__init__(name)
        self.total = _check_bound(self.name, total, 0.0, 1.0)

    def rows(self, inp: OptimInput) -> LinearRows:
        G = sp.csr_matrix(np.ones((1, inp.n)))
        return LinearRows(G, np.array([self.total]), np.array([self.total]), [self.name])


class LongOnly(Constraint):
    """``w >= 0`` (stock weight floor 0 in figure 10); hard."""

    kind = "box"
    soft = False

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(inp.n), np.full(inp.n, np.inf)


class StockDeviation(Constraint):
    """Per-stock band ``|w_i - b_i| <= bound`` (figure 10: [-1%, 1%]).

    Where a tradability rule makes the band unreachable (e.g. a suspended stock held above
    b_i + bound), the stock keeps the nearest reachable weight; see ``program.effective_box``.
    """

    kind = "box"

    def __init__(self, bound: float = 0.01, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        self.bound = _check_bound(self.name, bound, 0.0, 1.0)

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        return inp.benchmark - self.bound, inp.benchmark + self.bound


class IndustryDeviation(Constraint):
    """Per industry ``|sum_{i in j} (w_i - b_i)| <= bound`` (figure 10: [-2%, 2%]), one shared slack."""

    def __init__(self, bound: float = 0.02, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        self.bound = _check_bound(self.name, bound, 0.0, 1.0)

    def rows(self, inp: OptimInput) -> LinearRows:
        k = len(inp.industries)
        H = sp.csr_matrix((np.ones(inp.n), (inp.industry, np.arange(inp.n))), shape=(k, inp.n))
        return _deviation_rows(H, inp.benchmark, np.full(k, self.bound), [self.name] * k)


class StyleDeviation(Constraint):
    """Per style s ``|X_s . (w - b)| <= bound_s`` in std units (figure 10: size within +-0.3).

    One slack per style, keyed ``Name[style]``.
    """

    def __init__(self, bounds: Mapping[str, float] | None = None, name: str | None = None,
                 penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        bounds = {"size": 0.3} if bounds is None else dict(bounds)
        if not bounds:
            raise ValueError(f"{self.name}: no styles given")
        self.bounds = {str(s): _check_bound(f"{self.name}[{s}]", v) for s, v in bounds.items()}

    def rows(self, inp: OptimInput) -> LinearRows:
        styles = list(self.bounds)
        X = np.stack([inp.exposure(s) for s in styles])
        keys = [f"{self.name}[{s}]" for s in styles]
        return _deviation_rows(sp.csr_matrix(X), inp.benchmark, np.array(list(self.bounds.values())), keys)


class NonlinearSize(StyleDeviation):
    """``|X_nlsize . (w - b)| <= bound`` (report figure 30; Barra nonlinear size, std units)."""

    def __init__(self, bound: float = 0.3, factor: str = "nonlinear_size", name: str | None = None,
                 penalty: float = DEFAULT_PENALTY):
        super().__init__({factor: bound}, name, penalty)
        self.bound, self.factor = float(bound), factor

    def rows(self, inp: OptimInput) -> LinearRows:
        out = super().rows(inp)
        out.keys = [self.name]
        return out


class SizeMoment(Constraint):
    """``|M_k(w) - M_k(b)| <= bound`` with ``M_k(v) = sum_i v_i (x_i - x_b)^k``, ``x_b = sum_i b_i x_i``.

    x is the size exposure (std units).  Report p.13-14 (figures 33 and 35) sweeps the
    "moment deviation constraint" as [-0.1, 0.1] .. [-0.4, 0.4] in the same way as the style and
    nonlinear-size deviations, with no mention of a ratio, so we read the bound as absolute, in
    units of exposure**k.  Linear in w because x_b is fixed by the benchmark.
    """

    def __init__(self, k: int = 2, bound: float = 0.3, factor: str = "size", name: str | None = None,
                 penalty: float = DEFAULT_PENALTY):
        if int(k) != k or k < 2:
            raise ValueError(f"SizeMoment: order k must be an integer >= 2, got {k}")
        super().__init__(name or f"SizeMoment{int(k)}", penalty)
        self.k, self.factor = int(k), factor
        self.bound = _check_bound(self.name, bound)

    def moment_weights(self, inp: OptimInput) -> np.ndarray:
        """``g_i = (x_i - x_b)^k`` so that ``M_k(w) = g . w``."""
        x = inp.exposure(self.factor)
        return (x - inp.benchmark @ x) ** self.k

    def rows(self, inp: OptimInput) -> LinearRows:
        g = sp.csr_matrix(self.moment_weights(inp)[None, :])
        return _deviation_rows(g, inp.benchmark, np.array([self.bound]), [self.name])


class ConstituentFloor(Constraint):
    """``sum_{i in benchmark} w_i >= floor`` (figure 10: 80%; the report sweeps 100%, 80%, 0%)."""

    def __init__(self, floor: float = 0.8, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        self.floor = _check_bound(self.name, floor, 0.0, 1.0)

    def rows(self, inp: OptimInput) -> LinearRows:
        G = sp.csr_matrix(inp.members.astype(float)[None, :])
        return LinearRows(G, np.array([self.floor]), np.array([np.inf]), [self.name])


class Turnover(Constraint):
    """One-sided turnover ``1/2 * sum_i |w_i - w0_i| <= limit`` (figure 10: 20% per rebalance).

    Skipped (and noted in the result) when there is no current portfolio (w0 = 0).
    """

    kind = "turnover"

    def __init__(self, limit: float = 0.2, name: str | None = None, penalty: float = 1.0):
        super().__init__(name, penalty)
        self.limit = _check_bound(self.name, limit, 0.0, 1.0)


class Tradability(Constraint):
    """Figure 10 special handling, hard: suspended ``w_i = w0_i``; one-word limit-up ``w_i <= w0_i``
    (not bought); one-word limit-down ``w_i >= w0_i`` (not sold).  Each rule can be switched off."""

    kind = "box"
    soft = False

    def __init__(self, suspended: bool = True, limit_up: bool = True, limit_down: bool = True,
                 name: str | None = None):
        super().__init__(name)
        self.suspended, self.limit_up, self.limit_down = bool(suspended), bool(limit_up), bool(limit_down)

    def frozen(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        """Masks (no buying, no selling)."""
        stop = inp.suspended if self.suspended else np.zeros(inp.n, dtype=bool)
        no_buy = stop | (inp.limit_up if self.limit_up else False)
        no_sell = stop | (inp.limit_down if self.limit_down else False)
        return no_buy, no_sell

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        no_buy, no_sell = self.frozen(inp)
        return np.where(no_sell, inp.w0, -np.inf), np.where(no_buy, inp.w0, np.inf)


def figure10_constraints(floor: float = 0.8, size_bound: float = 0.3, turnover: float = 0.2) -> list:
    """The report's baseline set (figure 10): budget, long-only, 1% stock, 2% industry, size 0.3 std,
    20% one-sided turnover, 80% constituent floor, tradability."""
    return [FullyInvested(), LongOnly(), StockDeviation(0.01), IndustryDeviation(0.02),
            StyleDeviation({"size": size_bound}), Turnover(turnover), ConstituentFloor(floor), Tradability()]


def make_constraint(spec: Constraint | Mapping[str, Any]) -> Constraint:
    """A constraint from an instance or a Qlib-style ``{class, module_path, kwargs}`` mapping (YAML)."""
    if isinstance(spec, Constraint):
        return spec
    if not isinstance(spec, Mapping) or "class" not in spec:
        raise TypeError(f"constraint spec must be a Constraint or a {{class, kwargs}} mapping, got {spec!r}")
    module = importlib.import_module(spec.get("module_path", __name__))
    cls = getattr(module, spec["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, Constraint)):
        raise ValueError(f"{spec['class']!r} is not a Constraint in {module.__name__}")
    return cls(**dict(spec.get("kwargs", {})))
