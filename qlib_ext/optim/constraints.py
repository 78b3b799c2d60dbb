"""Constraint objects of the index-enhancement LP (report figure 10 and p.13-14; SPEC section 6).

Each constraint is a small class that compiles itself (after cvxportfolio's constraints): its bounds
are keyword arguments, ``name`` labels it in diagnostics, and it states itself through up to three
pieces, all read by the program assembler (``program.py``), the result checks (``result.py``) and the
plain cvxpy statement (``reference.py``) alike -- none of them looks at the class:

* ``rows(inp)``:       ``lo <= G @ w <= hi`` (:class:`LinearRows`), each row tagged with a slack key;
* ``box(inp)``:        ``lo <= w <= hi`` per stock;
* ``trade_rows(inp)``: ``H @ |w - w0| <= hi`` (:class:`TradeRows`, the 1-norm cone of the trades,
  stated through the split ``w = w0 + u - v``; e.g. one-sided turnover).

Around them: ``penalty_for(key)`` prices the slack of each key its rows produce (elastic re-solve),
``check(inp, w, band)`` measures every piece at ``w`` (post-solve), ``cvxpy_data`` / ``cvxpy_form``
write the naive cvxpy statement, ``exposures_needed()`` names the style columns it reads and
``skipped(inp)`` says when it does not apply.  A new constraint overrides ``rows`` (or ``box`` or
``trade_rows``) and nothing else; see ``tests/extensions/demo_constraint.py``.

Hard constraints (budget, long-only, tradability) are never relaxed; soft ones get one
non-negative slack per key in the elastic re-solve, priced by ``penalty`` per unit of widening
(in the constraint's own unit: weight for most, std units for styles, exposure**k for moments).
Default penalties relax turnover (1) before any risk or benchmark constraint (10): after an index
reconstitution, trading more is preferred to breaking the constituent floor or a deviation band.

Preset keys (``configs/optimizer/*.yaml``) are declared by the classes (``preset_keys``,
``from_preset``); the figure-10 values live once, in the packaged ``configs/optimizer/figure10.yaml``
(:func:`figure10_settings`), and :func:`figure10_constraints` is built from it.
"""


from __future__ import annotations

import copy
import functools
import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from .constraint_base import (  # noqa: F401 - re-exported: the contract's historical home
    DEFAULT_PENALTY,
    PIECES,
    Check,
    Constraint,
    LinearRows,
    TradeRows,
    _check_bound,
    _deviation_rows,
    _penalty,
    dense_rows,
)
from .inputs import OptimInput

#: The packaged preset holding the report's baseline bounds (the one home of the figure-10 values).
FIGURE10_PRESET = "figure10"


class FullyInvested(Constraint):
    """Budget ``sum(w) = total`` (position 1 in figure 10); hard, always on in a preset."""

    soft = False

    def __init__(self, total: float = 1.0, name: str | None = None):
        super().__init__(name)
        self.total = _check_bound(self.name, total, 0.0, 1.0)

    def rows(self, inp: OptimInput) -> LinearRows:
        G = dense_rows(np.ones((1, inp.n)))
        return LinearRows(G, np.array([self.total]), np.array([self.total]), [self.name])

    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        return [cls()]


class LongOnly(Constraint):
    """``w >= 0`` (stock weight floor 0 in figure 10); hard, always on in a preset."""

    kind = "box"
    soft = False

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(inp.n), np.full(inp.n, np.inf)

    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        return [cls()]


class StockDeviation(Constraint):
    """Per-stock band ``|w_i - b_i| <= bound`` (figure 10: [-1%, 1%]; preset key ``stock_deviation``).

    Where a tradability rule makes the band unreachable (e.g. a suspended stock held above
    b_i + bound), the stock keeps the nearest reachable weight; see ``program.effective_box``.
    """

    kind = "box"
    preset_keys = ("stock_deviation",)

    def __init__(self, bound: float = 0.01, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        self.bound = _check_bound(self.name, bound, 0.0, 1.0)

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray]:
        return inp.benchmark - self.bound, inp.benchmark + self.bound


