"""A hand-made backtest on the tiny market for the holdings-based recorders (attribution, style timing,
market review, report): Qlib's report_normal and positions artifacts written directly, so the tests
know every weight and return exactly (no strategy run needed).

The portfolio holds 20 stocks, re-picked every 5 sessions at the close (equal weights, 5% cash), and
its return is ``sum_i w_{i,s} r_{i,t}`` with ``r`` the close-to-close return (the last close carried
over suspensions); the "benchmark" return is
``sum_i b_{i,s} r_{i,t}`` with the point-in-time ``$w_csi500`` weights; costs are 0.  So the
active return is exactly ``sum_i (w - b)_{i,s} r_{i,t}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START, END = "2023-06-01", "2024-03-28"
N_HOLD, CASH, EVERY = 20, 0.05, 5


@dataclass
class Backtest:
    report: pd.DataFrame          # Qlib report_normal: return, bench, cost, turnover
    positions: dict               # date -> qlib Position (end of day)
    diagnostics: pd.DataFrame     # one row per rebalance, indexed by its date
    weights: pd.Series            # (datetime, instrument) end-of-day weights
    bench: pd.Series              # (datetime, instrument) benchmark weights
    change: pd.DataFrame          # datetime x instrument close-to-close returns


def make_backtest(seed: int = 0, start: str = START, end: str = END) -> Backtest:
    """Build the backtest from Qlib's data (``qlib.init`` on the tiny market must have run)."""
    from qlib.backtest.position import Position
    from qlib.data import D

    df = D.features(D.instruments("csiall"), ["$close", "$change"], start_time=start, end_time=end)
    raw = df["$close"].unstack(level="instrument")
    close = raw.ffill()                                          # a suspended stock keeps its last price
    change = close.pct_change()
    bdf = D.features(D.instruments("csi500"), ["$w_csi500"], start_time=start, end_time=end)
    b = bdf["$w_csi500"].swaplevel().sort_index().rename_axis(["datetime", "instrument"])
    b = b[b.fillna(0) > 0]
    b = b / b.groupby(level="datetime").transform("sum")
    days = close.index
    rng = np.random.default_rng(seed)
    value, amounts, cash = 1e9, {}, 1e9
    positions, rets, benches, turnovers, rebal = {}, [], [], [], []
    w_rows = []
    for k, day in enumerate(days):
        px = close.loc[day]
        if k > 0:
            prev = days[k - 1]
            r_t = change.loc[day]
            w_prev = w_rows[-1]
            rets.append(float((w_prev * r_t.reindex(w_prev.index)).sum(min_count=1)))
            bp = b.loc[prev]
            benches.append(float((bp * r_t.reindex(bp.index).fillna(0.0)).sum()))
            value = cash + sum(a * px[c] for c, a in amounts.items())
        else:
            rets.append(0.0)
            benches.append(0.0)
        turnover = 0.0
        if k % EVERY == 0:
            ok = raw.loc[day].dropna().index                     # stocks trading today
            pick = list(rng.choice(ok, size=N_HOLD, replace=False))
            old = {c: a * px[c] / value for c, a in amounts.items()}
            amounts = {c: (1 - CASH) / N_HOLD * value / px[c] for c in pick}
            cash = CASH * value
            new = {c: a * px[c] / value for c, a in amounts.items()}
            turnover = sum(abs(new.get(c, 0) - old.get(c, 0)) for c in set(new) | set(old))
            rebal.append(day)
        turnovers.append(turnover)
        pos = Position(cash=cash, position_dict={c: {"amount": a, "price": float(px[c])} for c, a in amounts.items()})
        positions[day] = pos
        w_rows.append(pd.Series({c: a * px[c] / value for c, a in amounts.items()}))
    report = pd.DataFrame({"return": rets, "bench": benches, "cost": 0.0, "turnover": turnovers}, index=days)
    weights = pd.concat({d: w for d, w in zip(days, w_rows)}, names=["datetime", "instrument"])
    diagnostics = pd.DataFrame({"status": "optimal"}, index=pd.DatetimeIndex(rebal, name="date"))  # as RebalanceLog
    return Backtest(report, positions, diagnostics, weights, b, change)


def log_backtest(recorder, bt: Backtest, diagnostics: bool = True) -> None:
    """Save the backtest as the artifacts PortAnaRecord (and the strategy) would."""
    recorder.save_objects(artifact_path="portfolio_analysis", **{"report_normal_1day.pkl": bt.report,
                                                                "positions_normal_1day.pkl": bt.positions})
    if diagnostics:
        recorder.save_objects(artifact_path="optim", **{"diagnostics.pkl": bt.diagnostics})
