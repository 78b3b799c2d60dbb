"""Analysis figures, one convention: every ``plot_*`` draws on the ``ax`` it is given and returns it.
:func:`~.common.new_figure` makes a Figure without pyplot and :func:`~.common.finish` lays it out."""

from .attribution import plot_cumulative, plot_periods
from .common import finish, new_figure, plot_crowding, plot_group_returns, plot_lines, plot_mean_correlations
from .market_review import plot_basis, plot_navs
from .performance import plot_excess_nav
from .style_timing import plot_exposure_series, plot_scatter

__all__ = ["finish", "new_figure", "plot_basis", "plot_crowding", "plot_cumulative", "plot_excess_nav",
           "plot_exposure_series", "plot_group_returns", "plot_lines", "plot_mean_correlations", "plot_navs",
           "plot_periods", "plot_scatter"]
