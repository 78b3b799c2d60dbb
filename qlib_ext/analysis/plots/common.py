"""Figures of the style-profile, quantile, crowding and holdings recorders (report figures 16-22).

Each function draws on the ``ax`` it is given and returns it; :func:`new_figure` makes a Figure
without pyplot (nothing global touched, nothing to close).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def new_figure(figsize: Sequence[float] = (10, 4.5)) -> tuple[Figure, Axes]:
    """A Figure with one Axes (no pyplot)."""
    fig = Figure(figsize=tuple(figsize))
    return fig, fig.subplots()


def finish(fig: Figure) -> Figure:
    """Layout and date labels."""
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _empty(ax: Axes, data) -> bool:
    if data is None or len(data) == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return True
    return False


def plot_mean_correlations(ax: Axes, summary: pd.DataFrame, title: str = "Signal vs styles: mean rank correlation") -> Axes:
    """Figure 16: bar per factor of the mean daily rank correlation."""
    if not _empty(ax, summary):
        vals = summary["mean"]
        ax.bar(range(len(vals)), vals.to_numpy(), color=["tab:red" if v > 0 else "tab:blue" for v in vals])
        ax.set_xticks(range(len(vals)), [str(i) for i in vals.index], rotation=30, ha="right")
        for i, v in enumerate(vals):
            ax.annotate(f"{v:.2f}", (i, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return ax


def plot_lines(ax: Axes, frame: pd.DataFrame, title: str, ylabel: str = "", rolling: int | None = None,
               hline: float | None = 0.0) -> Axes:
    """One line per column (optionally a rolling mean), e.g. figures 17-22."""
    if not _empty(ax, frame):
        data = frame.rolling(rolling, min_periods=1).mean() if rolling else frame
        for col in data.columns:
            ax.plot(data.index, data[col], lw=1.2, label=str(col))
        ax.legend(loc="best", fontsize=8)
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.6, ls="--")
    ax.set_title(title + (f" ({rolling}-session mean)" if rolling else ""))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax


def plot_group_returns(ax: Axes, ann: pd.Series, title: str = "Annualised return by group") -> Axes:
    """Bar per quantile group of its annualised return."""
    if not _empty(ax, ann):
        ax.bar([str(g) for g in ann.index], ann.to_numpy(), color="tab:blue")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return ax


def plot_crowding(ax: Axes, table: pd.DataFrame, peaks: pd.DataFrame | None = None,
                  title: str = "Crowding: turnover of the long leg / the short leg") -> Axes:
    """Figure 21: the daily ratio, its 90th/95th long-run percentiles, and the peak dates."""
    if not _empty(ax, table):
        r = table["ratio"]
        ax.plot(r.index, r, lw=1.0, color="tab:blue", label="ratio")
        for q, ls in ((0.9, "--"), (0.95, ":")):
            ax.axhline(r.quantile(q), color="tab:red", lw=0.8, ls=ls, label=f"{round(q * 100)}th pct")
        if peaks is not None and len(peaks):
            ax.scatter(peaks.index, peaks["ratio"], color="tab:red", s=18, zorder=3, label="peaks")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax
