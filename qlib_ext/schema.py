"""Names several rooms share: daily fields, indexes, instrument files, artifact folders.

One definition per name, so a rename happens here and nowhere else.  Import the constant; do not
write the string again (``from qlib_ext.schema import INDEXES, ARTIFACTS``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Qlib's standard daily fields (SPEC 3.1).
QLIB_FIELDS = ("open", "high", "low", "close", "vwap", "volume", "amount", "factor", "change")
#: Our size fields: ``turnover`` = volume / float shares; caps in CNY.
SIZE_FIELDS = ("turnover", "total_shares", "float_shares", "mcap", "float_mcap")
#: Trading-state fields: level-1 industry code, the day's limit prices, 1 on suspended days.
STATE_FIELDS = ("industry", "up_limit", "down_limit", "paused")
#: 1-minute bar fields (``*.1min.bin``).
MINUTE_FIELDS = ("open", "high", "low", "close", "volume", "amount")
#: Price fields of a minute bar (the rest are volume-like).
PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class IndexInfo:
    """A benchmark index: its instrument file, its index instrument and its point-in-time weight field."""

    name: str           # instrument file and strategy ``benchmark`` keyword, e.g. "csi500"
    instrument: str     # the index instrument (a Qlib backtest benchmark), e.g. "SH000905"
    weight_field: str   # the daily member weight field, e.g. "w_csi500" (sums to 1 over members)
    label: str          # how tables and figures name it, e.g. "CSI500"

    @property
    def expression(self) -> str:
        """The Qlib expression of the weight field, e.g. ``$w_csi500``."""
        return f"${self.weight_field}"


#: The benchmark indexes, in size order (CSI All Share has no weight field of its own).
BENCHMARKS: dict[str, IndexInfo] = {
    "csi300": IndexInfo("csi300", "SH000300", "w_csi300", "CSI300"),
    "csi500": IndexInfo("csi500", "SH000905", "w_csi500", "CSI500"),
    "csi1000": IndexInfo("csi1000", "SH000852", "w_csi1000", "CSI1000"),
}
#: The CSI All Share index: instrument file name of the whole A-share universe, and its instrument.
ALL_SHARE, ALL_SHARE_INSTRUMENT = "csiall", "SH000985"
#: Every index instrument the datasets carry, by instrument file name.
INDEX_INSTRUMENTS: dict[str, str] = {**{k: v.instrument for k, v in BENCHMARKS.items()}, ALL_SHARE: ALL_SHARE_INSTRUMENT}
#: Index instrument -> instrument file name (inverse of :data:`INDEX_INSTRUMENTS`).
INDEX_MARKETS: dict[str, str] = {v: k for k, v in INDEX_INSTRUMENTS.items()}
#: Instrument files of a dataset: every stock, the CSI All Share universe, the benchmark members.
MARKETS = ("all", ALL_SHARE, *BENCHMARKS)
#: The strategy's default universe.
UNIVERSE = ALL_SHARE

#: Point-in-time weight fields of the benchmarks.
WEIGHT_FIELDS = tuple(v.weight_field for v in BENCHMARKS.values())
#: Every daily field of a stock in our datasets (SPEC 3.1).
STOCK_FIELDS = (*QLIB_FIELDS, *SIZE_FIELDS, *STATE_FIELDS, *WEIGHT_FIELDS)
#: Daily fields of an index instrument.
INDEX_FIELDS = ("open", "high", "low", "close", "volume", "amount", "change", "factor")


def benchmark(name: str) -> IndexInfo:
    """The :class:`IndexInfo` of ``csi500`` / ``CSI500`` / ``SH000905``; ``ValueError`` naming the known ones."""
    key = str(name).strip()
    if key.lower() in BENCHMARKS:
        return BENCHMARKS[key.lower()]
    for info in BENCHMARKS.values():
        if key.upper() == info.instrument:
            return info
    raise ValueError(f"unknown benchmark {name!r}: known {sorted(BENCHMARKS)} "
                     f"(or their instruments {[v.instrument for v in BENCHMARKS.values()]})")


class ARTIFACTS:
    """Recorder artifact folders (``Recorder.log_artifact(..., artifact_path=...)``)."""

    OPTIM = "optim"                    # the strategy's per-rebalance diagnostics and weights
    PERFORMANCE = "performance"        # tables 11/23/30/33/35, excess NAV figures
    STYLE_PROFILE = "style_profile"    # figures 16-18
    QUANTILE = "quantile"              # figures 19-20
    CROWDING = "crowding"              # figures 21-22
    HOLDINGS = "holdings"              # tables 23/31/34/36
    ATTRIBUTION = "attribution"        # figures 25-26
    STYLE_TIMING = "style_timing"      # figure 27, table 28, figure 29
    MARKET_REVIEW = "market_review"    # figures 1-4
    REPORT = "report"                  # the HTML page of a run
    MODEL = "model"                    # trained model objects and training curves


#: Optimizer artifact file names inside :attr:`ARTIFACTS.OPTIM`.
DIAGNOSTICS_FILE = "diagnostics.pkl"
WEIGHTS_FILE = "weights.pkl"
#: Qlib's own artifact names that our recorders read.
PRED_FILE = "pred.pkl"
LABEL_FILE = "label.pkl"
PORT_REPORT_FILE = "portfolio_analysis/report_normal_1day.pkl"
POSITIONS_FILE = "portfolio_analysis/positions_normal_1day.pkl"
