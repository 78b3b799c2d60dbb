"""Holdings profile of a portfolio (report tables 23, 31, 34, 36), per rebalance.  Pure pandas.

For each rebalance date t, with portfolio weights w, benchmark weights b (members: b > 0), the
universe's market caps and the size exposures x known on t's signal day (SPEC section 6):

* ``constituent_weight`` = sum of w over benchmark members;
* ``small_<q>`` = sum of w over the smallest q of the universe by market cap (the names of rank
  <= floor(q n) when the n universe names with a cap are ranked ascending, ties by order); the same
  for the benchmark as ``bench_small_<q>``;
* size moments: ``x_b = sum_i b_i x_i``, ``M_k(v) = sum_i v_i (x_i - x_b)^k`` for k = 1, 2, 3, as
  ``m<k>_portfolio``, ``m<k>_benchmark`` and ``m<k>_active`` = their difference (names without an
  exposure are left out of the sums);
* ``n_holdings`` = names with w > ``min_weight``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

SMALL_CAP = (0.1, 0.2, 0.3)


def _tag(q: float) -> str:
    return f"{round(q * 100):d}"


def holdings_profile(weights: pd.DataFrame, mcap: pd.Series, size: pd.Series,
                     smallest: Sequence[float] = SMALL_CAP, min_weight: float = 1e-6,
                     signal_dates: pd.Series | None = None) -> pd.DataFrame:
    """One row per rebalance date (see module docstring).

    weights: (datetime, instrument) x [weight, benchmark].  mcap: the universe's caps and size: the
    exposures, both on (date, instrument) of the *signal* day.  signal_dates: rebalance date -> the
    date whose ``mcap``/``size`` to use (default: the rebalance date itself).
    """
    missing = {"weight", "benchmark"} - set(weights.columns)
    if missing:
        raise KeyError(f"holdings: weights lack columns {sorted(missing)} (have {list(weights.columns)})")
    rows = {}
    for t, day in weights.groupby(level="datetime"):
        d = pd.Timestamp(signal_dates.get(t, t)) if signal_dates is not None else t
        w = day["weight"].droplevel("datetime").astype(float).fillna(0.0)
        b = day["benchmark"].droplevel("datetime").astype(float).fillna(0.0)
        row: dict[str, Any] = {"signal_date": d, "constituent_weight": float(w[b > 0].sum()),
                               "n_holdings": int((w > min_weight).sum()), "invested": float(w.sum())}
        cap = mcap.xs(d, level=0).dropna() if d in mcap.index.get_level_values(0) else pd.Series(dtype=float)
        rank = cap.rank(method="first")
        for q in smallest:
            small = rank.index[rank <= np.floor(q * len(cap))]
            row[f"small_{_tag(q)}"] = float(w.reindex(small).fillna(0).sum())
            row[f"bench_small_{_tag(q)}"] = float(b.reindex(small).fillna(0).sum())
        x = size.xs(d, level=0).dropna() if d in size.index.get_level_values(0) else pd.Series(dtype=float)
        names = w.index.union(b.index).intersection(x.index)
        xv, wv, bv = x[names].to_numpy(), w.reindex(names).fillna(0).to_numpy(), b.reindex(names).fillna(0).to_numpy()
        xb = float(bv @ xv) if len(names) else np.nan
        for k in (1, 2, 3):
            mp, mb = float(wv @ (xv - xb) ** k), float(bv @ (xv - xb) ** k)
            row.update({f"m{k}_portfolio": mp, f"m{k}_benchmark": mb, f"m{k}_active": mp - mb})
        row["size_coverage"] = float(w.reindex(names).fillna(0).sum() / w.sum()) if w.sum() > 0 else np.nan
        rows[t] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "datetime"
    return out


def average_profile(profile: pd.DataFrame, window: Sequence | None = None) -> pd.DataFrame:
    """Rows ``run`` (mean over every rebalance) and ``window`` (mean over rebalances inside it)."""
    num = profile.select_dtypes("number")
    out = {"run": num.mean()}
    if window is not None:
        inside = num.loc[pd.Timestamp(window[0]): pd.Timestamp(window[1])]
        out["window"] = inside.mean() if len(inside) else pd.Series(np.nan, index=num.columns)
    return pd.DataFrame(out).T
