"""``IndexEnhancementStrategy``: the report's optimizer-based index enhancement as a Qlib strategy.

Huatai 2024, figure 10 / SPEC section 6.  Every ``rebalance_days`` trading days (default 5) it solves

    maximise a . w  s.t.  sum w = 1, w >= 0, |w - b| <= 1%, industry +-2%, size +-0.3 std,
                          1/2 sum|w - w0| <= 20%, constituent weight >= 80%, tradability

(bounds from a preset in ``configs/optimizer/`` and ``optimizer:`` overrides, see :mod:`.presets`)
with :class:`qlib_ext.optim.IndexOptimizer`, and trades towards ``w`` at the exchange's deal price.

Inputs of a rebalance traded on day T (signal day S = the session before T):

* ``a``: the signal on S (any Qlib ``pred.pkl``: ``<PRED>`` in a PortAnaRecord config, a file path, or a
  Series/DataFrame), restricted to the members of ``universe`` (default ``csiall``) on S;
* ``b``: the point-in-time benchmark weights ``$w_<benchmark>`` on S (e.g. ``w_csi500``);
* ``w0``: the current position (values at S's close) / ``risk_degree``;
* industry ``$industry`` on S; style exposures of the risk store (``qlib_ext.risk``) at S's close;
* tradability: by default the **trade day's** flags of the exchange (``tradability_day="trade"``):
  a suspension is announced before the open and a one-word board opens locked at the limit, so
  both are known when the day's vwap orders are placed, and these are exactly the orders the
  exchange will refuse (the optimizer then redistributes the frozen weight to the rest, as the
  report describes).  ``"signal"`` uses S's flags instead (no trade-day information at all; the
  exchange may then refuse planned trades, counted in ``n_rejected``).

Orders come from :class:`.orders.TradableOrderGen` (per-direction blocking, sizing at S's close).
Each rebalance's diagnostics go to :class:`.diagnostics.RebalanceLog`; at the end of the backtest
they are saved as artifacts of the active Qlib recorder (``optim/diagnostics.pkl|csv``,
``optim/weights.pkl``) and/or written to ``diagnostics_dir``.  An infeasible problem or a solver
failure never stops the backtest (elastic re-solve or fallback, recorded).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qlib.backtest.decision import TradeDecisionWO
from qlib.contrib.strategy.signal_strategy import WeightStrategyBase
from qlib.log import get_module_logger
from qlib.utils import get_pre_trading_date

from ..data.check import missing_fields_message
from ..optim import OptimInput
from ..optim.inputs import check_alpha_fill, isin
from ..schema import ARTIFACTS, BENCHMARKS, UNIVERSE
from ..schema import benchmark as benchmark_info
from .diagnostics import RebalanceLog, active_recorder
from .market import DayFields, open_store
from .orders import TradableOrderGen, holdings
from .presets import make_optimizer
from .quotes import day_masks, quote_view
from .signals import (
    NONFINITE,
    SIGNAL_SHAPE,
    day_scores,
    finite_dates,
    load_signal,
    normalise_signal,
    span_gap,
)

__all__ = ["IndexEnhancementStrategy", "MAX_SIGNAL_GAP", "MIN_SIGNAL_COVERAGE", "SIGNAL_SHAPE", "normalise_signal"]

_TRADABILITY_DAYS = ("trade", "signal")


#: Default least share of the universe with a signal on a rebalance's signal day (``min_signal_coverage``).
MIN_SIGNAL_COVERAGE = 0.5
#: Default most rebalance days in a row whose signal day has no finite score (``max_signal_gap``).
MAX_SIGNAL_GAP = 5


def _data_root() -> Path:
    from qlib.config import C

    return Path(C.dpm.get_data_uri(C.DEFAULT_FREQ))


def _qlib_ready() -> bool:
    from qlib.config import C

    return bool(getattr(C, "registered", False))


def _rebalance_days(value: Any) -> int:
    """A positive whole number of trading days (5 or 5.0); 2.5, "5" or True are refused, not truncated."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not float(value).is_integer():
        raise ValueError(f"rebalance_days must be a whole number of trading days >= 1, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"rebalance_days must be >= 1, got {value}")
    return int(value)


def _weight_field(name: str) -> str:
    """``w_<benchmark>`` of a known benchmark (csi300/csi500/csi1000 or its instrument), else ``w_<name>``."""
    try:
        return benchmark_info(name).weight_field
    except ValueError:
        return f"w_{str(name).lower()}"


class IndexEnhancementStrategy(WeightStrategyBase):
    """Qlib strategy: optimizer-based index enhancement (see the module docstring).

    benchmark: index name whose weight field ``$w_<benchmark>`` gives ``b`` (csi300/csi500/csi1000).
    universe: instrument file of the stock universe.  rebalance_days: trading days between rebalances
    (a rebalance without a signal is retried the next day, see ``max_signal_gap``).  preset: optimizer preset (name in
    ``configs/optimizer/`` or a path; None = figure 10).  optimizer: keyword overrides of the preset
    (bounds, ``risk_aversion``, ``solvers``, ...).  risk_store: risk-store directory (default
    ``<provider_uri>/risk``).  tradability_day: "trade" or "signal" (module docstring).  alpha_fill:
    signal given to benchmark/held stocks without one ("min" by default).  risk_degree: invested
    share of the account (1 = fully invested, the report's "position 1").  diagnostics_dir: also write
    the diagnostics there.  artifact_path: recorder folder of the artifacts.
    min_signal_coverage: least share of the universe's members with a (finite) signal on a signal
    day (default :data:`MIN_SIGNAL_COVERAGE` = 0.5; the boundary passes); below it the rebalance fails
    with the codes seen and the codes expected (a signal of another market, or of a narrower index
    than ``universe``: set ``universe`` to that index or lower the threshold).

    max_signal_gap: most rebalance days in a row whose signal day has no finite score (default
    :data:`MAX_SIGNAL_GAP` = 5, a whole weekly period); each is recorded as ``no_signal`` and retried
    the next day, and the next one fails the backtest naming the days (a signal day with *some*
    scores below ``min_signal_coverage`` fails at once, as above).  nonfinite: "raise" (default) or
    "drop" for ``+-inf`` scores (:mod:`.signals`).  partial_signal: allow a signal whose span does not
    cover the backtest (below); rebalances whose signal day is outside it are skipped, recorded and
    not counted in ``max_signal_gap``.

    The signal is checked and normalised when the strategy is built (:mod:`.signals`: accepted shapes,
    tz-aware dates converted with a warning, ``+-inf`` refused or dropped).  When the backtest's range
    is known (``reset``), a pandas signal's span (first..last date with a finite score) must reach the
    signal day of the last trade day, and start at most ``max_signal_gap - 1`` sessions after the
    first trade day's signal day; otherwise a ValueError names the gap (``partial_signal=True``
    allows it, with a warning).  At each rebalance the day's scores are checked again (a Qlib
    ``Signal`` or model is only seen there).  With Qlib initialised, ``benchmark``, ``universe``,
    ``alpha_fill`` and the day fields the strategy reads are checked at construction too: every
    missing field is listed at once with the import command that adds it.  What was tolerated (alpha
    filled, NaN exposures, stale exposures, rescaled benchmarks, rebalances without a signal, NaN or
    dropped scores: ``n_signal_nan``/``n_signal_inf``, converted dates) is counted in the diagnostics
    and logged as warnings at the end of the run.  A rebalance whose risk inputs are refused
    (:mod:`qlib_ext.optim.checks`) stops the backtest with an error naming the date and the store.
    """

    def __init__(self, *, signal: Any = None, benchmark: str = "csi500", universe: str = UNIVERSE,
                 rebalance_days: int = 5, preset: str | None = "figure10", optimizer: dict | None = None,
                 risk_store: str | None = None, tradability_day: str = "trade", alpha_fill: Any = "min",
                 risk_degree: float = 1.0, diagnostics_dir: str | None = None, artifact_path: str = ARTIFACTS.OPTIM,
                 min_signal_coverage: float = MIN_SIGNAL_COVERAGE, max_signal_gap: int = MAX_SIGNAL_GAP,
                 nonfinite: str = "raise", partial_signal: bool = False, **kwargs: Any) -> None:
        rebalance_days = _rebalance_days(rebalance_days)
        if isinstance(max_signal_gap, bool) or not isinstance(max_signal_gap, (int, np.integer)) or max_signal_gap < 1:
            raise ValueError(f"max_signal_gap must be a whole number of rebalance days >= 1, got {max_signal_gap!r}")
        if nonfinite not in NONFINITE:
            raise ValueError(f"nonfinite must be one of {NONFINITE}, got {nonfinite!r}")
        check_alpha_fill(alpha_fill)
        if not 0 <= min_signal_coverage <= 1:
            raise ValueError(f"min_signal_coverage must be in [0, 1], got {min_signal_coverage}")
        if tradability_day not in _TRADABILITY_DAYS:
            raise ValueError(f"tradability_day must be one of {_TRADABILITY_DAYS}, got {tradability_day!r}")
        if not 0 < risk_degree <= 1:
            raise ValueError(f"risk_degree must be in (0, 1], got {risk_degree}")
        kwargs.setdefault("order_generator_cls_or_obj", TradableOrderGen)
        self.signal_notes: list[str] = []                 # tolerated facts of the whole signal (tz conversion)
        loaded = load_signal(signal, nonfinite, self.signal_notes,
                             kwargs.get("model") is not None and kwargs.get("dataset") is not None)
        super().__init__(signal=loaded, risk_degree=risk_degree, **kwargs)
        self.logger = get_module_logger("IndexEnhancementStrategy")
        self.nonfinite, self.partial_signal, self.max_signal_gap = nonfinite, bool(partial_signal), int(max_signal_gap)
        #: dates with a finite score of a pandas signal (None: a Qlib Signal or model, seen only day by day)
        self.signal_days = finite_dates(loaded) if isinstance(loaded, (pd.Series, pd.DataFrame)) else None
        self._gap: list[pd.Timestamp] = []
        self.benchmark, self.universe = str(benchmark).lower(), universe
        self.weight_field = _weight_field(benchmark)
        self.rebalance_days = rebalance_days
        self.min_signal_coverage = float(min_signal_coverage)
        self.optimizer = make_optimizer(preset, **dict(optimizer or {}))
        self.tradability_day, self.alpha_fill = tradability_day, alpha_fill
        self.diagnostics_dir, self.artifact_path = diagnostics_dir, artifact_path
        self.root = _data_root()
        if _qlib_ready():
            self._check_dataset()
        self.exposures = open_store(risk_store, self.root, dummies=self.optimizer.risk_aversion > 0)
        self._fields: DayFields | None = None
        self.log = RebalanceLog()
        self._last_step: int | None = None
        self._pending_value: float | None = None

    def _check_dataset(self) -> None:
        """Universe file, benchmark weight field and industry of the dataset exist (else one error listing all)."""
        universe = self.root / "instruments" / f"{str(self.universe).lower()}.txt"
        if not universe.is_file():
            have = sorted(p.stem for p in (self.root / "instruments").glob("*.txt"))
            raise FileNotFoundError(f"universe {self.universe!r}: {universe} not found (instrument files: {have})")
        known = self.benchmark in BENCHMARKS or any(self.benchmark.upper() == b.instrument for b in BENCHMARKS.values())
        msg = missing_fields_message(self.root, {self.weight_field: f"benchmark {self.benchmark!r} weights",
                                                 "industry": "industry bands"}, "the strategy", self.universe)
        if msg:
            if not known:
                msg += f" (benchmark {self.benchmark!r} is not one of {sorted(BENCHMARKS)})"
            raise FileNotFoundError(msg)

    # ------------------------------------------------------------------ Qlib hooks
    def reset(self, level_infra=None, common_infra=None, outer_trade_decision=None, **kwargs) -> None:
        super().reset(level_infra=level_infra, common_infra=common_infra,
                      outer_trade_decision=outer_trade_decision, **kwargs)
        if level_infra is not None and hasattr(self, "log"):  # a new backtest: fresh schedule and log
            self.log, self._last_step, self._pending_value, self._fields = RebalanceLog(), None, None, None
            self._gap = []
            self.check_signal_span()

    def check_signal_span(self) -> pd.DatetimeIndex:
        """Signal days of this backtest outside a pandas signal's span (see the class docstring): a ValueError
        naming the gap, or with ``partial_signal`` a warning and the days (skipped, not retried)."""
        self._outside = pd.DatetimeIndex([])
        if self.signal_days is None or self.trade_calendar is None:
            return self._outside
        from qlib.data import D

        cal, n = self.trade_calendar, self.trade_calendar.get_trade_len()
        first = cal.get_step_time(0, shift=1 if cal.start_index > 0 else 0)[0]  # no session before the calendar's first
        last = cal.get_step_time(n - 1, shift=1)[0]
        needed = pd.DatetimeIndex(D.calendar(start_time=first, end_time=last))
        gap, said = span_gap(self.signal_days, needed, self.max_signal_gap - 1)
        if not said:
            return self._outside
        start, end = self.trade_calendar.get_all_time()
        msg = (f"signal covers {self.signal_days[0].date()}..{self.signal_days[-1].date()}, but the backtest "
               f"{pd.Timestamp(start).date()}..{pd.Timestamp(end).date()} trades on the signals of "
               f"{needed[0].date()}..{needed[-1].date()}: {said}")
        if not self.partial_signal:
            raise ValueError(f"{msg}; give a signal for the whole backtest, shorten the backtest to the signal, "
                             "or pass partial_signal=True (rebalances outside the signal are skipped and counted)")
        self.logger.warning(f"{msg}; partial_signal=True: those rebalances are skipped")
        self._outside = gap
        return gap

    def generate_trade_decision(self, execute_result: list | None = None) -> TradeDecisionWO:
        step = self.trade_calendar.get_trade_step()
        self._pending_value = None
        if self._last_step is not None and step - self._last_step < self.rebalance_days:
            return TradeDecisionWO([], self)
        trade_start, trade_end = self.trade_calendar.get_step_time(step)
        pred_start, pred_end = self.trade_calendar.get_step_time(step, shift=1)
        score = self.signal.get_signal(start_time=pred_start, end_time=pred_end)
        alpha, counts = (pd.Series(dtype=float), {}) if score is None else day_scores(score, pred_start, self.nonfinite)
        if alpha.empty:
            self._no_signal(pd.Timestamp(trade_start), pd.Timestamp(pred_start))
            return TradeDecisionWO([], self)
        self._gap, self._day_counts = [], counts
        current = copy.deepcopy(self.trade_position)
        target = self.generate_target_weight_position(alpha, current, trade_start, trade_end)
        orders = self.order_generator.generate_order_list_from_target_weight_position(
            current=current, trade_exchange=self.trade_exchange, risk_degree=self.get_risk_degree(step),
            target_weight_position=target, pred_start_time=pred_start, pred_end_time=pred_end,
            trade_start_time=trade_start, trade_end_time=trade_end)
        self._last_step, self._pending_value = step, current.calculate_value()
        return TradeDecisionWO(orders, self)

    def _no_signal(self, trade_day: pd.Timestamp, signal_day: pd.Timestamp) -> None:
        """Record a rebalance day without a finite score; the ``max_signal_gap``-th in a row is a ValueError."""
        if signal_day.normalize() in getattr(self, "_outside", ()):
            self.log.skip(trade_day, signal_day, "no_signal", "signal day outside the signal's span (partial_signal)")
            return
        self._gap.append(signal_day)
        if len(self._gap) >= self.max_signal_gap:
            raise ValueError(
                f"signal: no finite score on {len(self._gap)} signal days in a row "
                f"({self._gap[0].date()}..{self._gap[-1].date()}, max_signal_gap {self.max_signal_gap}); the signal "
                "has a hole or does not match the calendar: give scores for these days, or raise max_signal_gap")
        self.log.skip(trade_day, signal_day, "no_signal",
                      f"no finite score on the signal day ({len(self._gap)} of max_signal_gap {self.max_signal_gap} "
                      "in a row); retried next day")

    def post_exe_step(self, execute_result: list | None) -> None:
        if self._pending_value is not None:
            self.log.executed(execute_result, self._pending_value)
            self._pending_value = None

    def post_upper_level_exe_step(self) -> None:
        """End of the backtest: log what was tolerated, save the diagnostics (recorder and/or ``diagnostics_dir``)."""
        self.warn_tolerated()
        self.save_diagnostics()

    def warn_tolerated(self) -> dict[str, int]:
        """One warning per kind of tolerated input (a note with its numbers masked): rebalances it hit."""
        recs = self.log.records
        kinds: Counter = Counter()
        for rec in recs:
            notes = [n for n in str(rec.get("notes") or "").split("; ") if n]
            if rec.get("n_stale_exposures"):
                notes.append("exposures carried from an earlier date for N stocks without a row that day")
            kinds.update({re.sub(r"\d+(\.\d+)?", "N", n) for n in notes})
        for kind, k in sorted(kinds.items()):
            self.logger.warning(f"{k} of {len(recs)} rebalances: {kind} (see {self.artifact_path}/diagnostics)")
        return dict(kinds)

    # ------------------------------------------------------------------ the rebalance
    def day_fields(self) -> DayFields:
        """Benchmark weight and industry panels for the backtest window (read once)."""
        if self._fields is None:
            start, end = self.trade_calendar.get_all_time()
            first = get_pre_trading_date(start, future=True)
            self._fields = DayFields(self.root, [self.weight_field, "industry"], self.universe, first, end)
        return self._fields

    def generate_target_weight_position(self, score, current, trade_start_time, trade_end_time) -> dict:
        """Optimal target weights {stock: w > 0} for the trade day; records the rebalance's diagnostics."""
        trade_day = pd.Timestamp(trade_start_time)
        signal_day = get_pre_trading_date(trade_day, future=True)
        alpha, counts = day_scores(score, signal_day, self.nonfinite)
        counts, self._day_counts = getattr(self, "_day_counts", None) or counts, None  # the raw day's counts
        inp, extra = self.optim_input(alpha, current, trade_day, signal_day)
        inp.notes.extend(self._day_notes(counts))
        try:
            res = self.optimizer.solve(inp)
        except ValueError as exc:
            raise ValueError(f"rebalance {trade_day.date()} (signal day {signal_day.date()}, risk store "
                             f"{self.exposures.store}): {exc}") from exc
        rec = self.log.add(trade_day, signal_day, inp, res, **extra, **counts)
        if res.status not in ("optimal",):
            self.logger.info(f"{trade_day.date()}: optimizer {res.status} ({res.solver}); relaxed {res.relaxed}")
        if rec["max_violation"] > 1e-6 and res.status == "optimal":
            self.logger.warning(f"{trade_day.date()}: solution breaks a bound by {rec['max_violation']:.2e}")
        return {k: float(v) for k, v in res.weights.items() if v > 0}

    def optim_input(self, alpha: pd.Series, current, trade_day: pd.Timestamp,
                    signal_day: pd.Timestamp) -> tuple[OptimInput, dict]:
        """The optimizer input of one rebalance and the counts recorded with it."""
        fields = self.day_fields()
        row = fields.on(signal_day)
        members = fields.members(signal_day)
        self._check_coverage(alpha, members, signal_day)
        alpha = alpha[isin(alpha.index, members)]
        bench = row[self.weight_field].fillna(0.0)
        bench = bench[bench > 0]
        if bench.empty:
            raise ValueError(f"no positive ${self.weight_field} on {signal_day.date()} in {self.root} "
                             f"(is {self.benchmark!r} an index of this dataset?)")
        amount, _ = holdings(current)
        value = current.calculate_value()
        w0 = pd.Series({s: current.get_stock_amount(s) * current.get_stock_price(s) for s in amount.index},
                       dtype=float) / (value * self.risk_degree)
        w0 = w0[w0 > 0]
        if w0.sum() > 1:
            w0 = w0 / w0.sum()
        index = alpha.index.union(bench.index).union(w0.index)
        masks = self._masks(index, trade_day, signal_day)
        exp_day, expo, n_stale = self.exposures.on(signal_day, index)
        frames: dict[str, Any] = {}
        if self.optimizer.risk_aversion > 0:
            cov, spec = self.exposures.risk(signal_day)
            frames = {"factor_cov": cov, "specific_var": spec}
        try:
            inp = OptimInput.build(alpha, bench, w0, industry=row["industry"].dropna().astype(np.int64),
                                   exposures=expo, suspended=masks["suspended"], limit_up=masks["limit_up"],
                                   limit_down=masks["limit_down"], alpha_fill=self.alpha_fill, **frames)
        except ValueError as exc:
            raise ValueError(f"rebalance {trade_day.date()} (signal day {signal_day.date()}, risk store "
                             f"{self.exposures.store}): {exc}") from exc
        return inp, {"exposure_date": exp_day, "n_signal": int(alpha.size), "n_stale_exposures": n_stale}

    def _day_notes(self, counts: dict) -> list[str]:
        """Notes of what the signal day's scores tolerated, and the signal-wide notes (tz conversion)."""
        notes = list(self.signal_notes)
        if counts.get("n_signal_inf"):
            notes.append(f"{counts['n_signal_inf']} infinite scores dropped on the signal day (nonfinite='drop')")
        if counts.get("n_signal_nan"):
            notes.append(f"{counts['n_signal_nan']} NaN scores on the signal day (no signal for those stocks)")
        return notes

    def _check_coverage(self, alpha: pd.Series, members: pd.Index, signal_day: pd.Timestamp) -> None:
        """ValueError when fewer than ``min_signal_coverage`` of the universe's members have a signal."""
        covered = isin(members, alpha.index)
        share = float(covered.mean()) if len(members) else 0.0
        if share >= self.min_signal_coverage:
            return
        seen = list(alpha.index[~isin(alpha.index, members)][:5]) or list(alpha.index[:5])
        raise ValueError(
            f"signal on {pd.Timestamp(signal_day).date()}: {int(covered.sum())} of the {len(members)} stocks of "
            f"universe {self.universe!r} have a signal ({share:.1%} < min_signal_coverage "
            f"{self.min_signal_coverage:.0%}); codes seen {seen}, codes expected {list(members[:5])} "
            "(a signal of another market, or of a narrower index: set universe to it or lower min_signal_coverage)")

    def _masks(self, index: pd.Index, trade_day: pd.Timestamp, signal_day: pd.Timestamp) -> pd.DataFrame:
        view = quote_view(self.trade_exchange)
        day = trade_day if self.tradability_day == "trade" else signal_day
        if not view.has(day):  # "signal" mode on the first day: the exchange window starts at the trade day
            return pd.DataFrame(False, index=index, columns=["suspended", "limit_up", "limit_down"])
        return day_masks(view, day, index)

    # ------------------------------------------------------------------ artifacts
    def diagnostics(self) -> pd.DataFrame:
        """The rebalance diagnostics so far (one row per rebalance)."""
        return self.log.frame()

    def save_diagnostics(self, recorder=None) -> None:
        """Save the artifacts to ``recorder`` (default: Qlib's active one, if any) and ``diagnostics_dir``."""
        recorder = recorder if recorder is not None else active_recorder()
        if recorder is not None:
            self.log.save(recorder, self.artifact_path)
        if self.diagnostics_dir is not None:
            self.log.write(self.diagnostics_dir)
        if recorder is None and self.diagnostics_dir is None:
            self.logger.info("no active recorder and no diagnostics_dir: diagnostics kept in memory only")
