"""The constraint contract of the index-enhancement LP: :class:`Constraint` and the pieces it states.

A constraint states itself through up to three pieces (:class:`LinearRows` rows, a per-stock box,
:class:`TradeRows` on the trades); the program, the result checks and the cvxpy reference read only
these.  The report's concrete constraints live in :mod:`qlib_ext.optim.constraints`; a new one is a
subclass in a file of its own (see ``tests/extensions/demo_constraint.py``).
"""

from __future__ import annotations

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


@dataclass
class TradeRows:
    """``H @ |w - w0| <= hi`` (H >= 0, dense or sparse), one slack key per row."""

    H: np.ndarray | sp.spmatrix
    hi: np.ndarray
    keys: list


Check = tuple[np.ndarray, np.ndarray, np.ndarray]  # (value at w, lower bound, upper bound)
PIECES = ("rows", "box", "trade_rows")


def _penalty(name: str, penalty: float) -> float:
    if not penalty > 0:
        raise ValueError(f"{name}: penalty must be positive, got {penalty}")
    return float(penalty)


class Constraint:
    """Base: ``soft`` ones may be relaxed elastically; subclasses override ``rows``, ``box`` or ``trade_rows``.

    ``kind`` is a descriptive label only (nothing in ``optim/`` dispatches on it).
    """

    kind: ClassVar[str] = "linear"
    soft: ClassVar[bool] = True
    #: keys of an optimizer preset this class reads in :meth:`from_preset` (none: not preset-driven)
    preset_keys: ClassVar[tuple[str, ...]] = ()

    #: the pieces this class states (``rows``, ``box``, ``trade_rows``: the methods it overrides),
    #: so that the hot path calls only those
    pieces: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.pieces = frozenset(p for p in PIECES if getattr(cls, p) is not getattr(Constraint, p))

    def __init__(self, name: str | None = None, penalty: float = DEFAULT_PENALTY):
        self.name = name or type(self).__name__
        self.penalty = _penalty(self.name, penalty)

    # -- the statement: override one or more of these
    def rows(self, inp: OptimInput) -> LinearRows | None:
        """Linear rows in weight space (None: none)."""
        return None

    def box(self, inp: OptimInput) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-stock bounds ``(lo, hi)`` (None: none)."""
        return None

    def trade_rows(self, inp: OptimInput) -> TradeRows | None:
        """Rows on the absolute trades ``|w - w0|`` (None: none)."""
        return None

    # -- derived from the statement; override to refine
    def penalty_for(self, key: str) -> float:
        """Price per unit of the slack ``key`` (one of this constraint's row keys)."""
        return self.penalty

    def exposures_needed(self) -> list[str]:
        """The style exposure columns this constraint reads (checked before a solve)."""
        return []

    def skipped(self, inp: OptimInput) -> str | None:
        """A note when the constraint does not apply to ``inp`` (None: it applies)."""
        return None

    def check(self, inp: OptimInput, w: np.ndarray, band: tuple[np.ndarray, np.ndarray] | None = None,
              rows: LinearRows | None = None) -> list[Check]:
        """``(value, lo, hi)`` of every piece at ``w``; ``band``: the soft stock band after the
        tradability override (``program.effective_box``), used for a soft box; ``rows``: prebuilt rows."""
        out: list[Check] = []
        r = rows if rows is not None or "rows" not in self.pieces else self.rows(inp)
        if r is not None:
            out.append((np.asarray(r.G @ w).ravel(), r.lo, r.hi))
        b = self.box(inp) if "box" in self.pieces else None
        if b is not None:
            out.append((w, *(band if self.soft and band is not None else b)))
        t = self.trade_rows(inp) if "trade_rows" in self.pieces else None
        if t is not None:
            out.append((np.asarray(t.H @ np.abs(w - inp.w0)).ravel(), np.full(len(t.hi), -np.inf), t.hi))
        return out

    def cvxpy_data(self, inp: OptimInput) -> dict[str, Any]:
        """The numbers of the naive cvxpy statement by name (boxes are stated jointly by the reference)."""
        d: dict[str, Any] = {}
        r = self.rows(inp)
        if r is not None:
            d.update(G=r.G, lo=r.lo, hi=r.hi)
        t = self.trade_rows(inp)
        if t is not None:
            d.update(H=t.H, w0=inp.w0, trade_hi=t.hi)
        return d

    def cvxpy_signature(self, data: Mapping[str, Any]) -> tuple:
        """What, besides shapes, changes the statement's structure (equality rows)."""
        return (bool(np.all(data["lo"] == data["hi"])),) if "G" in data else ()

    def cvxpy_form(self, w: Any, p: Mapping[str, Any], data: Mapping[str, Any], parametric: bool) -> list:
        """The cvxpy constraints on ``w`` from ``p`` (Parameters or the arrays ``data``)."""
        import cvxpy as cp

        cons = []
        if "G" in data:
            Gw = p["G"] @ w
            if self.cvxpy_signature(data)[0]:
                cons.append(Gw == p["lo"])
            else:
                for side, op in (("lo", Gw.__ge__), ("hi", Gw.__le__)):
                    fin = np.isfinite(data[side])
                    if fin.all() or parametric:
                        cons.append(op(p[side]))
                    elif fin.any():
                        sel = np.flatnonzero(fin)
                        cons.append((Gw[sel] >= data[side][fin]) if side == "lo" else (Gw[sel] <= data[side][fin]))
        if "H" in data:  # |w - w0| through t >= +-(w - w0): a parameter times a variable stays DPP
            t = cp.Variable(w.shape[0], nonneg=True)
            cons += [t >= w - p["w0"], t >= p["w0"] - w, p["H"] @ t <= p["trade_hi"]]
        return cons

    # -- presets
    @classmethod
    def from_preset(cls, settings: Mapping[str, Any]) -> list[Constraint]:
        """The instances a preset's ``settings`` ask for (``None`` under a key: off)."""
        value = settings.get(cls.preset_keys[0]) if cls.preset_keys else None
        return [] if value is None else [cls(value)]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in ("name", "penalty"))
        return f"{type(self).__name__}({args})"


def dense_rows(M: np.ndarray) -> sp.csr_matrix:
    """CSR of a few dense rows over the stocks, the same arrays as ``sp.csr_matrix(M)`` built directly
    (scipy's dense -> COO -> CSR path costs ~0.1 ms a call at n = 800, most of a program's assembly)."""
    M = np.atleast_2d(np.asarray(M, dtype=float))
    k, n = M.shape
    if np.all(M != 0):
        return sp.csr_matrix((M.ravel(), np.tile(np.arange(n, dtype=np.int32), k),
                              np.arange(0, k * n + 1, n, dtype=np.int32)), shape=M.shape)
    r, c = np.nonzero(M)
    indptr = np.zeros(k + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=k), out=indptr[1:])
    return sp.csr_matrix((M[r, c], c.astype(np.int32), indptr), shape=M.shape)


def _check_bound(name: str, value: float, lo: float = 0.0, hi: float = np.inf) -> float:
    value = float(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name}: bound {value} outside [{lo}, {hi}]")
    return value


def _deviation_rows(G: sp.csr_matrix, b: np.ndarray, bound: np.ndarray, keys: list) -> LinearRows:
    """Rows ``|G (w - b)| <= bound``."""
    gb = np.asarray(G @ b).ravel()
    return LinearRows(G, gb - bound, gb + bound, keys)
