"""Index-enhancement portfolio optimizer (report figure 10, p.10-14; SPEC section 6): constraint
objects that compile themselves (``constraints.py``: rows, box or trade rows, slack prices, checks,
cvxpy form), a direct sparse LP for Clarabel/HiGHS, an elastic fallback, and a result with diagnostics.
A new constraint is one subclass of :class:`Constraint` in any module, named in YAML as
``{class, module_path, kwargs}``.

Pure numpy/pandas; no Qlib import (the Qlib strategy adapter lives in ``qlib_ext.strategy``).
"""

from .constraints import (
    ConstituentFloor,
    Constraint,
    FullyInvested,
    IndustryDeviation,
    LinearRows,
    LongOnly,
    NonlinearSize,
    SizeMoment,
    StockDeviation,
    StyleDeviation,
    Tradability,
    TradeRows,
    Turnover,
    constraints_from_settings,
    figure10_constraints,
    figure10_settings,
    make_constraint,
)
from .inputs import OptimInput
from .optimizer import IndexOptimizer
from .result import OptimResult

__all__ = [
    "ConstituentFloor", "Constraint", "FullyInvested", "IndustryDeviation", "LinearRows", "LongOnly",
    "NonlinearSize", "SizeMoment", "StockDeviation", "StyleDeviation", "Tradability", "TradeRows", "Turnover",
    "constraints_from_settings", "figure10_constraints", "figure10_settings", "make_constraint", "OptimInput", "IndexOptimizer", "OptimResult",
]
