"""Analysis recorders (SPEC section 7), each split into compute (pure) | plot | record.

So far: portfolio performance (report tables 11, 23, 30, 33, 35; figures 12-15, 24) --
:mod:`.performance` (compute), :mod:`.performance_plot` (figures), :class:`PerformanceRecord` (Qlib
``RecordTemp``).
"""

from .performance import (
    annual_turnover,
    annualized_return,
    calmar,
    drawdown,
    excess_nav,
    excess_returns,
    information_ratio,
    max_drawdown,
    performance_summary,
    period_return,
    yearly_returns,
)
from .performance_plot import nav_frame, plot_excess_nav
from .performance_record import PerformanceRecord

__all__ = [
    "PerformanceRecord", "annual_turnover", "annualized_return", "calmar", "drawdown", "excess_nav",
    "excess_returns", "information_ratio", "max_drawdown", "nav_frame", "performance_summary",
    "period_return", "plot_excess_nav", "yearly_returns",
]
