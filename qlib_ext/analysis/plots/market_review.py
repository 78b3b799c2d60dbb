"""Market review figures (report figures 1-4); data from :mod:`..metrics.market_review`.

Each function draws on the ``ax`` it is given and returns it (one convention for every figure).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes


def plot_navs(ax: Axes, navs: pd.DataFrame, title: str = "Index NAVs relative to the base date",
              ylabel: str = "relative NAV") -> Axes:
    """Figures 3-4: one line per column, 1 at the base date."""
    for c in navs.columns:
        ax.plot(navs.index, navs[c].to_numpy(float), lw=1.3, label=str(c))
    ax.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_basis(ax: Axes, spot: pd.Series, basis: pd.Series, label: str) -> Axes:
    """Figures 1-2: the index close (left axis) and the annualised basis (right axis, bars)."""
    ax.plot(spot.index, spot.to_numpy(float), color="tab:blue", lw=1.3, label=f"{label} close")
    ax.set_ylabel("index close")
    twin = ax.twinx()
    twin.bar(basis.index, basis.to_numpy(float), color="tab:orange", alpha=0.6, width=1.0, label="annualised basis")
    twin.axhline(0.0, color="grey", lw=0.6)
    twin.set_ylabel("annualised basis")
    ax.set_title(f"{label} and its futures' annualised basis")
    ax.grid(alpha=0.3)
    return ax
