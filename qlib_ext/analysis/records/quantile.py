"""``QuantileRecord``: quantile backtests of the signal and the style factors (report figures 19-20).

Put it after ``SignalRecord``.  Over the members of the universe (default the CSI All Share) on each
signal day: 10 groups, rebalanced every 10 sessions, no cost (definitions: :mod:`..metrics.quantile`), for

* ``signal``: the run's ``pred.pkl``;
* ``signal_neutral``: the signal's daily OLS residual on industry dummies + size + ret_10 + std_10d +
  turn_10d (the report's stricter neutralisation, ``processors.xsection.residualize_xsection``);
* ``small`` (-size), ``reversal`` (-ret_10), ``low_vol`` (-std_10d), ``low_liquidity`` (-turn_10d):
  the report's style factors with its signs.

Artifacts under ``quantile/`` (:data:`ARTIFACTS.QUANTILE`): ``long_relative.csv`` (daily long-leg NAV
over the universe's, one column per factor), ``long_relative_window.csv`` (rebased to 1 at the
window's first session), ``groups.csv`` (factor x annualised return per group, ``long_excess``,
``monotonicity``, ``long_short``, ``window_excess``), ``navs.pkl`` ({factor: session x group NAVs}),
figures ``long_relative.png`` (19), ``long_relative_window.png`` (20), ``groups.png``; metrics
``quantile.<factor>.long_excess|monotonicity|long_short|window_excess``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from qlib.workflow.record_temp import SignalRecord

from ...processors.neutralize import NEUTRALIZE_PRESETS
from ...processors.xsection import residualize_xsection
from ...schema import ARTIFACTS, UNIVERSE
from ..inputs import load_signal, market_frame, shift_session
from ..metrics.quantile import quantile_navs, quantile_summary, rebase, relative_navs
from ..plots.common import finish, new_figure, plot_group_returns, plot_lines
from ..registry import register
from .base import AnalysisRecord

#: the report's style factors with its signs: name -> (market_frame column, sign)
STYLE_FACTORS: dict[str, tuple[str, float]] = {
    "small": ("size", -1.0), "reversal": ("ret_10", -1.0), "low_vol": ("std_10d", -1.0),
    "low_liquidity": ("turn_10d", -1.0),
}
INDUSTRY = "industry"


def neutralize(signal: pd.Series, market: pd.DataFrame, against: Sequence[str], min_names: int = 10) -> pd.Series:
    """Daily OLS residual of ``signal`` on industry dummies (when ``industry`` is in ``against``) + the rest."""
    cont = [a for a in against if a != INDUSTRY]
    df = market.reindex(signal.index)
    res = residualize_xsection(signal.to_numpy(), df[cont].to_numpy(), signal.index.get_level_values(0).to_numpy(),
                               df[INDUSTRY].to_numpy() if INDUSTRY in against else None,
                               min_names=min_names, standardize=False)
    return pd.Series(res, index=signal.index, name="signal_neutral").dropna()


@register(title="Quantile backtests (figures 19-20)", order=50, needs=("signal",), run="signal")
class QuantileRecord(AnalysisRecord):
    """Figures 19-20 (see module docstring).

    n_groups, hold, lag: groups, sessions between rebalances, sessions from signal to entry.  price:
    ``vwap`` or ``close`` (the traded price).  universe: instrument file.  window: (start, end) of
    figure 20 (end None = the last session).  neutralize_against: regressors of ``signal_neutral``
    (default the ``strict`` preset).  styles: include the style factors.
    """

    artifact_path = ARTIFACTS.QUANTILE
    depend_cls = SignalRecord

    def __init__(self, recorder: Any, n_groups: int = 10, hold: int = 10, lag: int = 1, price: str = "vwap",
                 universe: str = UNIVERSE, window: Sequence = ("2023-12-29", None),
                 neutralize_against: Sequence[str] = NEUTRALIZE_PRESETS["strict"], styles: bool = True) -> None:
        super().__init__(recorder=recorder)
        if price not in ("vwap", "close"):
            raise ValueError(f"price must be 'vwap' or 'close', got {price!r}")
        self.n_groups, self.hold, self.lag, self.price = int(n_groups), int(hold), int(lag), price
        self.universe, self.window = universe, tuple(window)
        self.against, self.styles = list(neutralize_against), bool(styles)

    def list(self) -> list[str]:
        return ["long_relative.csv", "long_relative_window.csv", "groups.csv", "navs.pkl",
                "long_relative.png", "long_relative_window.png", "groups.png", "summary.json"]

    def factors(self, signal: pd.Series, market: pd.DataFrame) -> dict[str, pd.Series]:
        """The factors to backtest, on the signal's (datetime, instrument) rows inside the universe."""
        signal = signal[signal.index.isin(market.index)]
        if signal.empty:
            raise ValueError(f"QuantileRecord: no signal row is a member of {self.universe!r} on its day")
        out = {"signal": signal, "signal_neutral": neutralize(signal, market, self.against)}
        if self.styles:
            rows = market.reindex(signal.index)
            for name, (col, sign) in STYLE_FACTORS.items():
                out[name] = (sign * rows[col]).dropna().rename(name)
        return out

    def generate(self, **kwargs: Any) -> dict:
        signal = load_signal(self)
        days = signal.index.get_level_values("datetime")
        market = market_frame(days.min(), shift_session(days.max(), self.hold + self.lag), self.universe)
        prices = market[self.price].unstack("instrument")
        navs, rel, rows = {}, {}, {}
        for name, factor in self.factors(signal, market).items():
            if factor.empty:
                raise ValueError(f"QuantileRecord: factor {name!r} has no finite value on the signal's rows")
            navs[name] = quantile_navs(factor, prices, self.n_groups, self.hold, self.lag)
            rel[name] = relative_navs(navs[name])[self.n_groups]
            rows[name] = quantile_summary(navs[name])
        rel = pd.DataFrame(rel)
        w0, w1 = self.window
        win = rebase(rel, w0, w1)
        if win.empty:
            raise ValueError(f"QuantileRecord: window {w0}..{w1} holds no session of the backtest "
                             f"({rel.index[0].date()}..{rel.index[-1].date()})")
        groups = pd.DataFrame(rows).T
        groups["window_excess"] = win.iloc[-1] - 1
        groups.index.name = "factor"
        span = f"{rel.index[0].date()}..{rel.index[-1].date()}"
        fig19, ax = new_figure()
        plot_lines(ax, rel, f"Top-decile NAV relative to the universe, {span}", "relative NAV", hline=1.0)
        fig20, ax = new_figure()
        plot_lines(ax, win, f"Top-decile NAV relative to the universe, {win.index[0].date()}..{win.index[-1].date()}",
                   "relative NAV", hline=1.0)
        fig_g, ax = new_figure((8, 4))
        ann = groups.loc["signal", [f"group_{g}" for g in range(1, self.n_groups + 1)]]
        plot_group_returns(ax, ann.rename(lambda c: c.removeprefix("group_")),
                           f"Signal: annualised return by group ({self.n_groups} groups, {self.hold}-session rebalance)")
        metrics = {f"{f}.{k}": groups.loc[f, k] for f in groups.index
                   for k in ("long_excess", "monotonicity", "long_short", "window_excess")}
        self.save_artifacts(tables={"long_relative": rel, "long_relative_window": win, "groups": groups},
                            figures={"long_relative": finish(fig19), "long_relative_window": finish(fig20),
                                     "groups": finish(fig_g)},
                            objects={"navs": navs}, metrics=metrics)
        self.say(f"Quantile backtests ({span}):\n{groups[['long_excess', 'monotonicity', 'long_short', 'window_excess']].round(3).to_string()}")
        return {"long_relative": rel, "groups": groups, "navs": navs}
