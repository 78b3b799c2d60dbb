"""Optimizer settings from plain keywords and preset files (``configs/optimizer/*.yaml``).

Every bound of the report's LP (figure 10; variants of figures 23, 30, 33, 35) is one keyword, so a
qrun YAML can set each of them; ``None`` switches a constraint off.  A preset file holds the same
keywords, optionally ``base: <other preset>`` first (applied before the file's own keys)::

    # configs/optimizer/size_moment2.yaml
    base: figure10
    size_moment2: 0.3

A preset is named by a path or by a bare name, found and merged by :mod:`qlib_ext.config` (family
``optimizer``: explicit path, ``./configs/optimizer/``, ``$QLIB_EXT_CONFIG_PATH``, the packaged copy).
Unknown keys raise ``ValueError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import load_config
from ..optim import (
    ConstituentFloor,
    Constraint,
    FullyInvested,
    IndexOptimizer,
    IndustryDeviation,
    LongOnly,
    NonlinearSize,
    SizeMoment,
    StockDeviation,
    StyleDeviation,
    Tradability,
    Turnover,
)

FAMILY = "optimizer"

#: The report's baseline (figure 10): the defaults of :func:`build_constraints`.
FIGURE10: dict[str, Any] = {
    "stock_deviation": 0.01, "industry_deviation": 0.02, "style_deviation": {"size": 0.3},
    "turnover": 0.2, "constituent_floor": 0.8, "nonlinear_size": None, "size_moment2": None,
    "size_moment3": None, "tradability": True,
}
BOUND_KEYS = (*FIGURE10, "size_factor", "nonlinear_size_factor", "penalties")
SOLVER_KEYS = ("risk_aversion", "solvers", "solver_options", "elastic", "warm_start")


def build_constraints(
    stock_deviation: float | None = 0.01,
    industry_deviation: float | None = 0.02,
    style_deviation: Mapping[str, float] | None = None,
    turnover: float | None = 0.2,
    constituent_floor: float | None = 0.8,
    nonlinear_size: float | None = None,
    size_moment2: float | None = None,
    size_moment3: float | None = None,
    tradability: bool = True,
    size_factor: str = "size",
    nonlinear_size_factor: str = "nonlinear_size",
    penalties: Mapping[str, float] | None = None,
) -> list[Constraint]:
    """The constraint list of figure 10 and its variants from plain bounds (``None`` = off).

    Budget (sum w = 1) and long-only are always on.  ``style_deviation`` maps style -> bound in std
    units (default ``{"size": 0.3}``; ``{}`` = no style band).  ``size_moment2/3`` bound
    ``|M_k(w) - M_k(b)|`` (report p.13-14).  ``penalties``: {constraint name: elastic penalty}, e.g.
    ``{"Turnover": 1.0, "ConstituentFloor": 10.0}`` (names as in the diagnostics).
    """
    styles = {"size": 0.3} if style_deviation is None else dict(style_deviation)
    pen = dict(penalties or {})

    def kw(name: str) -> dict:
        return {"penalty": float(pen.pop(name))} if name in pen else {}

    cons: list[Constraint] = [FullyInvested(), LongOnly()]
    if stock_deviation is not None:
        cons.append(StockDeviation(stock_deviation, **kw("StockDeviation")))
    if industry_deviation is not None:
        cons.append(IndustryDeviation(industry_deviation, **kw("IndustryDeviation")))
    if styles:
        cons.append(StyleDeviation(styles, **kw("StyleDeviation")))
    if turnover is not None:
        cons.append(Turnover(turnover, **kw("Turnover")))
    if constituent_floor is not None:
        cons.append(ConstituentFloor(constituent_floor, **kw("ConstituentFloor")))
    if nonlinear_size is not None:
        cons.append(NonlinearSize(nonlinear_size, factor=nonlinear_size_factor, **kw("NonlinearSize")))
    for k, bound in ((2, size_moment2), (3, size_moment3)):
        if bound is not None:
            cons.append(SizeMoment(k, bound, factor=size_factor, **kw(f"SizeMoment{k}")))
    if tradability:
        cons.append(Tradability())
    if pen:
        raise ValueError(f"penalties given for constraints not in the set: {sorted(pen)} "
                         f"(have {[c.name for c in cons if c.soft]})")
    return cons


def load_preset(name: str | Path) -> dict[str, Any]:
    """The keywords of a preset with its ``base`` chain resolved (base first, then the file's keys)."""
    return load_config(FAMILY, name, allowed=(*BOUND_KEYS, *SOLVER_KEYS))


def make_optimizer(preset: str | Path | None = "figure10", **overrides: Any) -> IndexOptimizer:
    """An :class:`~qlib_ext.optim.IndexOptimizer` from a preset (None: figure 10) and keyword overrides."""
    settings = dict(FIGURE10) if preset is None else {**FIGURE10, **load_preset(preset)}
    unknown = set(overrides) - {*BOUND_KEYS, *SOLVER_KEYS}
    if unknown:
        raise ValueError(f"unknown optimizer keywords {sorted(unknown)} (allowed: {', '.join(BOUND_KEYS + SOLVER_KEYS)})")
    settings.update(overrides)
    bounds = {k: v for k, v in settings.items() if k in BOUND_KEYS}
    solver = {k: v for k, v in settings.items() if k in SOLVER_KEYS}
    if solver.get("solvers") is not None:
        solver["solvers"] = tuple(solver["solvers"])
    return IndexOptimizer(build_constraints(**bounds), **solver)
