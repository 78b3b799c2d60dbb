"""``StyleTimingRecord``: report figure 27, table 28 and figure 29 inside a Qlib recorder.

Put it after ``PortAnaRecord`` (it reads the backtest's positions and report, the benchmark weights
and the risk store, like :class:`~qlib_ext.analysis.records.attribution.AttributionRecord`).  At each
rebalance date -- the ``date`` column of the strategy's ``optim/diagnostics.pkl`` when present, else
the backtest days with a positive ``turnover`` -- the portfolio's active style exposures (end-of-day
holdings) are set against each style's compounded factor return over the next ``horizon`` sessions.
Correlations with and without outliers and the outlier rule (robust z-score of the forward factor
return above ``outlier_z``): :mod:`qlib_ext.analysis.metrics.style_timing`.  Artifacts under ``style_timing/``:

* ``table.csv`` (table 28: per style n, corr, n_outliers, corr_ex_outliers, mean_exposure,
  outlier_dates), ``points.csv`` (every rebalance x style), ``outliers.csv``, ``exposures.csv``
  (active exposures at each rebalance);
* ``scatter_size.png`` (figure 27), ``scatter_styles.png`` (every style), ``active_size.png`` (figure 29);
* ``summary.json`` / MLflow ``style_timing.corr_<style>``, ``corr_ex_outliers_<style>``,
  ``n_outliers_<style>``, ``n_rebalances``, ``mean_active_size``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from qlib.workflow.record_temp import PortAnaRecord

from ...schema import ARTIFACTS, DIAGNOSTICS_FILE, PORT_REPORT_FILE
from ..inputs import holdings_inputs, risk_store_dir
from ..metrics.style_timing import (
    HORIZON,
    OUTLIER_Z,
    forward_returns,
    timing_points,
    timing_table,
)
from ..plots.style_timing import plot_exposure_series, plot_scatter
from ..registry import BENCHMARK, register
from .base import AnalysisRecord

SIZE = "size"


@register(title="Style timing (figure 27, table 28, figure 29)", order=80, needs=("backtest", "risk"), run="backtest",
          kwargs={"benchmark": BENCHMARK})
class StyleTimingRecord(AnalysisRecord):
    """Figure 27 / table 28 / figure 29: active style exposure vs next-``horizon``-session factor return.

    benchmark: index whose weights give ``b``.  risk_store: default ``<provider_uri>/risk``.
    horizon: sessions of the forward factor return (report: 5).  outlier_z: robust z-score above which
    a rebalance is an outlier.  styles: styles of table 28 (default every style of the store).
    with_cost: unused by the correlations; kept for symmetry with AttributionRecord's inputs.
    """

    artifact_path = ARTIFACTS.STYLE_TIMING
    depend_cls = PortAnaRecord

    def __init__(self, recorder: Any, benchmark: str = "csi500", risk_store: str | None = None,
                 horizon: int = HORIZON, outlier_z: float = OUTLIER_Z, styles: Sequence[str] | None = None,
                 with_cost: bool = True, **kwargs: Any) -> None:
        super().__init__(recorder=recorder, **kwargs)
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1 session, got {horizon}")
        if not float(outlier_z) > 0:
            raise ValueError(f"outlier_z must be positive, got {outlier_z}")
        self.benchmark, self.risk_store = benchmark, risk_store
        self.horizon, self.outlier_z = int(horizon), float(outlier_z)
        self.styles, self.with_cost = (list(styles) if styles else None), bool(with_cost)

    def list(self) -> list[str]:
        return ["table.csv", "points.csv", "outliers.csv", "exposures.csv", "scatter_size.png",
                "scatter_styles.png", "active_size.png", "summary.json"]

    def rebalance_dates(self, days: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The strategy's rebalance days (diagnostics rows, indexed by trade day, without the
        ``no_signal`` ones), else the report's days with turnover > 0."""
        path = f"{ARTIFACTS.OPTIM}/{DIAGNOSTICS_FILE}"
        if self.has(DIAGNOSTICS_FILE, ARTIFACTS.OPTIM):
            diag = self.load(DIAGNOSTICS_FILE, ARTIFACTS.OPTIM)
            if "status" in diag:
                diag = diag[diag["status"] != "no_signal"]
            dates = diag["date"] if "date" in diag else (diag.index if isinstance(diag.index, pd.DatetimeIndex) else None)
            if dates is not None:
                return pd.DatetimeIndex(pd.to_datetime(dates)).unique().sort_values()
            self.skip(f"{path} has no trade dates: rebalance dates are the backtest days with turnover > 0")
        else:
            self.skip(f"no {path}: rebalance dates are the backtest days with turnover > 0")
        report = self.load(PORT_REPORT_FILE)
        if "turnover" not in report:
            raise KeyError(f"{PORT_REPORT_FILE} has no turnover column and there is no {path}: "
                           "cannot tell the rebalance dates")
        t = report["turnover"].reindex(days).fillna(0.0)
        return pd.DatetimeIndex(t.index[t > 0])

    def generate(self, **kwargs: Any) -> dict:
        from ...risk import load_factor_returns

        store = risk_store_dir(self.risk_store)
        a, _, expo, styles = holdings_inputs(self, self.benchmark, store, self.styles, self.with_cost)
        dates = self.rebalance_dates(a.index)
        dates = dates[dates.isin(expo.index)]
        if dates.empty:
            raise ValueError(f"style timing: no rebalance date inside the backtest {a.index[0].date()}..{a.index[-1].date()}")
        f = load_factor_returns(store, start=dates.min() - pd.Timedelta(days=15))
        exposure = expo.loc[dates, styles]
        fwd = forward_returns(f[styles], dates, self.horizon)
        points = timing_points(exposure, fwd, styles, self.outlier_z)
        if points.empty:
            raise ValueError(f"style timing: no rebalance has a full {self.horizon}-session forward factor return "
                             f"(factor returns end {f.index.max().date()}, last rebalance {dates.max().date()})")
        table = timing_table(points, styles)

        fig27 = Figure(figsize=(7.5, 6))
        size = SIZE if SIZE in styles else styles[0]
        plot_scatter(fig27.subplots(), points, size, self.horizon)
        fig27.tight_layout()
        ncol = 3
        nrow = math.ceil(len(styles) / ncol)
        grid = Figure(figsize=(5 * ncol, 4.2 * nrow))
        axes = grid.subplots(nrow, ncol, squeeze=False).ravel()
        for ax, s in zip(axes, styles):
            plot_scatter(ax, points, s, self.horizon, annotate=3)
        for ax in axes[len(styles):]:
            ax.set_visible(False)
        grid.tight_layout()
        fig29 = Figure(figsize=(11, 4))
        plot_exposure_series(fig29.subplots(), exposure[size], size)
        fig29.autofmt_xdate()
        fig29.tight_layout()

        metrics: dict[str, float] = {"n_rebalances": float(len(dates)),
                                     "mean_active_size": float(exposure[size].mean())}
        for s in styles:
            for col in ("corr", "corr_ex_outliers", "n_outliers"):
                metrics[f"{col}_{s}"] = float(table.loc[s, col])
        self.save_artifacts(tables={"table": table, "points": points.set_index("datetime"),
                                    "outliers": points[points["outlier"]].set_index("datetime"),
                                    "exposures": exposure},
                            figures={f"scatter_{SIZE}": fig27, "scatter_styles": grid, f"active_{SIZE}": fig29},
                            metrics=metrics)
        self.say(f"Style timing ({len(dates)} rebalances, next {self.horizon} sessions, outliers |robust z| > "
              f"{self.outlier_z:g}):\n{table.drop(columns='outlier_dates').to_string()}")
        return {"table": table, "points": points, "metrics": metrics}
