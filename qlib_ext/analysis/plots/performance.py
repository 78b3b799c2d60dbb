"""Excess NAV figures (report figures 12-15 and 24): one line per portfolio, drawdown shaded.

Draws on the ``ax`` it is given and returns it (the one convention of :mod:`qlib_ext.analysis.plots`);
the NAVs come from :func:`qlib_ext.analysis.metrics.performance.nav_frame`.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes


def plot_excess_nav(ax: Axes, navs: pd.DataFrame, title: str = "Excess NAV", shade_drawdown: bool = True) -> Axes:
    """Line chart of excess NAVs (figures 12-15, 24); the first column's drawdown is shaded."""
    if navs.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for name in navs.columns:
        ax.plot(navs.index, navs[name], lw=1.3, label=str(name))
    if shade_drawdown and not navs.empty:
        first = navs.iloc[:, 0].dropna()
        ax.fill_between(first.index, first, first.cummax(), color="tab:red", alpha=0.15, lw=0, label="drawdown")
    ax.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax.set_title(title)
    ax.set_ylabel("excess NAV")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return ax