class IndustryDeviation(Constraint):
    """Per industry ``|sum_{i in j} (w_i - b_i)| <= bound`` (figure 10: [-2%, 2%]), one shared slack."""

    preset_keys = ("industry_deviation",)

    def __init__(self, bound: float = 0.02, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        self.bound = _check_bound(self.name, bound, 0.0, 1.0)

    def rows(self, inp: OptimInput) -> LinearRows:
        k = len(inp.industries)
        H = sp.csr_matrix((np.ones(inp.n), (inp.industry, np.arange(inp.n))), shape=(k, inp.n))
        return _deviation_rows(H, inp.benchmark, np.full(k, self.bound), [self.name] * k)


class StyleDeviation(Constraint):
    """Per style s ``|X_s . (w - b)| <= bound_s`` in std units (figure 10: size within +-0.3).

    One slack per style, keyed ``Name[style]``.  Preset key ``style_deviation`` ({style: bound};
    ``{}`` = off).
    """

    preset_keys = ("style_deviation",)

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
        return _deviation_rows(dense_rows(X), inp.benchmark, np.array(list(self.bounds.values())), keys)

    def exposures_needed(self) -> list[str]:
        return list(self.bounds)

    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        styles = settings.get("style_deviation")
        return [cls(styles)] if styles else []


class NonlinearSize(StyleDeviation):
    """``|X_nlsize . (w - b)| <= bound`` (report figure 30; Barra nonlinear size, std units).

    Preset keys ``nonlinear_size`` (the bound) and ``nonlinear_size_factor`` (default the column
    ``nonlinear_size``).
    """

    preset_keys = ("nonlinear_size", "nonlinear_size_factor")

    def __init__(self, bound: float = 0.3, factor: str = "nonlinear_size", name: str | None = None,
                 penalty: float = DEFAULT_PENALTY):
        super().__init__({factor: bound}, name, penalty)
        self.bound, self.factor = float(bound), factor

    def rows(self, inp: OptimInput) -> LinearRows:
        out = super().rows(inp)
        out.keys = [self.name]
        return out

    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        bound = settings.get("nonlinear_size")
        return [] if bound is None else [cls(bound, factor=settings.get("nonlinear_size_factor") or "nonlinear_size")]


class SizeMoment(Constraint):
    """``|M_k(w) - M_k(b)| <= bound`` with ``M_k(v) = sum_i v_i (x_i - x_b)^k``, ``x_b = sum_i b_i x_i``.

    x is the size exposure (std units).  Report p.13-14 (figures 33 and 35) sweeps the
    "moment deviation constraint" as [-0.1, 0.1] .. [-0.4, 0.4] in the same way as the style and
    nonlinear-size deviations, with no mention of a ratio, so we read the bound as absolute, in
    units of exposure**k.  Linear in w because x_b is fixed by the benchmark.  Preset keys
    ``size_moment2``, ``size_moment3`` (bounds) and ``size_factor`` (default ``size``).
    """

    preset_keys = ("size_moment2", "size_moment3", "size_factor")

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
        g = dense_rows(self.moment_weights(inp)[None, :])
        return _deviation_rows(g, inp.benchmark, np.array([self.bound]), [self.name])

    def exposures_needed(self) -> list[str]:
        return [self.factor]

    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        factor = settings.get("size_factor") or "size"
        return [cls(k, settings[f"size_moment{k}"], factor=factor) for k in (2, 3)
                if settings.get(f"size_moment{k}") is not None]


class ConstituentFloor(Constraint):
    """``sum_{i in benchmark} w_i >= floor`` (figure 10: 80%; the report sweeps 100%, 80%, 0%)."""

    preset_keys = ("constituent_floor",)

    def __init__(self, floor: float = 0.8, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        super().__init__(name, penalty)
        self.floor = _check_bound(self.name, floor, 0.0, 1.0)

    def rows(self, inp: OptimInput) -> LinearRows:
        G = dense_rows(inp.members.astype(float)[None, :])
        return LinearRows(G, np.array([self.floor]), np.array([np.inf]), [self.name])


class Turnover(Constraint):
    """One-sided turnover ``1/2 * sum_i |w_i - w0_i| <= limit`` (figure 10: 20% per rebalance).

    Skipped (and noted in the result) when there is no current portfolio (w0 = 0).
    """

    kind = "turnover"
    preset_keys = ("turnover",)

    def __init__(self, limit: float = 0.2, name: str | None = None, penalty: float = 1.0):
        super().__init__(name, penalty)
        self.limit = _check_bound(self.name, limit, 0.0, 1.0)

    def trade_rows(self, inp: OptimInput) -> TradeRows | None:
        if not inp.has_w0:
            return None
        return TradeRows(np.full((1, inp.n), 0.5), np.array([self.limit]), [self.name])

    def check(self, inp: OptimInput, w: np.ndarray, band: tuple[np.ndarray, np.ndarray] | None = None,
              rows: LinearRows | None = None) -> list[Check]:
        if not inp.has_w0:
            return []
        return [(np.array([0.5 * np.abs(w - inp.w0).sum()]), np.array([-np.inf]), np.array([self.limit]))]

    def skipped(self, inp: OptimInput) -> str | None:
        return None if inp.has_w0 else "no current portfolio: turnover constraint skipped"

    def cvxpy_data(self, inp: OptimInput) -> dict[str, Any]:
        return {"w0": inp.w0, "limit": np.array(2 * self.limit)} if inp.has_w0 else {}

    def cvxpy_form(self, w: Any, p: Mapping[str, Any], data: Mapping[str, Any], parametric: bool) -> list:
        import cvxpy as cp

        return [cp.sum(cp.abs(w - p["w0"])) <= p["limit"]] if "w0" in data else []


class Tradability(Constraint):
    """Figure 10 special handling, hard: suspended ``w_i = w0_i``; one-word limit-up ``w_i <= w0_i``
    (not bought); one-word limit-down ``w_i >= w0_i`` (not sold).  Each rule can be switched off.
    Preset key ``tradability`` (true / false)."""

    kind = "box"
    soft = False
    preset_keys = ("tradability",)

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

    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        return [cls()] if settings.get("tradability") else []


#: The classes a preset's bound keys build, in the order of the constraint list.
PRESET_CLASSES: tuple[type[Constraint], ...] = (
    FullyInvested, LongOnly, StockDeviation, IndustryDeviation, StyleDeviation, Turnover, ConstituentFloor,
    NonlinearSize, SizeMoment, Tradability,
)
#: Keys of a preset that build constraints: every class's ``preset_keys``, the penalties and the extras.
CONSTRAINT_KEYS: tuple[str, ...] = (*dict.fromkeys(k for c in PRESET_CLASSES for k in c.preset_keys),
                                    "penalties", "constraints")


@functools.lru_cache(maxsize=1)
def _packaged_figure10() -> dict[str, Any]:
    from ..config import load_config, package_dir

    return load_config("optimizer", package_dir() / "optimizer" / f"{FIGURE10_PRESET}.yaml")


def figure10_settings() -> dict[str, Any]:
    """The report's baseline bounds (figure 10): the constraint keys of the packaged ``figure10.yaml``."""
    return {k: copy.deepcopy(v) for k, v in _packaged_figure10().items() if k in CONSTRAINT_KEYS}


def constraints_from_settings(settings: Mapping[str, Any]) -> list[Constraint]:
    """The constraint list of a preset's keys (:data:`CONSTRAINT_KEYS`; ``None`` switches one off).

    Budget and long-only are always on.  ``penalties``: {constraint name: elastic penalty};
    ``constraints``: extra ``{class, module_path, kwargs}`` specs appended after the built-in ones.
    """
    unknown = sorted(set(settings) - set(CONSTRAINT_KEYS))
    if unknown:
        raise ValueError(f"unknown constraint keys {unknown} (allowed: {', '.join(CONSTRAINT_KEYS)})")
    cons = [c for cls in PRESET_CLASSES for c in cls.from_preset(settings)]
    cons += [make_constraint(spec) for spec in settings.get("constraints") or []]
    pen = dict(settings.get("penalties") or {})
    for c in cons:
        if c.name in pen:
            c.penalty = _penalty(c.name, pen.pop(c.name))
    if pen:
        raise ValueError(f"penalties given for constraints not in the set: {sorted(pen)} "
                         f"(have {[c.name for c in cons if c.soft]})")
    return cons


def figure10_constraints(**overrides: Any) -> list[Constraint]:
    """The report's baseline set (figure 10, from ``figure10.yaml``): budget, long-only, 1% stock,
    2% industry, size 0.3 std, 20% one-sided turnover, 80% constituent floor, tradability;
    ``overrides``: preset keys on top (e.g. ``constituent_floor=1.0``)."""
    return constraints_from_settings({**figure10_settings(), **overrides})


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
