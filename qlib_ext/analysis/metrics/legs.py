"""Cross-sectional legs and groups of a signal: the one definition every recorder uses.

Within each day, names are ranked by the signal ascending with ties broken by order of appearance
(``rank(method="first")``), r = 1..n.  A name is in group ``g = floor((r - 1) * k / n) + 1`` of ``k``
groups (group k = the highest signal, the long leg).  The top (bottom) ``fraction`` leg is the
``max(1, floor(fraction * n))`` names of highest (lowest) signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _ranks(signal: pd.Series) -> tuple[pd.Series, pd.Series]:
    s = signal.dropna()
    g = s.groupby(level="datetime")
    return g.rank(method="first"), g.transform("size")


def quantile_groups(signal: pd.Series, n_groups: int = 10) -> pd.Series:
    """Group 1..n_groups of each name per day (NaN signals dropped); see the module docstring."""
    if n_groups < 2:
        raise ValueError(f"n_groups must be >= 2, got {n_groups}")
    r, n = _ranks(signal)
    return (np.floor((r - 1) * n_groups / n) + 1).astype(int).rename("group")


def legs(signal: pd.Series, fraction: float = 0.05) -> pd.Series:
    """+1 for the top ``fraction`` of each day, -1 for the bottom, 0 otherwise (NaN signals dropped)."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"leg fraction must be in (0, 0.5], got {fraction}")
    r, n = _ranks(signal)
    k = np.maximum(1, np.floor(fraction * n))
    out = pd.Series(0, index=r.index, name="leg", dtype=int)
    out[r > n - k] = 1
    out[r <= k] = -1
    return out


def leg_means(signal: pd.Series, values: pd.Series, fraction: float = 0.05) -> pd.DataFrame:
    """Daily mean of ``values`` over the top (``long``) and bottom (``short``) legs of ``signal``.

    Legs are formed among the names where both the signal and the value are finite.
    """
    both = pd.concat({"s": signal, "v": values}, axis=1, join="inner").dropna()
    leg = legs(both["s"], fraction)
    days = both.index.get_level_values("datetime")
    frame = pd.DataFrame({"v": both["v"].to_numpy(), "leg": leg.reindex(both.index).to_numpy()},
                         index=days)
    out = frame[frame["leg"] != 0].groupby([frame.index[frame["leg"] != 0], "leg"])["v"].mean().unstack()
    out = out.rename(columns={1: "long", -1: "short"}).reindex(columns=["long", "short"])
    out.index.name = "datetime"
    return out
