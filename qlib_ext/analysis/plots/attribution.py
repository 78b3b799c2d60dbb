"""Return attribution figures (report figures 25-26); data from :mod:`..metrics.attribution`.

Each function draws on the ``ax`` it is given and returns it (one convention for every figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def plot_cumulative(ax: Axes, cum: pd.DataFrame, columns: Sequence[str] | None = None,
                    title: str = "Cumulative attribution") -> Axes:
    """Figure 25: cumulative (summed) contribution curves, one line per column."""
    cols = list(columns) if columns is not None else list(cum.columns)
    for c in cols:
        lw = 2.0 if c in ("active", "residual") else 1.2
        ax.plot(cum.index, cum[c], lw=lw, label=c)
    ax.axhline(0.0, color="grey", lw=0.6, ls="--")
    ax.set_title(title)
    ax.set_ylabel("cumulative contribution")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    return ax


def plot_periods(ax: Axes, table: pd.DataFrame, columns: Sequence[str],
                 title: str = "Attribution by period (annualised)") -> Axes:
    """Figure 26: grouped bars, one group per period, one bar per component."""
    t = table[list(columns)]
    n = len(columns)
    x = np.arange(len(t))
    width = 0.8 / max(n, 1)
    for k, c in enumerate(columns):
        ax.bar(x + (k - (n - 1) / 2) * width, t[c].to_numpy(float), width, label=c)
    ax.set_xticks(x)
    ax.set_xticklabels([str(i) for i in t.index], rotation=0)
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, ncol=min(n, 5))
    return ax
