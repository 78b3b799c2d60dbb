"""Style profile of a signal (report figures 16-18): its daily rank correlation with style factors
and the size exposure of its long and short legs.  Pure pandas; tidy (datetime, instrument) in.

* correlation: Spearman, i.e. the Pearson correlation of the day's cross-sectional ranks (average
  ranks for ties), over the names where both the signal and the factor are finite; NaN on a day with
  fewer than ``min_names`` such names or a constant side;
* legs: the top / bottom ``fraction`` (default 5%) by signal (:mod:`.legs`), mean exposure per day;
* long-run figures: the plain mean over days of each daily series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .legs import leg_means


def daily_rank_corr(signal: pd.Series, factors: pd.DataFrame, min_names: int = 10) -> pd.DataFrame:
    """datetime x factor: Spearman correlation of ``signal`` with each column of ``factors`` per day.

    Pairwise complete: each factor's correlation uses the stock-days where both are finite.  The
    inputs are aligned once (not once per factor) and days are grouped by integer code.
    """
    joined = factors.join(signal.rename("__signal__"), how="inner")
    days = joined.index.get_level_values("datetime")
    codes, uniques = pd.factorize(days, sort=True)
    out = {}
    for name in factors.columns:
        ok = joined[name].notna().to_numpy() & joined["__signal__"].notna().to_numpy()
        if not ok.any():
            out[name] = pd.Series(dtype=float)
            continue
        both = pd.DataFrame({"s": joined["__signal__"].to_numpy()[ok], "f": joined[name].to_numpy()[ok]})
        key = codes[ok]
        g = both.groupby(key)
        r = g.rank()
        d = r - r.groupby(key).transform("mean")
        agg = pd.DataFrame({"xy": d["s"] * d["f"], "xx": d["s"] ** 2, "yy": d["f"] ** 2}).groupby(key).sum()
        n = g.size()
        den = np.sqrt(agg["xx"] * agg["yy"])
        corr = (agg["xy"] / den.where(den > 0)).where(n >= min_names)
        corr.index = uniques[corr.index]
        out[name] = corr
    frame = pd.DataFrame(out)
    frame.index.name = "datetime"
    return frame


def style_profile(signal: pd.Series, factors: pd.DataFrame, size: pd.Series | None = None,
                  fraction: float = 0.05, min_names: int = 10) -> dict[str, pd.DataFrame]:
    """Tables of figures 16-18.

    Returns ``correlation`` (datetime x factor, daily Spearman), ``legs`` (datetime x [long, short]:
    mean ``size`` exposure of the top / bottom ``fraction``; empty without ``size``) and ``summary``
    (factor x [mean, std, t, share_positive, n_days] of the daily correlations, plus rows
    ``long_leg_size`` / ``short_leg_size``).
    """
    corr = daily_rank_corr(signal, factors, min_names)
    if corr.dropna(how="all").empty:
        raise ValueError("style profile: no day with enough names where both the signal and a factor are finite")
    stats = pd.DataFrame({
        "mean": corr.mean(), "std": corr.std(ddof=1),
        "t": corr.mean() / corr.std(ddof=1) * np.sqrt(corr.count()),
        "share_positive": (corr > 0).sum() / corr.count(), "n_days": corr.count(),
    })
    legs = leg_means(signal, size, fraction) if size is not None else pd.DataFrame(columns=["long", "short"])
    if size is not None:
        for side in ("long", "short"):
            col = legs[side].dropna()
            stats.loc[f"{side}_leg_size"] = [col.mean(), col.std(ddof=1), np.nan, (col > 0).mean(), col.size]
    stats.index.name = "factor"
    return {"correlation": corr, "legs": legs, "summary": stats}
