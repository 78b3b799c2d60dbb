"""What the backtest's exchange will refuse on a day, for a whole cross-section at once.

Qlib's :class:`~qlib.backtest.exchange.Exchange` keeps its quote in ``quote_df`` ((instrument,
datetime) rows) with the columns ``$close`` (NaN = suspended, Qlib's convention), ``limit_buy`` and
``limit_sell`` (True = that direction is blocked; both already include the suspended days) and
``$factor``.  With :class:`qlib_ext.backtest.LimitExchange` and ``[BUY_LIMIT, SELL_LIMIT]`` these are
the A-share rules of the report (figure 10): suspended (``$paused``) stocks are not traded, one-word
limit-up boards (low at the up limit) are not bought, one-word limit-down boards (high at the down
limit) are not sold.  Reading the exchange's own flags keeps the optimizer's tradability constraint
and the execution in agreement whatever ``limit_threshold`` the workflow configures.

``Exchange.check_stock_limit`` answers one stock at a time; :class:`QuoteView` pivots the quote once
(dates x instruments) so that a rebalance reads a day's flags for thousands of stocks in one lookup.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

FLAG_COLUMNS = ("close", "factor", "suspended", "no_buy", "no_sell")
_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class QuoteView:
    """Day-by-day flags of an exchange: ``on(date)`` -> instrument x [close, factor, suspended, no_buy, no_sell].

    ``suspended`` = no ``$close`` that day (also for a quoted instrument without a row that day);
    ``no_buy``/``no_sell`` include it.  An instrument the exchange does not quote at all is absent;
    callers treat it as suspended, as ``Exchange.check_stock_suspended`` does.
    """

    def __init__(self, exchange) -> None:
        q = getattr(exchange, "quote_df", None)
        self.source = q
        if q is None or not {"$close", "limit_buy", "limit_sell"} <= set(q.columns):
            raise TypeError(f"{type(exchange).__name__} has no Qlib quote_df with $close/limit_buy/limit_sell; "
                            "use qlib.backtest.exchange.Exchange or qlib_ext.backtest.LimitExchange")
        cols = ["$close", "limit_buy", "limit_sell"] + (["$factor"] if "$factor" in q.columns else [])
        wide = q[cols].unstack("instrument")
        self.dates = pd.DatetimeIndex(wide.index)
        self.instruments = wide.columns.get_level_values("instrument").unique()
        self._close = wide["$close"].reindex(columns=self.instruments).to_numpy(np.float64)
        self._buy = wide["limit_buy"].reindex(columns=self.instruments).fillna(True).to_numpy(bool)
        self._sell = wide["limit_sell"].reindex(columns=self.instruments).fillna(True).to_numpy(bool)
        self._factor = (wide["$factor"].reindex(columns=self.instruments).to_numpy(np.float64)
                        if "$factor" in q.columns else np.ones_like(self._close))

    def has(self, date: pd.Timestamp) -> bool:
        """Whether the quote covers ``date``."""
        return pd.Timestamp(date) in self.dates

    def on(self, date: pd.Timestamp) -> pd.DataFrame:
        """Flags of the instruments quoted on ``date`` (empty frame when the quote does not cover it)."""
        ts = pd.Timestamp(date)
        if ts not in self.dates:
            return pd.DataFrame({c: pd.Series(dtype=bool if c in FLAG_COLUMNS[2:] else float) for c in FLAG_COLUMNS})
        i = self.dates.get_loc(ts)
        close = self._close[i]
        stop = np.isnan(close)
        return pd.DataFrame({"close": close, "factor": self._factor[i], "suspended": stop,
                             "no_buy": self._buy[i] | stop, "no_sell": self._sell[i] | stop}, index=self.instruments)


def quote_view(exchange) -> QuoteView:
    """The (cached) :class:`QuoteView` of an exchange; rebuilt when its ``quote_df`` object changes."""
    view = _VIEWS.get(exchange)
    if view is None or view.source is not exchange.quote_df:
        view = QuoteView(exchange)
        _VIEWS[exchange] = view
    return view


def day_masks(view: QuoteView, date: pd.Timestamp, index: pd.Index) -> pd.DataFrame:
    """Boolean frame over ``index`` (suspended, limit_up, limit_down) for the optimizer's tradability rule.

    Not quoted that day = suspended (as the exchange treats it).  ``limit_up`` = buying blocked while
    not suspended (a one-word limit-up board under LimitExchange); ``limit_down`` likewise for selling.
    """
    day = view.on(date).reindex(index)
    suspended = day["suspended"].astype("boolean").fillna(True).astype(bool)
    no_buy = day["no_buy"].astype("boolean").fillna(True).astype(bool)
    no_sell = day["no_sell"].astype("boolean").fillna(True).astype(bool)
    return pd.DataFrame({"suspended": suspended, "limit_up": no_buy & ~suspended,
                         "limit_down": no_sell & ~suspended}, index=index)
