"""``StyleProfileRecord``: the signal's style profile (report figures 16-18) inside a Qlib recorder.

Put it after ``SignalRecord`` in a qrun ``record:`` list; it needs the dataset's risk store
(``qlib-ext risk build``).  Artifacts under ``style_profile/`` (:data:`ARTIFACTS.STYLE_PROFILE`):

* ``summary.csv``: factor x [mean, std, t, share_positive, n_days] of the daily rank correlations
  with each risk-store style and ``ret_10`` / ``std_10d`` / ``turn_10d``, plus rows
  ``long_leg_size`` / ``short_leg_size`` (mean size exposure of the top / bottom 5%);
* ``correlation.csv`` / ``.pkl`` (daily, datetime x factor), ``legs.csv`` / ``.pkl`` (daily long/short size);
* ``mean_correlation.png`` (figure 16), ``correlation.png`` (figure 17, 20-session mean),
  ``leg_size.png`` (figure 18);
* metrics ``style_profile.corr_<factor>``, ``style_profile.long_leg_size``, ``style_profile.short_leg_size``.

Definitions: :mod:`..metrics.style_profile` (Spearman correlation of the day's ranks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qlib.workflow.record_temp import SignalRecord

from ...factors import REPORT_FACTORS
from ...schema import ARTIFACTS, UNIVERSE
from ..inputs import load_signal, load_style_exposures, market_frame
from ..metrics.style_profile import style_profile
from ..plots.common import finish, new_figure, plot_lines, plot_mean_correlations
from ..registry import register
from .base import AnalysisRecord


@register(title="Signal style profile (figures 16-18)", order=40, needs=("signal", "risk"), run="signal")
class StyleProfileRecord(AnalysisRecord):
    """Figures 16-18 from the run's ``pred.pkl`` and the risk store (see module docstring).

    risk_store: store directory (default ``<provider_uri>/risk``).  styles: risk-store styles to
    correlate with (default all).  factors: price-volume factors of ``qlib_ext.factors`` (default the
    report's three).  size_style: the style whose leg means figure 18 shows.  fraction: leg size.
    universe: instrument file the factors are read for.  rolling: smoothing of figure 17 (sessions).
    """

    artifact_path = ARTIFACTS.STYLE_PROFILE
    depend_cls = SignalRecord

    def __init__(self, recorder: Any, risk_store: str | None = None, styles: Sequence[str] | None = None,
                 factors: Sequence[str] = REPORT_FACTORS, size_style: str = "size", fraction: float = 0.05,
                 universe: str = UNIVERSE, rolling: int = 20, min_names: int = 10) -> None:
        super().__init__(recorder=recorder)
        self.risk_store, self.styles, self.factors = risk_store, styles, list(factors)
        self.size_style, self.fraction, self.universe = size_style, float(fraction), universe
        self.rolling, self.min_names = int(rolling), int(min_names)

    def list(self) -> list[str]:
        return ["summary.csv", "correlation.csv", "correlation.pkl", "legs.csv", "legs.pkl",
                "mean_correlation.png", "correlation.png", "leg_size.png", "summary.json"]

    def generate(self, **kwargs: Any) -> dict:
        signal = load_signal(self)
        days = signal.index.get_level_values("datetime")
        start, end = days.min(), days.max()
        expo = load_style_exposures(start, end, self.risk_store, self.styles)
        if self.size_style not in expo:
            raise KeyError(f"size_style {self.size_style!r} is not among the styles {list(expo.columns)}")
        market = market_frame(start, end, self.universe)[self.factors]
        factors = expo.join(market, how="outer")
        res = style_profile(signal, factors, expo[self.size_style], self.fraction, self.min_names)
        summary, corr, legs = res["summary"], res["correlation"], res["legs"]
        span = f"{start.date()}..{end.date()}"
        fig16, ax = new_figure((9, 4))
        plot_mean_correlations(ax, summary.loc[list(factors.columns)], f"Signal vs styles: mean daily rank IC, {span}")
        fig17, ax = new_figure()
        plot_lines(ax, corr, "Signal vs styles: daily rank correlation", "rank correlation", rolling=self.rolling)
        fig18, ax = new_figure()
        pct = f"{self.fraction:.0%}"
        plot_lines(ax, legs.rename(columns={"long": f"top {pct}", "short": f"bottom {pct}"}),
                   f"{self.size_style} exposure of the signal's legs", "exposure (std units)")
        metrics = {f"corr_{f}": summary.loc[f, "mean"] for f in factors.columns}
        metrics.update(long_leg_size=summary.loc["long_leg_size", "mean"],
                       short_leg_size=summary.loc["short_leg_size", "mean"])
        self.save_artifacts(tables={"summary": summary, "correlation": corr, "legs": legs},
                            figures={"mean_correlation": finish(fig16), "correlation": finish(fig17),
                                     "leg_size": finish(fig18)},
                            objects={"correlation": corr, "legs": legs}, metrics=metrics)
        self.say(f"Style profile of the signal ({span}, mean daily Spearman):\n{summary.round(3).to_string()}")
        return {"summary": summary, "correlation": corr, "legs": legs}
