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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qlib.backtest.decision import TradeDecisionWO
from qlib.contrib.strategy.signal_strategy import WeightStrategyBase
from qlib.log import get_module_logger
from qlib.utils import get_pre_trading_date

from ..optim import OptimInput
from .diagnostics import RebalanceLog, active_recorder
from .market import DayFields, as_score, open_store
from .orders import TradableOrderGen, holdings
from .presets import make_optimizer
from .quotes import day_masks, quote_view

_TRADABILITY_DAYS = ("trade", "signal")


def _load_signal(signal: Any) -> Any:
    """A file path (str or Path, not Qlib's ``file://`` or a placeholder) becomes the pickled prediction."""
    if isinstance(signal, Path) or (isinstance(signal, str) and not signal.startswith("file://")
                                    and not signal.startswith("<")):
        path = Path(signal).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"signal file {path} not found (give a Qlib pred.pkl or <PRED> in PortAnaRecord)")
        return pd.read_pickle(path)
    if isinstance(signal, str) and signal.startswith("<"):
        raise ValueError(f"signal {signal!r} is an unfilled placeholder: use it inside PortAnaRecord's config "
                         "(after SignalRecord), or give a pred.pkl path")
    return signal


def _data_root() -> Path:
    from qlib.config import C

    return Path(C.dpm.get_data_uri(C.DEFAULT_FREQ))


class IndexEnhancementStrategy(WeightStrategyBase):
    """Qlib strategy: optimizer-based index enhancement (see the module docstring).

    benchmark: index name whose weight field ``$w_<benchmark>`` gives ``b`` (csi300/csi500/csi1000).
    universe: instrument file of the stock universe.  rebalance_days: trading days between rebalances
    (a rebalance without a signal is retried the next day).  preset: optimizer preset (name in
    ``configs/optimizer/`` or a path; None = figure 10).  optimizer: keyword overrides of the preset
    (bounds, ``risk_aversion``, ``solvers``, ...).  risk_store: risk-store directory (default
    ``<provider_uri>/risk``).  tradability_day: "trade" or "signal" (module docstring).  alpha_fill:
    signal given to benchmark/held stocks without one ("min" by default).  risk_degree: invested
    share of the account (1 = fully invested, the report's "position 1").  diagnostics_dir: also write
    the diagnostics there.  artifact_path: recorder folder of the artifacts.
    """

    def __init__(self, *, signal: Any = None, benchmark: str = "csi500", universe: str = "csiall",
                 rebalance_days: int = 5, preset: str | None = "figure10", optimizer: dict | None = None,
                 risk_store: str | None = None, tradability_day: str = "trade", alpha_fill: Any = "min",
                 risk_degree: float = 1.0, diagnostics_dir: str | None = None, artifact_path: str = "optim",
                 **kwargs: Any) -> None:
        if int(rebalance_days) < 1:
            raise ValueError(f"rebalance_days must be >= 1, got {rebalance_days}")
        if tradability_day not in _TRADABILITY_DAYS:
            raise ValueError(f"tradability_day must be one of {_TRADABILITY_DAYS}, got {tradability_day!r}")
        if not 0 < risk_degree <= 1:
            raise ValueError(f"risk_degree must be in (0, 1], got {risk_degree}")
        kwargs.setdefault("order_generator_cls_or_obj", TradableOrderGen)
        super().__init__(signal=_load_signal(signal), risk_degree=risk_degree, **kwargs)
        self.logger = get_module_logger("IndexEnhancementStrategy")
        self.benchmark, self.universe = str(benchmark).lower(), universe
        self.weight_field = f"w_{self.benchmark}"
        self.rebalance_days = int(rebalance_days)
        self.optimizer = make_optimizer(preset, **dict(optimizer or {}))
        self.tradability_day, self.alpha_fill = tradability_day, alpha_fill
        self.diagnostics_dir, self.artifact_path = diagnostics_dir, artifact_path
        self.root = _data_root()
        self.exposures = open_store(risk_store, self.root, dummies=self.optimizer.risk_aversion > 0)
        self._fields: DayFields | None = None
        self.log = RebalanceLog()
        self._last_step: int | None = None
        self._pending_value: float | None = None

    # ------------------------------------------------------------------ Qlib hooks
    def reset(self, level_infra=None, common_infra=None, outer_trade_decision=None, **kwargs) -> None:
        super().reset(level_infra=level_infra, common_infra=common_infra,
                      outer_trade_decision=outer_trade_decision, **kwargs)
        if level_infra is not None:  # a new backtest: fresh schedule and log
            self.log, self._last_step, self._pending_value, self._fields = RebalanceLog(), None, None, None

    def generate_trade_decision(self, execute_result: list | None = None) -> TradeDecisionWO:
        step = self.trade_calendar.get_trade_step()
        self._pending_value = None
        if self._last_step is not None and step - self._last_step < self.rebalance_days:
            return TradeDecisionWO([], self)
        trade_start, trade_end = self.trade_calendar.get_step_time(step)
        pred_start, pred_end = self.trade_calendar.get_step_time(step, shift=1)
        score = self.signal.get_signal(start_time=pred_start, end_time=pred_end)
        if score is None or as_score(score).empty:
            self.log.skip(trade_start, pred_start, "no_signal", "no signal on the signal day; retried next day")
            return TradeDecisionWO([], self)
        current = copy.deepcopy(self.trade_position)
        target = self.generate_target_weight_position(score, current, trade_start, trade_end)
        orders = self.order_generator.generate_order_list_from_target_weight_position(
            current=current, trade_exchange=self.trade_exchange, risk_degree=self.get_risk_degree(step),
            target_weight_position=target, pred_start_time=pred_start, pred_end_time=pred_end,
            trade_start_time=trade_start, trade_end_time=trade_end)
        self._last_step, self._pending_value = step, current.calculate_value()
        return TradeDecisionWO(orders, self)

    def post_exe_step(self, execute_result: list | None) -> None:
        if self._pending_value is not None:
            self.log.executed(execute_result, self._pending_value)
            self._pending_value = None

    def post_upper_level_exe_step(self) -> None:
        """End of the backtest: save the diagnostics (active recorder and/or ``diagnostics_dir``)."""
        self.save_diagnostics()

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
        inp, extra = self.optim_input(as_score(score), current, trade_day, signal_day)
        res = self.optimizer.solve(inp)
        rec = self.log.add(trade_day, signal_day, inp, res, **extra)
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
        alpha = alpha[alpha.index.isin(fields.members(signal_day))]
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
        inp = OptimInput.build(alpha, bench, w0, industry=row["industry"].dropna().astype(np.int64),
                               exposures=expo, suspended=masks["suspended"], limit_up=masks["limit_up"],
                               limit_down=masks["limit_down"], alpha_fill=self.alpha_fill, **frames)
        return inp, {"exposure_date": exp_day, "n_signal": int(alpha.size), "n_stale_exposures": n_stale}

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
