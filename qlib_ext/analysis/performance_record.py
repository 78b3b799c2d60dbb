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

The headline numbers are logged as MLflow metrics ``performance.<name>``.  Conventions (geometric,
252 sessions) are those of :mod:`.performance`, stated in its docstring.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qlib.workflow.record_temp import RecordTemp
from qlib.workflow.recorder import Recorder

from .performance import (
    DEFAULT_WINDOW,
    PERIODS,
    excess_returns,
    performance_summary,
    yearly_returns,
)
from .performance_plot import nav_frame, plot_excess_nav, save_figure

SOLVED = ("optimal", "inaccurate", "relaxed")


def load_artifact(recorder: Recorder, name: str, hint: str) -> Any:
    """``recorder.load_object(name)`` with an error naming the artifact, the run and what writes it."""
    try:
        return recorder.load_object(name)
    except Exception as exc:  # Qlib raises LoadObjectError, MLflow its own errors
        raise FileNotFoundError(f"artifact {name!r} not found in recorder {recorder.id}: {hint}") from exc


class PerformanceRecord(RecordTemp):
    """Report tables 11/23/30/33/35 and figures 12-15/24 from a backtest's daily report (see module docstring).

    freq: the report frequency written by PortAnaRecord ("1day").  window: (start, end) of the
    in-window columns and figure.  with_cost: excess return net of trading costs.  excess_mode:
    "difference" (e = r - r_b - cost) or "ratio" (NAV = portfolio NAV / benchmark NAV).  periods:
    sessions per year.  label: row name of the table.  years: calendar years to report (default:
    every year of the backtest).  diagnostics: artifact of the strategy's rebalance diagnostics
    (optional; gives the mean constituent weight).
    """

    artifact_path = "performance"

    def __init__(self, recorder: Recorder, freq: str = "1day", window: Sequence = DEFAULT_WINDOW,
                 with_cost: bool = True, excess_mode: str = "difference", periods: int = PERIODS,
                 label: str = "portfolio", years: Sequence[int] | None = None,
                 diagnostics: str | None = "optim/diagnostics.pkl") -> None:
        super().__init__(recorder=recorder)
        if len(window) != 2:
            raise ValueError(f"window must be (start, end), got {window!r}")
        self.freq, self.window = freq, (pd.Timestamp(window[0]), pd.Timestamp(window[1]))
        self.with_cost, self.excess_mode, self.periods = bool(with_cost), excess_mode, int(periods)
        self.label, self.years, self.diagnostics = label, years, diagnostics

    def list(self) -> list[str]:
        return ["table.pkl", "table.csv", "excess_returns.pkl", "excess_nav.pkl", "yearly.pkl",
                "excess_nav.png", "excess_nav_window.png"]

    def _constituent_weight(self) -> float | None:
        if self.diagnostics is None:
            return None
        try:
            diag = self.recorder.load_object(self.diagnostics)
        except Exception:  # a backtest from another strategy has no diagnostics: the column is left out
            return None
        solved = diag[diag["status"].isin(SOLVED)] if "status" in diag else diag
        return float(solved["constituent_weight"].mean()) if "constituent_weight" in solved else None

    def generate(self, **kwargs: Any) -> dict:
        report = load_artifact(self.recorder, f"portfolio_analysis/report_normal_{self.freq}.pkl",
                               "run PortAnaRecord (with generate_portfolio_metrics) before PerformanceRecord")
        e = excess_returns(report, self.with_cost, self.excess_mode)
        summary = performance_summary(e, self.window, self.periods, turnover=report.get("turnover"),
                                      years=self.years, constituent_weight=self._constituent_weight())
        table = summary.to_frame(self.label).T
        navs = nav_frame(e)
        win_navs = nav_frame(e, *self.window)
        span = f"{e.index[0].date()}..{e.index[-1].date()}"
        objects = {"table.pkl": table, "excess_returns.pkl": e, "excess_nav.pkl": navs["excess"],
                   "yearly.pkl": yearly_returns(e)}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, obj in objects.items():
                pd.to_pickle(obj, folder / name)
            table.to_csv(folder / "table.csv")
            save_figure(plot_excess_nav(navs, f"Excess NAV {span} ({self.label})"), folder / "excess_nav.png")
            w0, w1 = (d.date() for d in self.window)
            save_figure(plot_excess_nav(win_navs, f"Excess NAV {w0}..{w1} ({self.label})"),
                        folder / "excess_nav_window.png")
            self.recorder.save_objects(local_path=str(folder), artifact_path=self.get_path())
        metrics = {f"{self.artifact_path}.{k}": float(v) for k, v in summary.items() if np.isfinite(v)}
        self.recorder.log_metrics(**metrics)
        print(f"Performance ({span}, geometric, {self.periods} sessions/year):\n{table.T.to_string()}")
        return objects
