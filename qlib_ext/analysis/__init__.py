"""Analysis recorders (SPEC section 7), each split into compute (pure) | plot | record.

Portfolio performance (report tables 11, 23, 30, 33, 35; figures 12-15, 24) is imported eagerly:
:mod:`.performance` (compute), :mod:`.performance_plot` (figures), :class:`PerformanceRecord` (Qlib
``RecordTemp``).  The other recorders (style profile, quantile, crowding, holdings, attribution,
style timing, market review) resolve lazily on first use.
"""

from ..lazy import lazy_exports
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

#: recorders added by later modules: public name -> module (resolved lazily on first use)
_LAZY = {
    "StyleProfileRecord": ".style_profile_record",
    "QuantileRecord": ".quantile_record",
    "CrowdingRecord": ".crowding_record",
    "HoldingsProfileRecord": ".holdings_record",
    "AttributionRecord": ".attribution_record",
    "StyleTimingRecord": ".style_timing_record",
    "MarketReviewRecord": ".market_review_record",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "PerformanceRecord", "annual_turnover", "annualized_return", "calmar", "drawdown", "excess_nav",
    "excess_returns", "information_ratio", "max_drawdown", "nav_frame", "performance_summary",
    "period_return", "plot_excess_nav", "yearly_returns", *sorted(_LAZY),
]
