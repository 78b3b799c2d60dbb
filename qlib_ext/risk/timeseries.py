"""Exponentially weighted sums over trailing windows, vectorised over (days x stocks) panels.

``S_t = sum_{k=0}^{W-1} lam^k x_{t-k}`` with ``lam = 0.5 ** (1 / half_life)`` is computed for every
day and stock at once: the infinite EWMA ``E_t = lam E_{t-1} + x_t`` is one IIR filter along the day
axis (``scipy.signal.lfilter``), and the window is cut with ``S_t = E_t - lam^W E_{t-W}``.  Missing
observations enter as 0 and are counted by running the same sum on the 0/1 mask.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def decay(half_life: float | None) -> float:
    """Daily decay factor ``0.5 ** (1 / half_life)``; ``None`` means equal weights (1.0)."""
    if half_life is None:
        return 1.0
    if half_life <= 0:
        raise ValueError(f"half_life must be positive, got {half_life}")
    return float(0.5 ** (1.0 / half_life))


def shift(x: np.ndarray, k: int, fill: float = 0.0) -> np.ndarray:
    """``x`` moved ``k`` days later along axis 0 (row t holds row t-k), ``fill`` before the start."""
    if k == 0:
        return x
    out = np.full_like(x, fill)
    if k < x.shape[0]:
        out[k:] = x[:-k]
    return out


def window_sum(x: np.ndarray, window: int, half_life: float | None = None, lag: int = 0) -> np.ndarray:
    """Trailing weighted sum ``sum_{k=0}^{window-1} lam^k x_{t-lag-k}`` along axis 0 (float64).

    ``x`` must be finite (put 0 where data is missing).  Equal weights (``half_life=None``) use a
    cumulative sum; otherwise the truncated EWMA described in the module docstring.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("window_sum needs finite input: put 0 where data is missing and count with a mask")
    lam = decay(half_life)
    if lam == 1.0:
        full = np.cumsum(x, axis=0)
    else:
        full = lfilter([1.0], [1.0, -lam], x, axis=0)
    out = full - lam**window * shift(full, window)
    return shift(out, lag)


def window_weights(window: int, half_life: float | None) -> np.ndarray:
    """The weights ``lam^k``, k = 0 (most recent) .. window-1, as used by :func:`window_sum`."""
    return decay(half_life) ** np.arange(window, dtype=np.float64)
