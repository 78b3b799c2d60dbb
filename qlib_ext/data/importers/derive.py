"""The SPEC 3.1 stock fields computed from the raw daily panels, for a block of stock columns at a time.

Conventions (Qlib's, as the synthetic market writes them):

* ``factor`` = adj_factor / adj_factor on the stock's first row in the import window, so the first
  row's adjusted prices equal the raw ones and history does not move when later data are appended.
  Adjusted price = raw x factor; ``volume`` = raw shares / factor (so price x volume stays the amount);
  ``amount`` is raw CNY.  A missing adj_factor is carried forward (backward before the first value).
* ``vwap`` = amount / raw volume x factor; where amount is missing or inconsistent with the bar, the
  fallback is the bar's mean price (open + high + low + close) / 4 x factor (counted in the report).
* ``change`` = adjusted close / previous traded adjusted close - 1 (across suspensions); on a stock's
  first row it is close / pre_close - 1 when the source gives ``pre_close``, else NaN.
* ``up_limit``/``down_limit``: board rule (``limits``) applied to the previous close in today's raw
  terms (``pre_close`` when given, else previous adjusted close / today's factor, to the cent), then x
  factor.  Where the day's high or low lies beyond them the day had no limit (new listings) or the
  source disagrees: both are NaN there (counted).
* ``paused`` = 1 on listed days without a traded row (no row, or a row with vol 0): prices NaN,
  volume/amount/turnover 0 (Qlib's convention).
* shares: the latest row on or before the day, else the first after it (look-ahead, documented);
  ``total_shares`` falls back to ``float_shares`` for stocks with no total at all (counted).
  ``turnover`` = raw volume / float shares; ``mcap`` / ``float_mcap`` = last raw close x shares.
"""

from __future__ import annotations

import numpy as np

from .daily import DailyData
from .fill import ffill, fill_both
from .limits import limit_pct, limit_prices, round_cents

#: Fields in adjusted price terms (x factor); ``volume`` is divided by the factor.
PRICE_FIELDS = ("open", "high", "low", "close")
ADJUSTED_FIELDS = (*PRICE_FIELDS, "vwap", "up_limit", "down_limit")


def adj_factor_filled(d: DailyData, cols: slice | np.ndarray = slice(None)) -> np.ndarray:
    """(T, n) source adjustment factor, carried forward/backward; ones where the source has none."""
    raw = d.raw.get("adj_factor")
    if raw is None:
        return np.ones(d.has_row[:, cols].shape, dtype=np.float64)
    f = fill_both(raw[:, cols].astype(np.float64))
    return np.where(np.isfinite(f), f, 1.0)


