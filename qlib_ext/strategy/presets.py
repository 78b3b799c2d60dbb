"""Optimizer settings from plain keywords and preset files (``configs/optimizer/*.yaml``).

Every bound of the report's LP (figure 10; variants of figures 23, 30, 33, 35) is one keyword, so a
qrun YAML can set each of them; ``None`` switches a constraint off.  A preset file holds the same
keywords, optionally ``base: <other preset>`` first (applied before the file's own keys)::

    # configs/optimizer/size_moment2.yaml
    base: figure10
    size_moment2: 0.3

Extra constraints (any :class:`~qlib_ext.optim.Constraint` subclass, e.g. one of your own module)
are added with Qlib's ``{class, module_path, kwargs}`` shape::

    constraints:
      - {class: MaxWeight, module_path: my_constraints, kwargs: {cap: 0.015}}

The figure-10 bounds are written once, in the packaged ``figure10.yaml`` (:data:`FIGURE10` reads it).
A preset is named by a path or by a bare name, found and merged by :mod:`qlib_ext.config` (family
``optimizer``: explicit path, ``./configs/optimizer/``, ``$QLIB_EXT_CONFIG_PATH``, the packaged copy).
Unknown keys raise ``ValueError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import load_config
from ..optim import Constraint, IndexOptimizer
from ..optim.constraints import CONSTRAINT_KEYS, constraints_from_settings, figure10_settings

FAMILY = "optimizer"

#: The report's baseline (figure 10): the constraint keys of the packaged ``figure10.yaml``, the one
#: place the figure-10 bounds are written (read, not copied).
FIGURE10: dict[str, Any] = figure10_settings()
#: Keys that build constraints (declared by the constraint classes, plus ``penalties`` and ``constraints``).
BOUND_KEYS = CONSTRAINT_KEYS
SOLVER_KEYS = ("risk_aversion", "solvers", "solver_options", "elastic", "warm_start")


def build_constraints(**bounds: Any) -> list[Constraint]:
    """The constraint list of figure 10 and its variants: ``bounds`` (preset keys) over :data:`FIGURE10`.

    ``None`` switches a constraint off; budget (sum w = 1) and long-only are always on.
    ``style_deviation`` maps style -> bound in std units (``{}`` or ``None`` = no style band).
    ``size_moment2/3`` bound ``|M_k(w) - M_k(b)|`` (report p.13-14).  ``penalties``: {constraint
    name: elastic penalty}, e.g. ``{"Turnover": 1.0, "ConstituentFloor": 10.0}`` (names as in the
    diagnostics).  ``constraints``: extra ``{class, module_path, kwargs}`` specs (any
    :class:`~qlib_ext.optim.Constraint` subclass), appended after the built-in ones.
    """
    return constraints_from_settings({**FIGURE10, **bounds})


def load_preset(name: str | Path) -> dict[str, Any]:
    """The keywords of a preset with its ``base`` chain resolved (base first, then the file's keys)."""
    return load_config(FAMILY, name, allowed=(*BOUND_KEYS, *SOLVER_KEYS))


def resolve_preset(preset: str | Path | None = "figure10", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The optimizer settings a strategy runs with -- the one merge rule: :data:`FIGURE10`, then the
    preset's keys (None: no preset), then ``overrides`` (the strategy's ``optimizer:`` keywords).

    Raises ``ValueError`` naming unknown override keys (a preset file's are named by :func:`load_preset`).
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - {*BOUND_KEYS, *SOLVER_KEYS}
    if unknown:
        raise ValueError(f"unknown optimizer keywords {sorted(unknown)} (allowed: {', '.join(BOUND_KEYS + SOLVER_KEYS)})")
    return {**FIGURE10, **(load_preset(preset) if preset is not None else {}), **overrides}


def make_optimizer(preset: str | Path | None = "figure10", **overrides: Any) -> IndexOptimizer:
    """An :class:`~qlib_ext.optim.IndexOptimizer` from a preset (None: figure 10) and keyword overrides
    (merged by :func:`resolve_preset`)."""
    settings = resolve_preset(preset, overrides)
    bounds = {k: v for k, v in settings.items() if k in BOUND_KEYS}
    solver = {k: v for k, v in settings.items() if k in SOLVER_KEYS}
    if solver.get("solvers") is not None:
        solver["solvers"] = tuple(solver["solvers"])
    return IndexOptimizer(constraints_from_settings(bounds), **solver)
