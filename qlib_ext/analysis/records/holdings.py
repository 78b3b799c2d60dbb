"""``HoldingsProfileRecord``: what the portfolio holds (report tables 23, 31, 34, 36) in a Qlib recorder.

Put it after ``PortAnaRecord``.  The weights come from the strategy's ``optim/weights.pkl`` (target
weights and benchmark weights per rebalance; the signal day of each from ``optim/diagnostics.pkl``)
or, for another strategy, from Qlib's ``portfolio_analysis/positions_normal_1day.pkl`` (end-of-day
weights, every day; then give ``benchmark``).  Market caps (``$mcap``) of the universe and the
risk store's ``size`` exposure are taken on the signal day.  Definitions: :mod:`..metrics.holdings`.

Artifacts under ``holdings/`` (:data:`ARTIFACTS.HOLDINGS`): ``table.csv`` (rows ``run`` and ``window``:
the means of ``per_rebalance``), ``per_rebalance.csv`` / ``.pkl``, ``holdings.png``; metrics
``holdings.<column>`` (run means) and ``holdings.window_<column>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from qlib.workflow.record_temp import PortAnaRecord

from ...schema import ARTIFACTS, DIAGNOSTICS_FILE, POSITIONS_FILE, UNIVERSE, WEIGHTS_FILE
from ..inputs import benchmark_weights, load_style_exposures, market_frame, sessions
from ..metrics.holdings import SMALL_CAP, average_profile, holdings_profile
from ..metrics.performance import DEFAULT_WINDOW
from ..plots.common import finish, new_figure, plot_lines
from ..registry import register
from .base import AnalysisRecord

HEADLINE = ("constituent_weight", "small_10", "small_20", "small_30", "m1_active", "m2_active", "m3_active",
            "n_holdings")


@register(title="Holdings profile (tables 23, 31, 34, 36)", order=30, needs=("backtest", "risk"), run="backtest")
class HoldingsProfileRecord(AnalysisRecord):
    """Tables 23/31/34/36 (see module docstring).

    window: (start, end) of the ``window`` row.  smallest: cap fractions of ``small_<q>``.  risk_store:
    store directory (default ``<provider_uri>/risk``).  size_style: the exposure of the moments.
    universe: instrument file ranked by cap.  benchmark: index name for the positions fallback.
    min_weight: a holding counts above it.
    """

    artifact_path = ARTIFACTS.HOLDINGS
    depend_cls = PortAnaRecord

    def __init__(self, recorder: Any, window: Sequence = DEFAULT_WINDOW, smallest: Sequence[float] = SMALL_CAP,
                 risk_store: str | None = None, size_style: str = "size", universe: str = UNIVERSE,
                 benchmark: str | None = None, min_weight: float = 1e-6) -> None:
        super().__init__(recorder=recorder)
        if len(window) != 2:
            raise ValueError(f"window must be (start, end), got {window!r}")
        self.window, self.smallest = tuple(window), tuple(float(q) for q in smallest)
        self.risk_store, self.size_style, self.universe = risk_store, size_style, universe
        self.benchmark, self.min_weight = benchmark, float(min_weight)

    def list(self) -> list[str]:
        return ["table.csv", "per_rebalance.csv", "per_rebalance.pkl", "holdings.png", "summary.json"]

    def weights(self) -> tuple[pd.DataFrame, pd.Series, str]:
        """(weights [weight, benchmark] on (datetime, instrument), rebalance -> signal day, source)."""
        if self.has(WEIGHTS_FILE, ARTIFACTS.OPTIM):
            w = self.load(WEIGHTS_FILE, ARTIFACTS.OPTIM)
            if self.has(DIAGNOSTICS_FILE, ARTIFACTS.OPTIM):
                diag = self.load(DIAGNOSTICS_FILE, ARTIFACTS.OPTIM)
                signal_dates = pd.to_datetime(diag["signal_date"]).dropna() if "signal_date" in diag else None
            else:
                self.skip(f"no {ARTIFACTS.OPTIM}/{DIAGNOSTICS_FILE}: signal day = the session before each rebalance")
                signal_dates = None
            return w, signal_dates, f"{ARTIFACTS.OPTIM}/{WEIGHTS_FILE}"
        if not self.has(POSITIONS_FILE):
            raise FileNotFoundError(
                f"HoldingsProfileRecord: neither {ARTIFACTS.OPTIM}/{WEIGHTS_FILE} (IndexEnhancementStrategy) nor "
                f"{POSITIONS_FILE} (PortAnaRecord) in recorder {self.recorder.id}: run the backtest first")
        if self.benchmark is None:
            raise ValueError("HoldingsProfileRecord: the run has no optim/weights.pkl; give `benchmark` "
                             "(e.g. csi500) to read the benchmark weights for Qlib's positions")
        positions = self.load(POSITIONS_FILE)
        rows = []
        for day, pos in positions.items():
            for inst, wt in pos.get_stock_weight_dict(only_stock=True).items():
                rows.append((pd.Timestamp(day), inst, float(wt)))
        w = pd.DataFrame(rows, columns=["datetime", "instrument", "weight"]).set_index(["datetime", "instrument"])
        return w, None, POSITIONS_FILE

    def generate(self, **kwargs: Any) -> dict:
        weights, signal_dates, source = self.weights()
        if weights.empty:
            raise ValueError(f"HoldingsProfileRecord: {source} holds no weights")
        dates = weights.index.get_level_values("datetime").unique().sort_values()
        cal = sessions()
        if signal_dates is None:
            prev = cal[(cal.searchsorted(dates) - 1).clip(0)]
            signal_dates = pd.Series(prev, index=dates)
        signal_dates = signal_dates.reindex(dates).fillna(pd.Series(cal[(cal.searchsorted(dates) - 1).clip(0)],
                                                                    index=dates))
        start, end = signal_dates.min(), signal_dates.max()
        if "benchmark" not in weights:
            bench = benchmark_weights(self.benchmark, start, end)
            shifted = bench.rename(index=dict(zip(signal_dates.to_numpy(), signal_dates.index)), level=0)
            weights = weights.join(shifted.rename("benchmark"), how="outer").fillna(0.0)
            weights = weights[weights.index.get_level_values(0).isin(dates)]
        size = load_style_exposures(start, end, self.risk_store, [self.size_style])[self.size_style]
        mcap = market_frame(start, end, self.universe)["mcap"]
        profile = holdings_profile(weights, mcap, size, self.smallest, self.min_weight, signal_dates)
        table = average_profile(profile, self.window)
        fig, ax = new_figure()
        cols = ["constituent_weight", *[c for c in profile.columns if c.startswith("small_")]]
        plot_lines(ax, profile[cols], f"Holdings per rebalance ({source})", "weight", hline=None)
        metrics = {c: table.loc["run", c] for c in table.columns}
        metrics.update({f"window_{c}": table.loc["window", c] for c in table.columns})
        self.save_artifacts(tables={"table": table, "per_rebalance": profile}, figures={"holdings": finish(fig)},
                            objects={"per_rebalance": profile}, metrics=metrics)
        self.say(f"Holdings profile ({source}, {len(profile)} rebalances):\n{table[list(HEADLINE)].T.round(4).to_string()}")
        return {"table": table, "per_rebalance": profile}
