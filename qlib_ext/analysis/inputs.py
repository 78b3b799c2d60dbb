"""Inputs of the analysis recorders, loaded one way: the signal, the market panel, the risk store.

* :func:`check_signal` / :func:`load_signal`: the run's ``pred.pkl`` as a float Series on
  ``(datetime, instrument)``; an empty, all-NaN or constant signal raises ``ValueError`` naming it.
* :func:`market_frame`: the price-volume factors of :mod:`qlib_ext.factors` (``ret_10``, ``std_10d``,
  ``turn_10d``, ``size`` = ln mcap; one definition, evaluated by Qlib) plus ``industry``, ``close``,
  ``vwap`` and ``mcap``, on ``(datetime, instrument)`` over the members of an instrument file
  (default the CSI All Share) -- one ``D.features`` call per process and span, cached, since every
  recorder of a run needs the same frame (it is the slow part: ~45 s on the 1,500-stock default market,
  paid once per run).
* :func:`load_style_exposures`: the risk store's style exposures (``qlib_ext.risk.load_exposures``);
  a missing store raises ``FileNotFoundError`` naming the path and how to build it.
* :func:`benchmark_weights`: a benchmark's point-in-time member weights (``schema.benchmark``).
* :func:`risk_store_dir`, :func:`holdings_inputs`: the risk store and a backtest's active return,
  weights and exposures (shared by the attribution and style-timing recorders).
* :func:`read_futures`: the optional futures price file of the market review.

Everything is "known at the close of ``datetime``" (the signal's convention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.provenance import dataset_identity
from ..factors import PRICE_VOLUME_FACTORS, REPORT_FACTORS
from ..schema import PORT_REPORT_FILE, POSITIONS_FILE, PRED_FILE, UNIVERSE, benchmark
from .metrics.attribution import active_exposures, active_weights

#: Columns of :func:`market_frame`: name -> Qlib expression.
MARKET_COLUMNS: dict[str, str] = {
    **{name: PRICE_VOLUME_FACTORS[name] for name in (*REPORT_FACTORS, "size")},
    "industry": "$industry", "close": "$close", "vwap": "$vwap", "mcap": "$mcap",
}
SIGNAL_HINT = "run SignalRecord (or save a pred.pkl) before this recorder"


def data_root() -> Path:
    """The local dataset directory of the initialised Qlib (its ``provider_uri``)."""
    from qlib.config import C

    return Path(C.dpm.get_data_uri(C.DEFAULT_FREQ))


def check_signal(pred: Any, name: str = PRED_FILE) -> pd.Series:
    """The signal as a float Series on (datetime, instrument), finite values only.

    Takes a Series or the ``score`` (else first) column of a DataFrame.  Raises ``ValueError`` naming
    ``name`` when it is empty, all NaN, or constant within every day's cross-section.
    """
    if isinstance(pred, pd.DataFrame):
        if pred.shape[1] == 0:
            raise ValueError(f"signal {name!r} has no columns")
        pred = pred["score"] if "score" in pred else pred.iloc[:, 0]
    if not isinstance(pred, pd.Series):
        raise TypeError(f"signal {name!r}: expected a DataFrame/Series, got {type(pred).__name__}")
    if not isinstance(pred.index, pd.MultiIndex) or list(pred.index.names)[:2] != ["datetime", "instrument"]:
        raise ValueError(f"signal {name!r}: the index must be (datetime, instrument), got {list(pred.index.names)}")
    s = pd.to_numeric(pred, errors="coerce").astype(float)
    s = s[np.isfinite(s.to_numpy())].rename("score")
    if s.empty:
        raise ValueError(f"signal {name!r} is empty or all NaN ({len(pred)} rows)")
    spread = s.groupby(level="datetime").agg(lambda x: np.nanmax(x) - np.nanmin(x))
    if not (spread > 0).any():
        raise ValueError(f"signal {name!r} is constant within every day's cross-section "
                         f"({spread.size} days): nothing to rank")
    return s.sort_index()


def load_signal(record: Any, name: str = PRED_FILE) -> pd.Series:
    """``check_signal`` of the run's signal artifact (an :class:`~.base.AnalysisRecord`'s ``load``)."""
    return check_signal(record.load(name, hint=SIGNAL_HINT), name)


def sessions(start: Any = None, end: Any = None) -> pd.DatetimeIndex:
    """Qlib's trading calendar within [start, end]."""
    from qlib.data import D

    return pd.DatetimeIndex(D.calendar(start_time=start, end_time=end))


