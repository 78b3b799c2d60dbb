"""Named low-frequency price-volume factors as Qlib expressions (Huatai 2024, p.8, figures 17-20).

The report's three "common price-volume factors" are ``ret_10`` (10日动量), ``std_10d`` (10日波动) and
``turn_10d`` (10日流动性); with ``size`` (市值, ln total market cap) they are the exposures of its
"stricter" label neutralisation (p.8, figure 20).  The report uses them with their signs flipped
(reversal, low vol, low liquidity); here every factor is the raw value.  The other entries are the
usual 5/20-day and amplitude/volume-ratio variants of the same families (not named in the report).

Conventions: prices are Qlib's adjusted ``$close`` etc.; a daily return is ``$close/Ref($close,1)-1``,
so a return is NaN on a suspended day (no close) and on the day after it.  Qlib's rolling operators
(``Mean``, ``Std``) use ``min_periods=1`` and skip NaN: a window is the non-missing days among the last
N sessions (shorter in a stock's first N-1 sessions); ``Std`` is the sample std (ddof = 1).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PRICE_VOLUME_FACTORS", "REPORT_FACTORS", "factor_expressions", "resolve_factor"]

_DAILY_RET = "$close/Ref($close, 1) - 1"

PRICE_VOLUME_FACTORS: dict[str, str] = {
    # the report's three (p.8) and its size factor
    "ret_10": "$close/Ref($close, 10) - 1",  # 10-day return
    "std_10d": f"Std({_DAILY_RET}, 10)",  # 10-day std of daily returns
    "turn_10d": "Mean($turnover, 10)",  # 10-day mean turnover (volume / float shares)
    "size": "Log($mcap)",  # ln total market cap (CNY)
    # variants of the same families
    "ret_5": "$close/Ref($close, 5) - 1",  # 5-day return (short-term reversal)
    "ret_20": "$close/Ref($close, 20) - 1",  # 20-day return
    "ret_w24": "Ref($close, 5)/Ref($close, 20) - 1",  # return of days t-20..t-5 (weeks 2-4)
    "std_20d": f"Std({_DAILY_RET}, 20)",  # 20-day std of daily returns
    "turn_20d": "Mean($turnover, 20)",  # 20-day mean turnover
    "amp_10d": "Mean(($high - $low)/Ref($close, 1), 10)",  # 10-day mean amplitude (high-low)/prev close
    "vr_5_20": "Mean($volume, 5)/Mean($volume, 20)",  # volume ratio, 5-day over 20-day mean volume
}

REPORT_FACTORS: tuple[str, ...] = ("ret_10", "std_10d", "turn_10d")


def factor_expressions(names: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(expressions, names) of the named factors (all by default), as a ``QlibDataLoader`` group takes them."""
    names = list(PRICE_VOLUME_FACTORS) if names is None else list(names)
    unknown = [n for n in names if n not in PRICE_VOLUME_FACTORS]
    if unknown:
        raise ValueError(f"unknown price-volume factor(s) {unknown}; known: {sorted(PRICE_VOLUME_FACTORS)}")
    return [PRICE_VOLUME_FACTORS[n] for n in names], names


def resolve_factor(name_or_expr: str) -> str:
    """The Qlib expression of a factor name, or the argument itself when it is already an expression."""
    if name_or_expr in PRICE_VOLUME_FACTORS:
        return PRICE_VOLUME_FACTORS[name_or_expr]
    if "$" in name_or_expr:
        return name_or_expr
    raise ValueError(
        f"{name_or_expr!r} is neither a price-volume factor ({sorted(PRICE_VOLUME_FACTORS)}) "
        "nor a Qlib expression (an expression names a field with '$')"
    )
