"""Target weights -> Qlib orders under the A-share trading rules, one direction at a time.

Qlib's order generators skip a stock that is limited in *either* direction
(``Exchange.is_stock_tradable(direction=None)``), so a stock on a one-word limit-up board could not be
sold, nor one on a limit-down board bought.  The report's rules (figure 10) block only one side:
suspended -> no trade, one-word limit-up -> no buy, one-word limit-down -> no sell.
:class:`TradableOrderGen` applies them per direction with the exchange's own flags
(:mod:`.quotes`); the exchange then deals (and would still refuse) each order.

Sizing uses no trade-day price: ``amount_i = value * w_i / p_i`` with ``value = risk_degree x`` the
account value at the last close and ``p_i`` the last close (the position's price for a holding, the
quote's close of the signal day otherwise; only when the quote does not cover the signal day -- the
first rebalance of a backtest whose exchange window starts on the trade day -- the trade day's close).
Orders are rounded to the exchange's trade unit; sells come first so their cash funds the buys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from qlib.backtest.decision import Order
from qlib.backtest.position import Position
from qlib.contrib.strategy.order_generator import OrderGenerator

from .quotes import quote_view


def target_amounts(weights: pd.Series, current: pd.Series, price: pd.Series, value: float,
                   no_buy: pd.Series, no_sell: pd.Series) -> pd.Series:
    """Target share amounts ``value * w / price``, kept at the current amount where the move is blocked.

    Index = weights U current holdings.  A missing weight is 0 (sell out); a stock without a price
    keeps its current amount; ``no_buy``/``no_sell`` (missing = True, i.e. not quoted) block increases
    / decreases.
    """
    idx = weights.index.union(current.index)
    w = weights.reindex(idx, fill_value=0.0).astype(float)
    cur = current.reindex(idx, fill_value=0.0).astype(float)
    tgt = value * w / price.reindex(idx).astype(float)
    nb = no_buy.reindex(idx).astype("boolean").fillna(True).astype(bool)
    ns = no_sell.reindex(idx).astype("boolean").fillna(True).astype(bool)
    blocked = tgt.isna() | ((tgt > cur) & nb) | ((tgt < cur) & ns)
    return tgt.where(~blocked, cur)


def make_orders(target: pd.Series, current: pd.Series, exchange, start_time: pd.Timestamp,
                end_time: pd.Timestamp, factor: pd.Series | None = None) -> list[Order]:
    """Orders moving ``current`` to ``target`` amounts, rounded by ``Exchange.get_real_deal_amount``; sells first.

    Only the stocks whose amount changes get an order (one ``Order`` object each, as Qlib requires).
    """
    cur = current.reindex(target.index, fill_value=0.0)
    changed = target.index[~np.isclose(target.to_numpy(float), cur.to_numpy(float), rtol=0, atol=1e-9)]
    fac = (factor.reindex(changed) if factor is not None else pd.Series(np.nan, index=changed)).to_numpy(float)
    sells, buys = [], []
    for stock, f in zip(changed, fac):
        f = float(f) if np.isfinite(f) and f > 0 else exchange.get_factor(stock, start_time, end_time)
        deal = exchange.get_real_deal_amount(float(cur[stock]), float(target[stock]), f)
        if deal == 0 or not np.isfinite(deal):
            continue
        order = Order(stock_id=stock, amount=abs(deal), start_time=start_time, end_time=end_time,
                      direction=Order.BUY if deal > 0 else Order.SELL, factor=f)
        (buys if deal > 0 else sells).append(order)
    return sells + buys


def holdings(position: Position) -> tuple[pd.Series, pd.Series]:
    """(amount, last price) of each stock held in a Qlib position."""
    stocks = position.get_stock_list()
    amount = pd.Series({s: position.get_stock_amount(s) for s in stocks}, dtype=float)
    price = pd.Series({s: position.get_stock_price(s) for s in stocks}, dtype=float)
    return amount, price


class TradableOrderGen(OrderGenerator):
    """Qlib ``OrderGenerator``: target weights (of ``risk_degree`` x account value) -> orders, with
    suspended / one-word limit stocks blocked per direction (see the module docstring)."""

    def generate_order_list_from_target_weight_position(
        self,
        current: Position,
        trade_exchange,
        target_weight_position: dict,
        risk_degree: float,
        pred_start_time: pd.Timestamp,
        pred_end_time: pd.Timestamp,
        trade_start_time: pd.Timestamp,
        trade_end_time: pd.Timestamp,
    ) -> list[Order]:
        if target_weight_position is None:
            return []
        view = quote_view(trade_exchange)
        day = view.on(trade_start_time)
        if day.empty:
            raise ValueError(f"the exchange has no quote on the trade day {pd.Timestamp(trade_start_time).date()}: "
                             "give the exchange the backtest window (start_time/end_time in its kwargs)")
        amount, held_price = holdings(current)
        ref = view.on(pred_start_time)["close"] if view.has(pred_start_time) else day["close"]
        price = held_price.combine_first(ref)
        weights = pd.Series(target_weight_position, dtype=float)
        value = risk_degree * current.calculate_value()
        target = target_amounts(weights, amount, price, value, day["no_buy"], day["no_sell"])
        return make_orders(target, amount, trade_exchange, trade_start_time, trade_end_time, day["factor"])
