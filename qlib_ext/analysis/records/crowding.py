"""``CrowdingRecord``: crowding of the signal (report figures 21-22) inside a Qlib recorder.

Put it after ``SignalRecord``.  Artifacts under ``crowding/`` (:data:`ARTIFACTS.CROWDING`):

* ``crowding.csv`` / ``.pkl``: datetime x [long, short, ratio, percentile] -- the mean 10-session
  turnover (``turn_10d``) of the top 5% by signal, of the bottom 5%, their ratio and its long-run
  percentile;
* ``peaks.csv``: the peak dates (ratio, percentile);
* ``crowding.png`` (figure 21: the ratio, its 90th/95th percentiles and the peaks),
  ``crowding_window.png`` (figure 22: the same from ``window_start``), ``leg_turnover.png``;
* metrics ``crowding.mean_ratio``, ``median_ratio``, ``last_ratio``, ``last_percentile``, ``max_ratio``.

Definitions: :mod:`..metrics.crowding`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from qlib.workflow.record_temp import SignalRecord

from ...schema import ARTIFACTS, UNIVERSE
from ..inputs import load_signal, market_frame
from ..metrics.crowding import crowding_peaks, crowding_ratio, crowding_summary
from ..plots.common import finish, new_figure, plot_crowding, plot_lines
from ..registry import register
from .base import AnalysisRecord

TURNOVER = "turn_10d"


@register(title="Crowding (figures 21-22)", order=60, needs=("signal",), run="signal")
class CrowdingRecord(AnalysisRecord):
    """Figures 21-22 from the run's ``pred.pkl`` (see module docstring).

    fraction: leg size (0.05).  universe: instrument file of the turnover.  separation, min_percentile,
    n_peaks: the peak rule of :func:`.crowding.crowding_peaks`.  window_start: first day of figure 22.
    """

    artifact_path = ARTIFACTS.CROWDING
    depend_cls = SignalRecord

    def __init__(self, recorder: Any, fraction: float = 0.05, universe: str = UNIVERSE, separation: int = 20,
                 min_percentile: float = 0.9, n_peaks: int = 10, window_start: str | None = "2023-12-29") -> None:
        super().__init__(recorder=recorder)
        self.fraction, self.universe = float(fraction), universe
        self.separation, self.min_percentile, self.n_peaks = int(separation), float(min_percentile), int(n_peaks)
        self.window_start = window_start

    def list(self) -> list[str]:
        return ["crowding.csv", "crowding.pkl", "peaks.csv", "crowding.png", "crowding_window.png",
                "leg_turnover.png", "summary.json"]

    def generate(self, **kwargs: Any) -> dict:
        signal = load_signal(self)
        days = signal.index.get_level_values("datetime")
        turnover = market_frame(days.min(), days.max(), self.universe)[TURNOVER]
        table = crowding_ratio(signal, turnover, self.fraction)
        peaks = crowding_peaks(table["ratio"], self.separation, self.min_percentile, self.n_peaks)
        metrics = crowding_summary(table)
        pct = f"{self.fraction:.0%}"
        fig21, ax = new_figure()
        plot_crowding(ax, table, peaks, f"Crowding: {TURNOVER} of the top {pct} / the bottom {pct}")
        win = table.loc[pd.Timestamp(self.window_start):] if self.window_start else table
        if win.empty:
            raise ValueError(f"CrowdingRecord: window_start {self.window_start} is after the signal's last day "
                             f"{table.index[-1].date()}")
        fig22, ax = new_figure()
        plot_crowding(ax, win, peaks.loc[peaks.index >= win.index[0]],
                      f"Crowding since {win.index[0].date()} (percentiles of the whole span)")
        fig_legs, ax = new_figure()
        plot_lines(ax, table[["long", "short"]].rename(columns={"long": f"top {pct}", "short": f"bottom {pct}"}),
                   f"Mean {TURNOVER} of the signal's legs", TURNOVER, hline=None)
        self.save_artifacts(tables={"crowding": table, "peaks": peaks},
                            figures={"crowding": finish(fig21), "crowding_window": finish(fig22),
                                     "leg_turnover": finish(fig_legs)},
                            objects={"crowding": table}, metrics=metrics)
        self.say(f"Crowding ({TURNOVER} top/bottom {pct}): mean {metrics['mean_ratio']:.3f}, last "
              f"{metrics['last_ratio']:.3f} (percentile {metrics['last_percentile']:.2f}); peaks:\n{peaks.to_string()}")
        return {"crowding": table, "peaks": peaks}
