"""``AttributionRecord``: report figures 25-26 (daily active return split into style, industry and
residual contributions) inside a Qlib recorder.

Put it after ``PortAnaRecord`` in a qrun ``record:`` list.  It reads Qlib's
``portfolio_analysis/report_normal_1day.pkl`` (active return = ``return - bench - cost``) and
``positions_normal_1day.pkl`` (end-of-day holdings), the benchmark's point-in-time weights
(``$w_<benchmark>``, through Qlib's ``D``), and the risk store's exposures, factor returns and specific
returns (``risk_store``, default ``<provider_uri>/risk``).  Formulas and conventions:
:mod:`qlib_ext.analysis.metrics.attribution`.  Artifacts under ``attribution/``:

* ``daily.csv``: per day ``active, style, industry, residual, country, specific, other`` and one column
  per style (contributions, fractions);
* ``cumulative.csv`` (running sums), ``periods.csv`` (annualised per period: full span, each year,
  the window, and any ``periods`` given), ``exposures.csv`` (daily active exposures);
* ``cumulative.png`` (figure 25), ``periods.png`` (figure 26); ``summary.json`` and MLflow metrics
  ``attribution.ann_<component>``, ``attribution.window_<component>``, ``attribution.identity_error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from qlib.workflow.record_temp import PortAnaRecord

from ...schema import ARTIFACTS
from ..inputs import holdings_inputs, risk_store_dir
from ..metrics.attribution import (
    attribute,
    cumulative,
    default_periods,
    period_table,
    specific_contribution,
    summary,
)
from ..metrics.performance import DEFAULT_WINDOW, PERIODS
from ..plots.attribution import plot_cumulative, plot_periods
from ..registry import BENCHMARK, register
from .base import AnalysisRecord


@register(title="Return attribution (figures 25-26)", order=70, needs=("backtest", "risk"), run="backtest",
          kwargs={"benchmark": BENCHMARK})
class AttributionRecord(AnalysisRecord):
    """Figures 25-26: daily style / industry / residual attribution of the active return (module docstring).

    benchmark: index whose weight field gives ``b`` (csi300 / csi500 / csi1000).  risk_store: risk
    store directory (default ``<provider_uri>/risk``).  window: (start, end) of the window columns
    (default 2024Q1).  periods: extra named periods ``{name: [start, end]}`` for figure 26 (e.g. the
    report's stages).  with_cost: active return net of trading costs.  styles: styles to attribute
    (default every style of the store).
    """

    artifact_path = ARTIFACTS.ATTRIBUTION
    depend_cls = PortAnaRecord

    def __init__(self, recorder: Any, benchmark: str = "csi500", risk_store: str | None = None,
                 window: Sequence = DEFAULT_WINDOW, periods: Mapping[str, Sequence] | None = None,
                 with_cost: bool = True, styles: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(recorder=recorder, **kwargs)
        if len(window) != 2:
            raise ValueError(f"window must be (start, end), got {window!r}")
        self.benchmark, self.risk_store = benchmark, risk_store
        self.window = (pd.Timestamp(window[0]), pd.Timestamp(window[1]))
        self.periods = {str(k): tuple(v) for k, v in dict(periods or {}).items()}
        self.with_cost, self.styles = bool(with_cost), list(styles) if styles else None

    def list(self) -> list[str]:
        return ["daily.csv", "cumulative.csv", "periods.csv", "exposures.csv", "cumulative.png", "periods.png",
                "summary.json"]

    def generate(self, **kwargs: Any) -> dict:
        from ...risk import load_factor_returns, load_specific_returns

        store = risk_store_dir(self.risk_store)
        a, d, expo, styles = holdings_inputs(self, self.benchmark, store, self.styles, self.with_cost)
        if not ((a.index >= self.window[0]) & (a.index <= self.window[1])).any():
            self.skip(f"window {self.window[0].date()}..{self.window[1].date()} has no backtest day: no window columns")
        start, end = a.index.min() - pd.Timedelta(days=15), a.index.max()
        f = load_factor_returns(store, start=start, end=end)
        calendar = pd.DatetimeIndex(sorted(set(a.index) | set(expo.index) | set(f.index)))
        spec = specific_contribution(d, load_specific_returns(store, start=start, end=end), calendar)
        contrib = attribute(a, expo, f, styles, specific=spec)
        cum = cumulative(contrib)
        periods = {**default_periods(contrib.index, self.window), **self.periods}
        table = period_table(contrib, periods, annualise=True, periods_per_year=PERIODS)
        metrics = summary(contrib, styles, self.window)

        fig25 = Figure(figsize=(11, 8))
        ax1, ax2 = fig25.subplots(2, 1, sharex=True)
        plot_cumulative(ax1, cum, ["active", "style", "industry", "residual"], "Cumulative attribution: components")
        plot_cumulative(ax2, cum, styles, "Cumulative attribution: styles")
        fig25.autofmt_xdate()
        fig25.tight_layout()
        fig26 = Figure(figsize=(11, 4.8))
        plot_periods(fig26.subplots(), table, ["active", "style", "industry", "residual", *styles[:3]])
        fig26.tight_layout()
        self.save_artifacts(tables={"daily": contrib, "cumulative": cum, "periods": table, "exposures": expo},
                            figures={"cumulative": fig25, "periods": fig26}, metrics=metrics)
        self.say(f"Attribution ({a.index[0].date()}..{a.index[-1].date()}, annualised, additive):\n"
              f"{table[['active', 'style', 'industry', 'residual']].to_string()}")
        return {"daily": contrib, "periods": table, "metrics": metrics}