def shift_session(date: Any, n: int) -> pd.Timestamp:
    """The session ``n`` sessions after ``date`` (clipped to the calendar's ends)."""
    cal = sessions()
    i = int(cal.searchsorted(pd.Timestamp(date))) + n
    return cal[min(max(i, 0), len(cal) - 1)]


_MARKET_CACHE: dict[tuple[str, str, tuple], tuple[pd.Timestamp, pd.DataFrame]] = {}


def _load_market(instruments: str, start: pd.Timestamp) -> pd.DataFrame:
    from qlib.data import D

    df = D.features(D.instruments(instruments), list(MARKET_COLUMNS.values()), start, sessions()[-1])
    df.columns = list(MARKET_COLUMNS)
    df = df.swaplevel() if df.index.names[0] == "instrument" else df
    df.index = df.index.set_names(["datetime", "instrument"])
    return df.sort_index().astype(np.float64)


def market_frame(start: Any, end: Any, instruments: str = UNIVERSE) -> pd.DataFrame:
    """:data:`MARKET_COLUMNS` on (datetime, instrument) for the members of ``instruments``, [start, end].

    One ``D.features`` call per process, dataset and instrument file: it reads from ``start`` to the
    calendar's end and is kept (the last one) so the next recorder of the run slices it; a request
    starting earlier reloads, and so does a dataset rewritten in place (the key holds
    :func:`~qlib_ext.data.provenance.dataset_identity`: its calendar's and instrument file's stats).  ``ValueError`` naming the instrument file and span when nothing comes back.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    root = data_root()
    key = (str(root), instruments, dataset_identity(root, instruments))
    cached = _MARKET_CACHE.get(key)
    if cached is None or cached[0] > start:
        _MARKET_CACHE.clear()
        cached = _MARKET_CACHE[key] = (start, _load_market(instruments, start))
    df = cached[1]
    dates = df.index.get_level_values("datetime")
    out = df[(dates >= start) & (dates <= end)]
    if out.empty:
        raise ValueError(f"no market data for instruments {instruments!r} over {start.date()}..{end.date()} "
                         f"in {data_root()}")
    return out.copy()


def load_style_exposures(start: Any, end: Any, risk_store: str | Path | None = None,
                         styles: Sequence[str] | None = None) -> pd.DataFrame:
    """Style exposures (no industry) on (datetime, instrument) from the risk store.

    risk_store: the store directory (default ``<provider_uri>/risk``).  ``FileNotFoundError`` naming
    the path when absent; ``KeyError`` naming unknown styles; ``ValueError`` when the span is empty.
    """
    from ..risk import load_exposures, load_meta
    from ..risk.store import default_store, missing_store

    root = data_root()
    path = default_store(root, risk_store)
    try:
        meta = load_meta(path)
    except FileNotFoundError as exc:
        raise missing_store(path, root) from exc
    known = list(meta["styles"])
    styles = known if styles is None else list(styles)
    unknown = [s for s in styles if s not in known]
    if unknown:
        raise KeyError(f"risk store {path} has no style(s) {unknown}; it has {known}")
    expo = load_exposures(path, start, end)[styles].astype(np.float64)
    if expo.empty:
        raise ValueError(f"risk store {path} has no exposures over {pd.Timestamp(start).date()}.."
                         f"{pd.Timestamp(end).date()} (it spans {meta['start']}..{meta['end']})")
    return expo


def benchmark_weights(name: str, start: Any, end: Any) -> pd.Series:
    """Point-in-time member weights of benchmark ``name`` on (datetime, instrument), members only (w > 0)."""
    from qlib.data import D

    info = benchmark(name)
    df = D.features(D.instruments(info.name), [info.expression], start, end)
    w = df.iloc[:, 0]
    if w.index.names[0] == "instrument":
        w = w.swaplevel()
    w.index = w.index.set_names(["datetime", "instrument"])
    w = w[w > 0].astype(np.float64).sort_index().rename(info.weight_field)
    if w.empty:
        raise ValueError(f"no positive {info.expression} for {info.label} over {pd.Timestamp(start).date()}.."
                         f"{pd.Timestamp(end).date()} in {data_root()}")
    return w


def in_window(obj: pd.Series | pd.DataFrame, start: Any, end: Any, what: str) -> pd.Series | pd.DataFrame:
    """Rows of a (datetime, ...) frame inside [start, end]; ``ValueError`` naming ``what`` when empty."""
    dates = obj.index.get_level_values(0)
    lo = pd.Timestamp(start) if start is not None else dates.min()
    hi = pd.Timestamp(end) if end is not None else dates.max()
    out = obj[(dates >= lo) & (dates <= hi)]
    if out.empty:
        raise ValueError(f"{what}: nothing inside the window {lo.date()}..{hi.date()} "
                         f"(it spans {dates.min().date()}..{dates.max().date()})")
    return out


def risk_store_dir(risk_store: str | Path | None) -> Path:
    """The risk store given, or ``<provider_uri>/risk``; ``FileNotFoundError`` naming the path tried."""
    from ..risk import store_path

    if risk_store is None:
        risk_store = data_root() / "risk"
    try:
        return store_path(risk_store)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"risk store (input risk_store): {exc}") from exc


def portfolio_weights(positions: Mapping[Any, Any]) -> pd.Series:
    """End-of-day weights ``amount x price / account value`` on (datetime, instrument) from Qlib's
    ``positions_normal_1day.pkl`` (a dict date -> ``Position``)."""
    if not isinstance(positions, Mapping) or not positions:
        raise ValueError(f"positions ({POSITIONS_FILE}): expected a non-empty dict date -> Position")
    rows: list[tuple[pd.Timestamp, str, float]] = []
    for date, pos in positions.items():
        book = pos.position if hasattr(pos, "position") else pos
        value = float(pos.calculate_value()) if hasattr(pos, "calculate_value") else float(book["now_account_value"])
        if value <= 0:
            continue
        ts = pd.Timestamp(date)
        for code, item in book.items():
            if isinstance(item, dict) and "amount" in item:
                rows.append((ts, str(code), float(item["amount"]) * float(item.get("price", 0.0)) / value))
    if not rows:
        return pd.Series([], index=pd.MultiIndex.from_arrays([pd.DatetimeIndex([]), []], names=["datetime", "instrument"]),
                         dtype=float, name="weight")
    df = pd.DataFrame(rows, columns=["datetime", "instrument", "weight"])
    return df.groupby(["datetime", "instrument"])["weight"].sum().sort_index()


def active_return(report: pd.DataFrame, with_cost: bool = True) -> pd.Series:
    """``return - bench - cost`` from Qlib's report_normal (``cost`` left out when ``with_cost`` is False)."""
    from .metrics.performance import excess_returns

    return excess_returns(report, with_cost=with_cost, mode="difference").rename("active")


