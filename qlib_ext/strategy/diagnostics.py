"""Per-rebalance diagnostics of the index-enhancement strategy and their recorder artifacts.

One row per rebalance (``diagnostics.pkl`` / ``.csv`` under the artifact path, default ``optim/``):

* ``date`` (trade day), ``signal_date``, ``exposure_date`` (risk-store date used),
  ``n_stale_exposures`` (stocks without exposures that day, e.g. suspended, given their last ones);
* ``status`` ('optimal' | 'inaccurate' | 'relaxed' | 'fallback_w0' | 'fallback_benchmark' | 'no_signal'),
  ``solver``, ``solve_time`` (s), ``attempts`` (JSON list of solver calls);
* ``binding`` (JSON {constraint: rows at a bound}), ``relaxed`` (JSON {slack key: widening}) and one
  ``relaxed[<key>]`` column per relaxed key, ``max_violation`` (of the unrelaxed bounds);
* ``turnover`` (planned one-sided 1/2 sum|w - w0|), ``executed_turnover`` (traded value / 2 / account
  value before the trades), ``n_orders``, ``n_rejected`` and ``rejected`` (orders the exchange dealt
  nothing of, as ``stock:buy|sell``: refused, or a buy clipped to nothing by the cash left);
* ``constituent_weight``, ``n_universe``, ``n_signal``, ``n_holdings``, ``n_suspended``,
  ``n_limit_up``, ``n_limit_down`` (universe stocks frozen by each rule), ``alpha`` (a . w);
* ``active[<style>]`` = X_style . (w - b) for every style of the risk store; ``notes``.

``weights.pkl`` holds, per rebalance, every stock with a current, target or benchmark weight:
(datetime, instrument) x [w0, weight, benchmark, alpha, suspended, limit_up, limit_down].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..artifacts import active_recorder  # noqa: F401 - re-exported: the strategy's import path
from ..optim import OptimInput, OptimResult
from ..schema import ARTIFACTS, DIAGNOSTICS_FILE, WEIGHTS_FILE

DIAGNOSTICS = Path(DIAGNOSTICS_FILE).stem
WEIGHTS = Path(WEIGHTS_FILE).stem


def _json(obj: Any) -> str:
    return json.dumps(obj, default=float, sort_keys=True)


class RebalanceLog:
    """Collects one record per rebalance; ``frame()``/``weights_frame()`` build the artifacts."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.weights: list[pd.DataFrame] = []

    def add(self, date: pd.Timestamp, signal_date: pd.Timestamp, inp: OptimInput, res: OptimResult,
            **extra: Any) -> dict:
        """Record a solved rebalance (inputs, result, and ``extra`` columns such as counts)."""
        w = res.weights.to_numpy()
        rec = {
            "date": pd.Timestamp(date), "signal_date": pd.Timestamp(signal_date), "status": res.status,
            "solver": res.solver, "solve_time": res.solve_time, "turnover": res.turnover,
            "executed_turnover": np.nan, "n_orders": 0, "n_rejected": 0, "rejected": "",
            "constituent_weight": res.constituent_weight, "alpha": res.alpha, "n_universe": inp.n,
            "n_holdings": int((w > 0).sum()), "n_suspended": int(inp.suspended.sum()),
            "n_limit_up": int(inp.limit_up.sum()), "n_limit_down": int(inp.limit_down.sum()),
            "max_violation": max(res.violations.values(), default=0.0),
            "binding": _json(res.binding), "relaxed": _json(res.relaxed),
            "attempts": _json([{k: a.get(k) for k in ("phase", "solver", "status", "seconds", "message")}
                               for a in res.attempts]),
            "notes": "; ".join(res.notes), **extra,
            **{f"relaxed[{k}]": v for k, v in res.relaxed.items()},
            **{f"active[{k}]": v for k, v in res.active_exposures.items()},
        }
        self.records.append(rec)
        self.weights.append(pd.DataFrame({
            "datetime": pd.Timestamp(date), "instrument": inp.index, "w0": inp.w0, "weight": w,
            "benchmark": inp.benchmark, "alpha": inp.alpha, "suspended": inp.suspended,
            "limit_up": inp.limit_up, "limit_down": inp.limit_down}))
        return rec

    def skip(self, date: pd.Timestamp, signal_date: pd.Timestamp, status: str, note: str) -> None:
        """Record a rebalance that did not run (e.g. no signal on the signal day)."""
        self.records.append({"date": pd.Timestamp(date), "signal_date": pd.Timestamp(signal_date),
                             "status": status, "notes": note})

    def executed(self, execute_result: list | None, value_before: float) -> None:
        """Attach what the exchange did with the last rebalance's orders (Qlib's execute_result:
        (order, trade_val, trade_cost, trade_price) per order)."""
        if not self.records or not execute_result:
            return
        traded = sum(float(r[1]) for r in execute_result if np.isfinite(r[1]))
        rejected = [f"{r[0].stock_id}:{'buy' if r[0].direction == r[0].BUY else 'sell'}"
                    for r in execute_result if r[0].deal_amount == 0]
        self.records[-1].update(executed_turnover=traded / 2 / value_before if value_before > 0 else np.nan,
                                n_orders=len(execute_result), n_rejected=len(rejected),
                                rejected=" ".join(rejected))

    def frame(self) -> pd.DataFrame:
        """One row per rebalance (see the module docstring)."""
        if not self.records:
            return pd.DataFrame(columns=["date", "status"])
        return pd.DataFrame(self.records).set_index("date").sort_index()

    def weights_frame(self) -> pd.DataFrame:
        """Rows with a current, target or benchmark weight, on (datetime, instrument)."""
        if not self.weights:
            return pd.DataFrame(columns=["w0", "weight", "benchmark"])
        df = pd.concat(self.weights, ignore_index=True)
        keep = (df["w0"] > 0) | (df["weight"] > 0) | (df["benchmark"] > 0)
        return df[keep].set_index(["datetime", "instrument"]).sort_index()

    def write(self, folder: str | Path) -> Path:
        """Write ``diagnostics.{pkl,csv}`` and ``weights.pkl`` into ``folder`` (created)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        diag = self.frame()
        diag.to_pickle(folder / f"{DIAGNOSTICS}.pkl")
        diag.to_csv(folder / f"{DIAGNOSTICS}.csv")
        self.weights_frame().to_pickle(folder / f"{WEIGHTS}.pkl")
        return folder

    def save(self, recorder, artifact_path: str = ARTIFACTS.OPTIM) -> None:
        """Log the artifacts into a Qlib recorder (MLflow) under ``artifact_path``, in one go
        (the recorders' one saver, :func:`qlib_ext.artifacts.save_artifacts`)."""
        from ..artifacts import save_artifacts

        diag = self.frame()
        save_artifacts(recorder, artifact_path, tables={DIAGNOSTICS: diag},
                       objects={DIAGNOSTICS: diag, WEIGHTS: self.weights_frame()},
                       metrics={"n_rebalances": len(diag)})
