"""``MarketReviewRecord``: report figures 1-4 (index NAVs relative to a base date, the size factor's
cumulative return, the futures basis) inside a Qlib recorder.

Needs only Qlib's data (the index instruments of :data:`qlib_ext.schema.INDEX_INSTRUMENTS`) and the
risk store's factor returns; it can run in any workflow, with or without a backtest.  The span is
``base_date`` .. ``end`` (default: the backtest's last day when the run has a Qlib report, else the
dataset's last session).  Conventions: :mod:`qlib_ext.analysis.metrics.market_review`.  Optional
inputs, each left out with a warning and named in ``missing.csv`` (shown in the report's section) while
the rest is computed: each index of ``indexes`` (e.g. the CSI All Share ``SH000985``, absent from many
real datasets; at least one index must have closes), the risk store (figure 4) and the futures price
file (figures 1-2, given as ``futures``; format in :mod:`qlib_ext.analysis.metrics.market_review`).
Artifacts under ``market_review/``:

* ``index_navs.csv`` / ``index_navs.png`` (figure 3), ``index_summary.csv`` (return since the base,
  max drawdown and trough of each index);
* ``size_nav.csv`` / ``size_factor.png`` (figure 4) when a risk store is found;
* ``basis.csv`` and ``basis_<index>.png`` (figures 1-2) when ``futures`` is given;
* ``missing.csv`` (input, effect) when an optional input is absent;
* ``summary.json`` / MLflow ``market_review.return_<index>``, ``max_drawdown_<index>``,
  ``size_return``, ``size_max_drawdown``, ``basis_min_<index>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ...schema import ARTIFACTS, BENCHMARKS, INDEX_INSTRUMENTS, INDEX_MARKETS, PORT_REPORT_FILE
from ..inputs import read_futures, risk_store_dir
from ..metrics.market_review import (
    BASE_DATE,
    annualised_basis,
    factor_nav,
    nav_summary,
    relative_nav,
)
from ..plots.market_review import plot_basis, plot_navs
from ..registry import register
from .base import AnalysisRecord

INDEXES = ("csi300", "csi500", "csi1000", "csiall")


def index_label(name: str) -> str:
    """``CSI500`` for csi500, ``CSI All`` for csiall."""
    return BENCHMARKS[name].label if name in BENCHMARKS else ("CSI All" if name == "csiall" else name)


@register(title="Market review (figures 1-4)", order=10, optional=("risk", "futures", "csiall index"), run="backtest")
class MarketReviewRecord(AnalysisRecord):
    """Figures 1-4 of the report's market review (module docstring).

    base_date: the base of the relative NAVs (report: 2023-12-29).  end: last day shown (default:
    the backtest's end, else the data's).  indexes: instrument-file names of the indexes
    (csi300/csi500/csi1000/csiall).  risk_store: default ``<provider_uri>/risk``.  size_factor: the
    store's size factor.  futures: optional futures price file (CSV/Parquet).
    """

    artifact_path = ARTIFACTS.MARKET_REVIEW

    def __init__(self, recorder: Any, base_date: str = BASE_DATE, end: str | None = None,
                 indexes: Sequence[str] = INDEXES, risk_store: str | None = None, size_factor: str = "size",
                 futures: str | None = None, **kwargs: Any) -> None:
        super().__init__(recorder=recorder, **kwargs)
        unknown = [i for i in indexes if i not in INDEX_INSTRUMENTS]
        if unknown or not indexes:
            raise ValueError(f"indexes {list(unknown) or list(indexes)}: choose from {sorted(INDEX_INSTRUMENTS)}")
        self.base_date, self.end = pd.Timestamp(base_date), (pd.Timestamp(end) if end else None)
        self.indexes, self.risk_store = list(indexes), risk_store
        self.size_factor, self.futures = size_factor, futures

    def list(self) -> list[str]:
        names = ["index_navs.csv", "index_summary.csv", "index_navs.png", "size_nav.csv", "size_factor.png",
                 "summary.json"]
        return names + (["basis.csv"] if self.futures else [])

    def _end(self) -> pd.Timestamp:
        if self.end is not None:
            return self.end
        if self.has(PORT_REPORT_FILE):
            return pd.Timestamp(self.load(PORT_REPORT_FILE).index.max())
        from qlib.data import D

        return pd.Timestamp(D.calendar()[-1])

    def _closes(self, start: pd.Timestamp, end: pd.Timestamp, note: bool = True) -> pd.DataFrame:
        """Index closes (columns: labels) of the indexes the dataset has; each absent one is a missing
        optional input (named in the section) -- ``ValueError`` only when none has a close."""
        from qlib.data import D

        inst = [INDEX_INSTRUMENTS[i] for i in self.indexes]
        df = D.features(inst, ["$close"], start_time=start, end_time=end)
        closes = df["$close"].unstack(level="instrument") if not df.empty else pd.DataFrame()
        have = [i for i in inst if i in closes.columns and closes[i].notna().any()]
        if not have:
            raise ValueError(f"market review: no $close for any of the index instruments {inst} between "
                             f"{start.date()} and {end.date()} in the dataset")
        before = closes.index[closes.index <= self.base_date]
        base = before.max() if len(before) else self.base_date     # the base session (relative_nav's)
        for code in inst:
            name = INDEX_MARKETS[code]
            if code not in have:
                why = "has no $close in the dataset"
            elif len(before) and not closes.loc[base, code] > 0:
                why = f"has no close on the base session {base.date()}"
            else:
                continue
            if note:
                self.missing_input(f"{index_label(name)} index ({code})",
                                   f"{code} {why}: its NAV is left out of figure 3")
            if code in have:
                have.remove(code)
        if not have:
            raise ValueError(f"market review: no index of {inst} has a close on the base session {base.date()}")
        return closes[have].rename(columns=lambda c: index_label(INDEX_MARKETS[c]))

    def generate(self, **kwargs: Any) -> dict:
        end = self._end()
        if end <= self.base_date:
            raise ValueError(f"market review: base_date {self.base_date.date()} is not before the end {end.date()}")
        closes = self._closes(self.base_date - pd.Timedelta(days=20), end)
        navs = relative_nav(closes, self.base_date)
        table = nav_summary(navs)
        metrics: dict[str, float] = {}
        shown = [k for k in self.indexes if index_label(k) in navs.columns]
        for name, lab in zip(shown, navs.columns):
            metrics[f"return_{name}"] = float(table.loc[lab, "return"])
            metrics[f"max_drawdown_{name}"] = float(table.loc[lab, "max_drawdown"])
        tables: dict[str, Any] = {"index_navs": navs, "index_summary": table}
        figures: dict[str, Figure] = {}
        fig3 = Figure(figsize=(10, 4.5))
        plot_navs(fig3.subplots(), navs, f"Index NAVs relative to {navs.index[0].date()}")
        fig3.autofmt_xdate()
        fig3.tight_layout()
        figures["index_navs"] = fig3

        size = self._size_nav(end)
        if size is not None:
            tables["size_nav"] = size.to_frame()
            s = nav_summary(size.to_frame())
            metrics["size_return"] = float(s["return"].iloc[0])
            metrics["size_max_drawdown"] = float(s["max_drawdown"].iloc[0])
            fig4 = Figure(figsize=(10, 4))
            plot_navs(fig4.subplots(), size.to_frame(f"{self.size_factor} factor"),
                      f"{self.size_factor} factor NAV (daily compounded) relative to {size.index[0].date()}",
                      ylabel="factor NAV")
            fig4.autofmt_xdate()
            fig4.tight_layout()
            figures["size_factor"] = fig4

        if self.futures:
            full = self._closes(self.base_date - pd.Timedelta(days=400), end, note=False)
            basis, figs = self._basis(full)
            tables["basis"] = basis
            figures.update(figs)
            for col in basis.columns:
                name = next(k for k in self.indexes if index_label(k) == col)
                metrics[f"basis_min_{name}"] = float(basis[col].min())
        else:
            self.missing_input("futures prices", "no futures price file given (futures=FILE): basis figures 1-2 left out")
        self.save_artifacts(tables=tables, figures=figures, metrics=metrics)
        self.say(f"Market review from {navs.index[0].date()} to {navs.index[-1].date()}:\n{table.to_string()}")
        return {"index_navs": navs, "metrics": metrics}

    def _size_nav(self, end: pd.Timestamp) -> pd.Series | None:
        from ...risk import load_factor_returns

        try:
            store = risk_store_dir(self.risk_store)
        except FileNotFoundError as exc:
            self.missing_input("risk store", f"{exc}: size factor figure 4 left out")
            return None
        f = load_factor_returns(store, start=self.base_date - pd.Timedelta(days=20), end=end)
        if self.size_factor not in f.columns:
            raise KeyError(f"risk store {store}: no factor {self.size_factor!r} (have {list(f.columns)[-8:]})")
        return factor_nav(f[self.size_factor], self.base_date)

    def _basis(self, closes: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Figure]]:
        fut = read_futures(self.futures)
        names: Mapping[str, str] = {}
        for key in fut["index"].unique():
            k = INDEX_MARKETS.get(key.upper(), key.lower())
            if k not in self.indexes:
                raise ValueError(f"futures price file {self.futures}: index {key!r} is not one of {self.indexes}")
            names[key] = index_label(k)
        fut = fut[(fut["date"] >= self.base_date - pd.Timedelta(days=400)) & (fut["date"] <= closes.index.max())]
        basis = annualised_basis(fut, closes, names)
        figs = {}
        for col in basis.columns:
            fig = Figure(figsize=(10, 4))
            spot = closes[col].loc[basis.index.min():basis.index.max()]
            plot_basis(fig.subplots(), spot, basis[col].dropna(), col)
            fig.autofmt_xdate()
            fig.tight_layout()
            key = next(k for k in self.indexes if index_label(k) == col)
            figs[f"basis_{key}"] = fig
        return basis, figs