def holdings_inputs(rec: Any, bench: str, store: Path, styles: Sequence[str] | None,
                    with_cost: bool = True):
    """(active return, active weights, daily active exposures, styles) of a backtest run.

    rec: an :class:`~.records.base.AnalysisRecord` (its ``load`` reads the backtest's artifacts)."""
    from ..risk import load_exposures, load_meta

    report = rec.load(PORT_REPORT_FILE)
    positions = rec.load(POSITIONS_FILE)
    a = active_return(report, with_cost)
    if a.empty:
        raise ValueError(f"{PORT_REPORT_FILE}: the backtest report has no days")
    styles = list(styles or load_meta(store)["styles"])
    w = portfolio_weights(positions)
    start, end = a.index.min() - pd.Timedelta(days=15), a.index.max()
    b = benchmark_weights(bench, start, end)
    d = active_weights(w, b)
    d = d[d.index.get_level_values("datetime") <= end]
    exposures = load_exposures(store, start=start, end=end)
    return a, d, active_exposures(d, exposures, styles), styles


def read_futures(path: str | Path) -> pd.DataFrame:
    """Read a futures price file (CSV or Parquet; format in :mod:`.metrics.market_review`) and validate it
    with :func:`~.metrics.market_review.check_futures`; errors name the file and the column or row."""
    from .metrics.market_review import check_futures

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"futures price file {path} not found")
    df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    return check_futures(df, f"futures price file {path}")
