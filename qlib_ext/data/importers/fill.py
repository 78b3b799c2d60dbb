"""Carrying values along the calendar axis of (days x stocks) panels, vectorised (no loop over stocks)."""

from __future__ import annotations

import numpy as np


def ffill(a: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Carry the last valid value down axis 0 (days); NaN before the first."""
    valid = np.isfinite(a) if valid is None else valid
    idx = np.where(valid, np.arange(a.shape[0], dtype=np.int32)[:, None], np.int32(-1))
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[np.maximum(idx, 0), np.arange(a.shape[1])[None, :]]
    return np.where(idx >= 0, out, np.nan).astype(a.dtype, copy=False)


def bfill(a: np.ndarray) -> np.ndarray:
    """Carry the next valid value up axis 0."""
    return ffill(a[::-1])[::-1]


def fill_both(a: np.ndarray) -> np.ndarray:
    """Latest value on or before the day, else the first after it (look-ahead for leading gaps)."""
    return bfill(ffill(a))
