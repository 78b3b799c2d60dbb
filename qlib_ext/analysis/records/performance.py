"""``PerformanceRecord``: the report's excess-return tables and NAV figures inside a Qlib recorder.

Put it after ``PortAnaRecord`` in a qrun ``record:`` list (it reads that record's
``portfolio_analysis/report_normal_<freq>.pkl``, and the strategy's ``optim/diagnostics.pkl`` when
present).  Artifacts under ``performance/``:

* ``table.pkl`` / ``table.csv``: one row, the columns of report tables 11, 23, 30, 33, 35 --
  annualised excess, information ratio, excess max drawdown, Calmar, excess per calendar year,
  excess and max drawdown inside ``window`` (default 2024-01-01..2024-03-29), annual one-sided
  turnover, mean constituent weight (from the diagnostics);
* ``excess_returns.pkl`` (daily), ``excess_nav.pkl``, ``yearly.pkl``;
* ``excess_nav.png`` (figures 12-13) and ``excess_nav_window.png`` (figures 14-15, 24).

The headline numbers are logged as MLflow metrics ``performance.<name>`` and in ``summary.json``
(one saver and loader for every recorder: :mod:`qlib_ext.artifacts`).  Conventions (geometric,
252 sessions) are those of :mod:`..metrics.performance`, stated in its docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from qlib.workflow.recorder import Recorder

from ...artifacts import artifact_name, load_artifact
from ...schema import ARTIFACTS, DIAGNOSTICS_FILE, PORT_REPORT_FILE
from ..metrics.performance import (
    DEFAULT_WINDOW,
    PERIODS,
    excess_returns,
    nav_frame,
    performance_summary,
    yearly_returns,
)
from ..plots.common import finish, new_figure
from ..plots.performance import plot_excess_nav
from ..registry import register
from .base import AnalysisRecord

SOLVED = ("optimal", "inaccurate", "relaxed")


@register(title="Performance (tables 11, 23, 30, 33, 35; figures 12-15, 24)", order=20, needs=("backtest",),
          optional=("optimizer diagnostics",), run="backtest")
class PerformanceRecord(AnalysisRecord):
    """Report tables 11/23/30/33/35 and figures 12-15/24 from a backtest's daily report (see module docstring).

    freq: the report frequency written by PortAnaRecord ("1day").  window: (start, end) of the
    in-window columns and figure.  with_cost: excess return net of trading costs.  excess_mode:
    "difference" (e = r - r_b - cost) or "ratio" (NAV = portfolio NAV / benchmark NAV).  periods:
    sessions per year.  label: row name of the table.  years: calendar years to report (default:
    every year of the backtest).  diagnostics: artifact of the strategy's rebalance diagnostics
    (optional; gives the mean constituent weight).
    """

    artifact_path = ARTIFACTS.PERFORMANCE

    def __init__(self, recorder: Recorder, freq: str = "1day", window: Sequence = DEFAULT_WINDOW,
                 with_cost: bool = True, excess_mode: str = "difference", periods: int = PERIODS,
                 label: str = "portfolio", years: Sequence[int] | None = None,
                 diagnostics: str | None = artifact_name(ARTIFACTS.OPTIM, DIAGNOSTICS_FILE)) -> None:
        super().__init__(recorder=recorder)
        if len(window) != 2:
            raise ValueError(f"window must be (start, end), got {window!r}")
        self.freq, self.window = freq, (pd.Timestamp(window[0]), pd.Timestamp(window[1]))
        self.with_cost, self.excess_mode, self.periods = bool(with_cost), excess_mode, int(periods)
        self.label, self.years, self.diagnostics = label, years, diagnostics

    def list(self) -> list[str]:
        return ["table.pkl", "table.csv", "excess_returns.pkl", "excess_nav.pkl", "yearly.pkl",
                "excess_nav.png", "excess_nav_window.png", "summary.json"]

    def _constituent_weight(self) -> float | None:
        if self.diagnostics is None:
            return None
        if not self.has(self.diagnostics):  # a backtest from another strategy: the column is left out
            self.missing_input("optimizer diagnostics", f"no {self.diagnostics!r} in the run: constituent weight left out")
            return None
        diag = self.load(self.diagnostics)
        solved = diag[diag["status"].isin(SOLVED)] if "status" in diag else diag
        return float(solved["constituent_weight"].mean()) if "constituent_weight" in solved else None

    def generate(self, **kwargs: Any) -> dict:
        report_file = PORT_REPORT_FILE.replace("_1day.pkl", f"_{self.freq}.pkl")
        report = load_artifact(self.recorder, report_file,
                               hint="run PortAnaRecord (with generate_portfolio_metrics) before PerformanceRecord")
        e = excess_returns(report, self.with_cost, self.excess_mode)
        summary = performance_summary(e, self.window, self.periods, turnover=report.get("turnover"),
                                      years=self.years, constituent_weight=self._constituent_weight())
        table = summary.to_frame(self.label).T
        navs = nav_frame(e)
        win_navs = nav_frame(e, *self.window)
        span = f"{e.index[0].date()}..{e.index[-1].date()}"
        objects = {"table": table, "excess_returns": e, "excess_nav": navs["excess"], "yearly": yearly_returns(e)}
        w0, w1 = (d.date() for d in self.window)
        figures = {}
        for name, frame, title in (("excess_nav", navs, f"Excess NAV {span} ({self.label})"),
                                   ("excess_nav_window", win_navs, f"Excess NAV {w0}..{w1} ({self.label})")):
            fig, ax = new_figure()
            plot_excess_nav(ax, frame, title)
            figures[name] = finish(fig)
        self.save_artifacts(tables={"table": table}, figures=figures, objects=objects, metrics=summary.to_dict())
        self.say(f"Performance ({span}, geometric, {self.periods} sessions/year):\n{table.T.to_string()}")
        return objects
