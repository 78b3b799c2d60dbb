"""Style timing figures (report figures 27 and 29); data from :mod:`..metrics.style_timing`.

Each function draws on the ``ax`` it is given and returns it (one convention for every figure).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from ..metrics.style_timing import HORIZON


def plot_scatter(ax: Axes, points: pd.DataFrame, style: str, horizon: int = HORIZON, annotate: int = 6) -> Axes:
    """Figure 27: active exposure vs the next-``horizon``-session factor return; outliers in red, dated."""
    p = points[points["style"] == style]
    out = p[p["outlier"].astype(bool)]
    ins = p[~p["outlier"].astype(bool)]
    ax.scatter(ins["exposure"], ins["forward_return"], s=12, alpha=0.6, label="rebalances")
    ax.scatter(out["exposure"], out["forward_return"], s=24, color="tab:red", label="outliers")
    big = out.reindex(out["forward_return"].abs().sort_values(ascending=False).index[:annotate])
    for _, r in big.iterrows():
        ax.annotate(str(pd.Timestamp(r["datetime"]).date()), (r["exposure"], r["forward_return"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.axvline(0.0, color="grey", lw=0.6)
    ax.set_xlabel(f"active {style} exposure")
    ax.set_ylabel(f"next {horizon}-session {style} return")
    ax.set_title(f"{style}: active exposure vs next {horizon}-session factor return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_exposure_series(ax: Axes, exposure: pd.Series, style: str = "size") -> Axes:
    """Figure 29: the active exposure at each rebalance over time."""
    ax.plot(exposure.index, exposure.to_numpy(float), lw=1.2)
    ax.axhline(0.0, color="grey", lw=0.6, ls="--")
    ax.set_title(f"Active {style} exposure at each rebalance")
    ax.set_ylabel("active exposure (std units)")
    ax.grid(alpha=0.3)
    return ax
