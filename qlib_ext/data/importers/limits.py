"""Daily price limits of A-shares from the board rules and the previous (ex-adjusted) close.

Rules (SSE/SZSE trading rules): main board ±10%; ST names on the main board ±5% where flagged;
ChiNext (300/301/302) ±20% from the registration reform on 2020-08-24, ±10% before; STAR (688/689)
±20%; Beijing exchange ±30%.  Limit price = previous close x (1 ± pct), rounded half-up to the cent.
Days without a limit (the first days of a registration-based listing) are not known from the data;
the importer drops the limit where the day's high/low lies outside it (see ``derive``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

CHINEXT_REFORM = pd.Timestamp("2020-08-24")


def boards(stocks: Sequence[str]) -> np.ndarray:
    """Board of each Qlib symbol: ``main``, ``chinext``, ``star`` or ``bse``."""
    s = pd.Series(list(stocks), dtype="string")
    ex, num = s.str.slice(0, 2), s.str.slice(2)
    out = np.full(len(s), "main", dtype=object)
    out[((ex == "SH") & num.str.match(r"^68[89]")).to_numpy(bool)] = "star"
    out[((ex == "SZ") & num.str.match(r"^30[012]")).to_numpy(bool)] = "chinext"
    out[(ex == "BJ").to_numpy(bool)] = "bse"
    return out


def limit_pct(stocks: Sequence[str], days: pd.DatetimeIndex, is_st: np.ndarray | None = None) -> np.ndarray:
    """(days x stocks) limit fraction from the board rules; ``is_st`` (same shape, 1 = ST) gives 5% on the main board."""
    b = boards(stocks)
    pct = np.select([b == "star", b == "bse"], [0.20, 0.30], 0.10)[None, :].repeat(len(days), axis=0)
    reformed = (np.asarray(days) >= CHINEXT_REFORM.to_datetime64())[:, None]
    pct = np.where(reformed & (b == "chinext")[None, :], 0.20, pct)
    if is_st is not None:
        pct = np.where((is_st == 1) & (b == "main")[None, :], 0.05, pct)
    return pct


def round_cents(x: np.ndarray) -> np.ndarray:
    """Round half-up to the cent (the exchanges' rule), robust to binary representation (2.675 -> 2.68)."""
    return np.floor(np.asarray(x, dtype=np.float64) * 100 + 0.5 + 1e-6) / 100


def limit_prices(pre_close: np.ndarray, pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) limit prices in raw CNY from the previous close."""
    return round_cents(pre_close * (1 + pct)), round_cents(pre_close * (1 - pct))
