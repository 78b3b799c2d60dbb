"""Backtest helpers: a Qlib ``Exchange`` that takes price-limit expressions from YAML.

Qlib's :class:`~qlib.backtest.exchange.Exchange` accepts ``limit_threshold`` as a *tuple* of two Qlib
expressions ``(buy_limit, sell_limit)``, where a true value means the stock cannot be bought / sold on
that day.  A YAML list arrives as a Python ``list``, which Qlib rejects with ``NotImplementedError``;
:class:`LimitExchange` converts it, and takes a named rule set instead: ``limit_threshold: report``
(the default when the key is omitted) is :data:`LIMIT_THRESHOLD` below, so a workflow names the rule
rather than repeating its expressions.  It is otherwise Qlib's ``Exchange``.

Convention of our datasets (fields ``$up_limit``, ``$down_limit``, ``$paused``; prices in CNY rounded
to the fen, so a tolerance of half a fen is used):

* **buy blocked** (:data:`BUY_LIMIT`) on a *one-word* limit-up board -- the day's low is at the up
  limit, i.e. the stock was locked at the limit all day and no sell orders were left -- or when the
  stock is suspended (``$paused`` = 1).  A stock that touched or closed at the limit but traded below
  it during the day stays buyable (the backtest deals at ``$vwap``).
* **sell blocked** (:data:`SELL_LIMIT`) on a one-word limit-down board (the day's high is at the down
  limit) or when suspended.

On suspended days the price fields are NaN, so the price comparisons are False there; the
``$paused`` term catches them, and Qlib itself also ORs in ``$close`` being NaN (its "suspended"
convention).

Use from a qrun YAML (``get_exchange`` instantiates the ``exchange`` config as it is and does **not**
pass ``start_time``/``end_time``/``codes``/``freq`` to it, so give the backtest window in ``kwargs``;
without it the quote covers the whole calendar, which is correct but slower)::

    backtest:
      start_time: 2023-01-01
      end_time: 2024-03-29
      exchange_kwargs:
        exchange:
          class: LimitExchange
          module_path: qlib_ext.backtest
          kwargs:
            start_time: 2023-01-01
            end_time: 2024-03-29
            codes: csiall
            limit_threshold: report        # the default; or [buy_expr, sell_expr], a float, null (Qlib's)
            deal_price: vwap
            open_cost: 0.0015
            close_cost: 0.0015
            min_cost: 0
"""

from __future__ import annotations

from typing import Any

from qlib.backtest.exchange import Exchange

from .schema import UNIVERSE

__all__ = ["BUY_LIMIT", "SELL_LIMIT", "LIMIT_THRESHOLD", "LIMIT_RULES", "LimitExchange", "report_exchange_config"]

#: True when the stock cannot be bought: one-word limit-up board (low at the up limit) or suspended.
BUY_LIMIT = "Or(Ge($low, $up_limit - 0.005), Gt($paused, 0.5))"
#: True when the stock cannot be sold: one-word limit-down board (high at the down limit) or suspended.
SELL_LIMIT = "Or(Le($high, $down_limit + 0.005), Gt($paused, 0.5))"
#: The ``limit_threshold`` tuple Qlib's ``Exchange`` expects.
LIMIT_THRESHOLD = (BUY_LIMIT, SELL_LIMIT)
#: Named ``limit_threshold`` rule sets of :class:`LimitExchange` (``report``: the report's A-share rules).
LIMIT_RULES: dict[str, tuple[str, str]] = {"report": LIMIT_THRESHOLD}


def _as_limit_threshold(value: Any) -> Any:
    """A YAML-friendly ``limit_threshold``: a rule name its tuple, a 2-sequence a tuple, an int a float."""
    if isinstance(value, str):
        if value not in LIMIT_RULES:
            raise ValueError(f"limit_threshold {value!r} is not a named rule set ({sorted(LIMIT_RULES)}); "
                             "give [buy_expr, sell_expr] for your own expressions")
        return LIMIT_RULES[value]
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, str) for v in value):
            raise ValueError(f"limit_threshold must be two Qlib expressions (buy, sell), got {value!r}")
        return tuple(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _as_volume_threshold(value: Any) -> Any:
    """A YAML-friendly ``volume_threshold``: lists become the tuples Qlib asserts on."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


class LimitExchange(Exchange):
    """Qlib's ``Exchange`` accepting ``limit_threshold`` (and ``volume_threshold``) as YAML lists.

    ``limit_threshold`` may be a rule name of :data:`LIMIT_RULES` (default ``"report"``:
    ``(BUY_LIMIT, SELL_LIMIT)``, see the module docstring for the convention), ``[buy_expr, sell_expr]``,
    a tuple, a float (Qlib's ``abs($change)`` rule) or None (Qlib's ``C.limit_threshold``).  Every other argument is Qlib's; ``start_time``/``end_time`` default
    to None (the whole calendar) and ``codes`` to ``"all"``, as in Qlib, because ``get_exchange`` does
    not forward the backtest window to an exchange given as a config dict.
    """

    def __init__(
        self,
        freq: str = "day",
        start_time: Any = None,
        end_time: Any = None,
        codes: list | str = "all",
        limit_threshold: Any = "report",
        volume_threshold: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            freq=freq,
            start_time=start_time,
            end_time=end_time,
            codes=codes,
            limit_threshold=_as_limit_threshold(limit_threshold),
            volume_threshold=_as_volume_threshold(volume_threshold),
            **kwargs,
        )


def report_exchange_config(start_time, end_time, codes: str = UNIVERSE, cost: float = 0.0015) -> dict:
    """``exchange`` config of the report's trading rules for ``qlib.backtest.backtest(exchange_kwargs=...)``:
    vwap deal price, ``cost`` per side, one-word limit boards and suspensions blocked (:data:`LIMIT_THRESHOLD`)."""
    return {"class": "LimitExchange", "module_path": "qlib_ext.backtest",
            "kwargs": {"freq": "day", "start_time": start_time, "end_time": end_time, "codes": codes,
                       "limit_threshold": list(LIMIT_THRESHOLD), "deal_price": "vwap",
                       "open_cost": cost, "close_cost": cost, "min_cost": 0}}
