"""Per-direction order blocking (A-share rules) and the exchange's day flags read in bulk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.backtest import LIMIT_THRESHOLD, LimitExchange
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel
from qlib_ext.strategy import day_masks, make_orders, quote_view, target_amounts


def test_target_amounts_block_one_direction_only():
    stocks = ["UP_HELD", "UP_NEW", "DOWN_HELD", "DOWN_NEW", "SUSP", "FREE", "NOPRICE", "UNQUOTED"]
    current = pd.Series({"UP_HELD": 1000.0, "DOWN_HELD": 1000.0, "SUSP": 500.0, "FREE": 300.0,
                         "NOPRICE": 200.0, "UNQUOTED": 100.0})
    weights = pd.Series({"UP_HELD": 0.0, "UP_NEW": 0.2, "DOWN_HELD": 0.05, "DOWN_NEW": 0.2, "SUSP": 0.0,
                         "FREE": 0.3, "NOPRICE": 0.1})
    price = pd.Series(10.0, index=stocks).drop("NOPRICE")
    no_buy = pd.Series({"UP_HELD": True, "UP_NEW": True, "DOWN_HELD": False, "DOWN_NEW": False, "SUSP": True,
                        "FREE": False, "NOPRICE": False})
    no_sell = pd.Series({"UP_HELD": False, "UP_NEW": False, "DOWN_HELD": True, "DOWN_NEW": True, "SUSP": True,
                         "FREE": False, "NOPRICE": False})
    got = target_amounts(weights, current, price, 100_000.0, no_buy, no_sell)
    want = {
        "UP_HELD": 0.0,        # limit-up: selling allowed (Qlib's generators would skip the stock)
        "UP_NEW": 0.0,         # limit-up: not bought
        "DOWN_HELD": 1000.0,   # limit-down: the wanted sale (to 500 shares) is blocked
        "DOWN_NEW": 2000.0,    # limit-down: buying allowed
        "SUSP": 500.0,         # suspended: kept
        "FREE": 3000.0,        # 100,000 x 0.3 / 10
        "NOPRICE": 200.0,      # no reference price: kept
        "UNQUOTED": 100.0,     # no flags (not quoted): treated as suspended, kept
    }
    pd.testing.assert_series_equal(got.sort_index(), pd.Series(want).sort_index(), check_names=False)


class _Exchange:
    """The two Exchange methods make_orders uses, with a 100-share lot."""

    def get_factor(self, stock, start, end):
        return 1.0

    def get_real_deal_amount(self, current, target, factor):
        if target == current:
            return 0
        if target == 0:
            return -current
        return np.sign(target - current) * (abs(target - current) * factor + 0.1) // 100 * 100 / factor


def test_make_orders_rounds_to_lots_and_sells_first():
    current = pd.Series({"A": 1000.0, "B": 250.0, "C": 0.0})
    target = pd.Series({"A": 1530.0, "B": 0.0, "C": 49.0, "D": 0.0})
    day = pd.Timestamp("2024-01-02")
    orders = make_orders(target, current, _Exchange(), day, day)
    got = [(o.stock_id, o.direction, o.amount) for o in orders]
    assert got == [("B", 0, 250.0), ("A", 1, 500.0)]  # SELL=0 first; C rounds to 0 lots: no order


def test_quote_view_matches_the_exchange_rule(micro_market, tmp_path):
    """Bulk day flags == LimitExchange's per-stock answers == an independent pandas computation."""
    qlib_ext.init(micro_market, mlruns=tmp_path / "mlruns")
    cal = read_calendar(micro_market)
    codes = sorted(read_instruments(micro_market, "csiall")["instrument"].unique())
    ex = LimitExchange(freq="day", start_time=cal[-120], end_time=cal[-1], codes="csiall",
                       limit_threshold=list(LIMIT_THRESHOLD), deal_price="vwap")
    view = quote_view(ex)
    assert quote_view(ex) is view  # cached per exchange
    low, high, up, down, paused = (read_panel(micro_market, f, codes).loc[cal[-120]:]
                                   for f in ("low", "high", "up_limit", "down_limit", "paused"))
    susp = (paused > 0.5) | paused.isna()
    lim_up = (low >= up - 0.005) & ~susp
    lim_down = (high <= down + 0.005) & ~susp
    assert susp.to_numpy().sum() > 0 and lim_up.to_numpy().sum() + lim_down.to_numpy().sum() > 0
    days = [d for d in cal[-120:] if susp.loc[d].any() or lim_up.loc[d].any() or lim_down.loc[d].any()]
    index = pd.Index(codes + ["NOT_QUOTED"])
    for day in days[:10] + [cal[-1]]:
        m = day_masks(view, day, index)
        assert m.loc["NOT_QUOTED", "suspended"]
        np.testing.assert_array_equal(m.loc[codes, "suspended"], susp.loc[day, codes])
        np.testing.assert_array_equal(m.loc[codes, "limit_up"], lim_up.loc[day, codes])
        np.testing.assert_array_equal(m.loc[codes, "limit_down"], lim_down.loc[day, codes])
        flagged = m.loc[codes].any(axis=1)
        for stock in flagged.index[flagged]:  # each flagged stock, asked one by one (BUY = 1, SELL = 0)
            stop, up_, down_ = (bool(m.loc[stock, c]) for c in ("suspended", "limit_up", "limit_down"))
            assert ex.is_stock_tradable(stock, day, day, direction=1) == (not (stop or up_))
            assert ex.is_stock_tradable(stock, day, day, direction=0) == (not (stop or down_))
    assert not view.has(cal[-121]) and view.on(cal[-121]).empty


def test_quote_view_needs_a_qlib_exchange():
    class NotAnExchange:
        pass

    with pytest.raises(TypeError, match="quote_df"):
        quote_view(NotAnExchange())
