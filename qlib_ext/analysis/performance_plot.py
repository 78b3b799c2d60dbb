"""Excess NAV figures (report figures 12-15 and 24): one line per portfolio, drawdown shaded.

Pure drawing: a frame of excess NAVs (or several excess-return series) in, a matplotlib Figure out.
Figures are built without pyplot (``matplotlib.figure.Figure``), so no display or global backend is
touched and nothing needs closing; ``savefig`` renders with Agg.  The recorder saves them as PNGs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from .performance import excess_nav, window


def nav_frame(returns: pd.Series | Mapping[str, pd.Series], start: Any = None, end: Any = None) -> pd.DataFrame:
    """Excess NAVs (columns) of one or several excess-return series, each rebased to 1 at ``start``.

    A leading row of 1.0 is added on the day before the first return, so every curve starts at 1.
    """
    series = {"excess": returns} if isinstance(returns, pd.Series) else dict(returns)
    cols = {}
    for name, e in series.items():
        e = window(e, start or e.index.min(), end or e.index.max())
        if e.empty:
            continue
        nav = excess_nav(e)
        first = e.index[0] - pd.Timedelta(days=1)
        cols[name] = pd.concat([pd.Series([1.0], index=[first]), nav])
    return pd.DataFrame(cols).sort_index()


def plot_excess_nav(navs: pd.DataFrame, title: str = "Excess NAV", shade_drawdown: bool = True,
                    figsize: Sequence[float] = (10, 4.5)) -> Figure:
    """Line chart of excess NAVs (figures 12-15, 24); the first column's drawdown is shaded."""
    fig = Figure(figsize=tuple(figsize))
    ax = fig.subplots()
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
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Any, dpi: int = 110) -> None:
    """Write a figure as PNG."""
    fig.savefig(path, dpi=dpi, format="png")
