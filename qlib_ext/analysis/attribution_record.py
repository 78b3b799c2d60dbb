"""``AttributionRecord``: report figures 25-26 (daily active return split into style, industry and
residual contributions) inside a Qlib recorder.

Put it after ``PortAnaRecord`` in a qrun ``record:`` list.  It reads Qlib's
``portfolio_analysis/report_normal_1day.pkl`` (active return = ``return - bench - cost``) and
``positions_normal_1day.pkl`` (end-of-day holdings), the benchmark's point-in-time weights
(``$w_<benchmark>``, through Qlib's ``D``), and the risk store's exposures, factor returns and specific
returns (``risk_store``, default ``<provider_uri>/risk``).  Formulas and conventions:
:mod:`qlib_ext.analysis.attribution`.  Artifacts under ``attribution/``:

* ``daily.csv``: per day ``active, style, industry, residual, country, specific, other`` and one column
  per style (contributions, fractions);
* ``cumulative.csv`` (running sums), ``periods.csv`` (annualised per period: full span, each year,
  the window, and any ``periods`` given), ``exposures.csv`` (daily active exposures);
* ``cumulative.png`` (figure 25), ``periods.png`` (figure 26); ``summary.json`` and MLflow metrics
  ``attribution.ann_<component>``, ``attribution.window_<component>``, ``attribution.identity_error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from qlib.workflow.record_temp import PortAnaRecord

from ..schema import ARTIFACTS, PORT_REPORT_FILE, POSITIONS_FILE
from .attribution import (
    active_exposures,
    active_weights,
    attribute,
    cumulative,
    default_periods,
    period_table,
    plot_cumulative,
    plot_periods,
    specific_contribution,
    summary,
)
from .base import AnalysisRecord
from .inputs import benchmark_weights, data_root
from .performance import DEFAULT_WINDOW, PERIODS


# ------------------------------------------------------------------------ inputs read through Qlib
def risk_store_dir(risk_store: str | Path | None) -> Path:
    """The risk store given, or ``<provider_uri>/risk``; ``FileNotFoundError`` naming the path tried."""
    from ..risk import store_path

    if risk_store is None:
        risk_store = data_root() / "risk"
    try:
        return store_path(risk_store)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"risk store (input risk_store): {exc}") from exc


def portfolio_weights(positions: Mapping[Any, Any]) -> pd.Series:
    """End-of-day weights ``amount x price / account value`` on (datetime, instrument) from Qlib's
    ``positions_normal_1day.pkl`` (a dict date -> ``Position``)."""
    if not isinstance(positions, Mapping) or not positions:
        raise ValueError(f"positions ({POSITIONS_FILE}): expected a non-empty dict date -> Position")
    rows: list[tuple[pd.Timestamp, str, float]] = []
    for date, pos in positions.items():
        book = pos.position if hasattr(pos, "position") else pos
        value = float(pos.calculate_value()) if hasattr(pos, "calculate_value") else float(book["now_account_value"])
        if value <= 0:
            continue
        ts = pd.Timestamp(date)
        for code, item in book.items():
            if isinstance(item, dict) and "amount" in item:
                rows.append((ts, str(code), float(item["amount"]) * float(item.get("price", 0.0)) / value))
    if not rows:
        return pd.Series([], index=pd.MultiIndex.from_arrays([pd.DatetimeIndex([]), []], names=["datetime", "instrument"]),
                         dtype=float, name="weight")
    df = pd.DataFrame(rows, columns=["datetime", "instrument", "weight"])
    return df.groupby(["datetime", "instrument"])["weight"].sum().sort_index()


def active_return(report: pd.DataFrame, with_cost: bool = True) -> pd.Series:
    """``return - bench - cost`` from Qlib's report_normal (``cost`` left out when ``with_cost`` is False)."""
    from .performance import excess_returns

    return excess_returns(report, with_cost=with_cost, mode="difference").rename("active")


def holdings_inputs(rec: AnalysisRecord, bench: str, store: Path, styles: Sequence[str] | None,
                    with_cost: bool = True):
    """(active return, active weights, daily active exposures, styles) of a backtest run."""
    from ..risk import load_exposures, load_meta

    report = rec.load(PORT_REPORT_FILE)
    positions = rec.load(POSITIONS_FILE)
    a = active_return(report, with_cost)
    if a.empty:
        raise ValueError(f"{PORT_REPORT_FILE}: the backtest report has no days")
    styles = list(styles or load_meta(store)["styles"])
    w = portfolio_weights(positions)
    start, end = a.index.min() - pd.Timedelta(days=15), a.index.max()
    b = benchmark_weights(bench, start, end)
    d = active_weights(w, b)
    d = d[d.index.get_level_values("datetime") <= end]
    exposures = load_exposures(store, start=start, end=end)
    return a, d, active_exposures(d, exposures, styles), styles


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
        from ..risk import load_factor_returns, load_specific_returns

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
        print(f"Attribution ({a.index[0].date()}..{a.index[-1].date()}, annualised, additive):\n"
              f"{table[['active', 'style', 'industry', 'residual']].to_string()}")
        return {"daily": contrib, "periods": table, "metrics": metrics}