def factor_panel(d: DailyData, cols: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Qlib ``factor``: adj_factor / adj_factor on the stock's first row (T, n); 1 without adj_factor."""
    f = adj_factor_filled(d, cols)
    first = np.minimum(d.grid.first[cols], f.shape[0] - 1)
    return f / f[first, np.arange(f.shape[1])][None, :]


def traded_mask(d: DailyData, cols: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Cells with a row that traded (vol > 0 and a close)."""
    return d.has_row[:, cols] & (d.raw["vol"][:, cols] > 0) & np.isfinite(d.raw["close"][:, cols])


def shares_panels(d: DailyData, shares: dict[str, np.ndarray] | None, stats: dict) -> dict[str, np.ndarray]:
    """Filled float/total share panels (T, N) float32 over listed days; NaN for stocks without any share row."""
    T, N = d.grid.shape
    listed = d.grid.listed
    out = {k: np.full((T, N), np.nan, dtype=np.float32) for k in ("float_shares", "total_shares")}
    if not shares:
        return out
    no_total = no_rows = 0
    for c in range(0, N, 512):
        cols = slice(c, c + 512)
        nan = np.full((T, listed[:, cols].shape[1]), np.nan, dtype=np.float32)
        fl, tot = (fill_both(shares[k][:, cols]) if k in shares else nan.copy() for k in ("float_share", "total_share"))
        miss = np.isnan(tot).all(axis=0) & ~np.isnan(fl).all(axis=0)
        tot[:, miss] = fl[:, miss]
        no_total += int(miss.sum())
        no_rows += int(np.isnan(fl).all(axis=0).sum())
        out["float_shares"][:, cols] = np.where(listed[:, cols], fl, np.nan)
        out["total_shares"][:, cols] = np.where(listed[:, cols], tot, np.nan)
    stats["stocks whose total_shares fall back to float_shares"] = no_total
    stats["stocks without any share row (turnover/mcap NaN)"] = no_rows
    return out


def last_close(d: DailyData, cols: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Raw close carried over suspended days (first traded close before the first trade)."""
    return fill_both(np.where(traded_mask(d, cols), d.raw["close"][:, cols].astype(np.float64), np.nan))


def float_cap(d: DailyData, float_shares: np.ndarray) -> np.ndarray:
    """(T, N) float32 float market cap = last raw close x float shares, built in column blocks."""
    out = np.empty(float_shares.shape, dtype=np.float32)
    for c in range(0, out.shape[1], 512):
        out[:, c:c + 512] = last_close(d, slice(c, c + 512)) * float_shares[:, c:c + 512]
    return out


def stock_fields(d: DailyData, cols: slice, sh: dict[str, np.ndarray], extra: dict[str, np.ndarray],
                 stats: dict) -> dict[str, np.ndarray]:
    """All SPEC stock fields for the stock columns ``cols``: (T, n) arrays, NaN outside the listing span.

    ``sh`` are the filled share panels, ``extra`` ready panels (industry, w_*) sliced the same way.
    """
    g = d.grid
    raw = {k: v[:, cols].astype(np.float64) for k, v in d.raw.items()}
    T, n = raw["close"].shape
    listed = g.listed[:, cols]
    traded = traded_mask(d, cols)
    idle = listed & ~traded
    nan = np.nan

    factor = factor_panel(d, cols)
    out = {k: np.where(traded, raw[k] * factor, nan) for k in PRICE_FIELDS}
    out["factor"] = np.where(listed, factor, nan)
    out["volume"] = np.where(traded, raw["vol"] / factor, np.where(idle, 0.0, nan))
    amount = raw.get("amount", np.full((T, n), nan))
    out["amount"] = np.where(traded, amount, np.where(idle, 0.0, nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap_raw = amount / raw["vol"]
    fallback = traded & ~np.isfinite(vwap_raw)
    mean_px = (raw["open"] + raw["high"] + raw["low"] + raw["close"]) / 4
    out["vwap"] = np.where(traded, np.where(fallback, mean_px, vwap_raw) * factor, nan)
    stats["vwap_fallback_rows"] = stats.get("vwap_fallback_rows", 0) + int(fallback.sum())

    prev_adj = np.vstack([np.full((1, n), nan), ffill(out["close"])[:-1]])
    change = out["close"] / prev_adj - 1
    pre_src = raw.get("pre_close")
    if pre_src is not None:
        change = np.where(np.isnan(prev_adj), raw["close"] / pre_src - 1, change)
        pre_raw = round_cents(np.where(np.isfinite(pre_src), pre_src, prev_adj / factor))
    else:
        pre_raw = round_cents(prev_adj / factor)
    out["change"] = np.where(traded, change, nan)
    st = raw.get("is_st")
    up, dn = limit_prices(pre_raw, limit_pct(g.stocks[cols], g.days, st))
    no_limit = traded & np.isfinite(pre_raw) & ((raw["high"] > up + 0.005) | (raw["low"] < dn - 0.005))
    stats["limit_dropped_rows"] = stats.get("limit_dropped_rows", 0) + int(no_limit.sum())
    keep = traded & ~no_limit
    out["up_limit"], out["down_limit"] = np.where(keep, up * factor, nan), np.where(keep, dn * factor, nan)
    out["paused"] = np.where(listed, idle.astype(np.float64), nan)

    fl, tot = sh["float_shares"][:, cols], sh["total_shares"][:, cols]
    px = last_close(d, cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["turnover"] = np.where(traded, raw["vol"] / fl, np.where(idle & np.isfinite(fl), 0.0, nan))
    out["total_shares"], out["float_shares"] = tot, fl
    out["mcap"], out["float_mcap"] = np.where(listed, px * tot, nan), np.where(listed, px * fl, nan)
    for k, v in extra.items():
        out[k] = np.where(listed, v[:, cols], nan)
    return out
