"""Batch engine: the whole minute-factor library over [stocks x days x 240] arrays, in bounded memory.

NumPy on the CPU; PyTorch on a GPU when ``torch.cuda.is_available()`` (``device="auto"``).  The
arrays are cut twice: a source is read in chunks of stocks x days (:func:`plan_chunks`, bounds the
memory of the bars), and each chunk is computed in blocks of stock-day rows (bounds the temporaries
and keeps them in cache on the CPU).  Rows without any bar (suspended or unlisted days) are skipped
and come back NaN.  Results are the same however the arrays are cut: every factor is a function of
one row.  NumPy and torch agree to ~1e-12 relative in float64; in float32 both carry float32
rounding (differences of order 1e-6 of a factor's cross-sectional spread).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .algebra import FIELDS, N_MINUTES
from .library import compute_library, resolve
from .sources import MinuteSource
from .xp import get_backend

CPU_BLOCK_ROWS = 256           # 256 x 240 float32 = 240 KiB per temporary: the block's working set stays in L2
GPU_BLOCK_ROWS = 1 << 17


def compute_factors(bars: Mapping[str, np.ndarray], names: Iterable[str] | None = None, device: str = "auto",
                    dtype: str = "float32", rows_per_block: int | None = None) -> dict[str, np.ndarray]:
    """The library of bars ``[..., 240]`` (NumPy arrays): ``{mf_field: array[...]}`` of ``dtype``.

    ``device``: see :func:`~qlib_ext.ops.xp.get_backend` (``auto`` = a CUDA GPU when present, else
    NumPy); ``rows_per_block``: stock-day rows computed at once (default 256 on the CPU, 131,072 on
    a GPU).  Rows whose close is NaN all day are not computed and come back NaN.
    """
    xp = get_backend(device, dtype)
    factors = resolve(names)
    shape = np.shape(bars["close"])[:-1]
    if np.shape(bars["close"])[-1] != N_MINUTES:
        raise ValueError(f"bars have {np.shape(bars['close'])[-1]} minutes on the last axis, expected {N_MINUTES}")
    flat = {f: np.asarray(bars[f]).reshape(-1, N_MINUTES) for f in FIELDS}
    has = np.isfinite(flat["close"]).any(-1)
    n_rows = has.size
    out = {f.field: np.full(n_rows, np.nan, dtype=dtype) for f in factors}
    block = rows_per_block or (CPU_BLOCK_ROWS if xp.name == "numpy" else GPU_BLOCK_ROWS)
    names_ = [f.name for f in factors]
    for a in range(0, n_rows, block):
        ok = has[a : a + block]
        if not ok.any():
            continue
        whole = bool(ok.all())                 # days without any bar are dropped inside the block
        sub = {f: xp.asarray(v[a : a + block] if whole else v[a : a + block][ok]) for f, v in flat.items()}
        for field, val in compute_library(sub, names_, xp).items():
            if whole:
                out[field][a : a + block] = xp.to_numpy(val)
            else:
                out[field][a : a + block][ok] = xp.to_numpy(val)
    return {field: val.reshape(shape) for field, val in out.items()}


@dataclass(frozen=True)
class Chunk:
    """Sessions [d0, d1) of ``symbols``; ``key`` names it in the staging area."""

    key: str
    symbols: tuple[str, ...]
    d0: int
    d1: int

    @property
    def stock_days(self) -> int:
        return len(self.symbols) * (self.d1 - self.d0)


def plan_chunks(spans: pd.DataFrame, d0: int, d1: int, stocks_per_chunk: int, days_per_chunk: int) -> list[Chunk]:
    """Blocks of ``days_per_chunk`` sessions, each over the instruments listed in it, cut by stocks."""
    if stocks_per_chunk < 1 or days_per_chunk < 1:
        raise ValueError(f"chunk sizes must be >= 1, got stocks={stocks_per_chunk} days={days_per_chunk}")
    first, last, names = spans["first"].to_numpy(), spans["last"].to_numpy(), np.asarray(spans.index)
    out = []
    for a in range(d0, d1, days_per_chunk):
        b = min(d1, a + days_per_chunk)
        active = names[(first < b) & (last >= a)]
        for k, s in enumerate(range(0, len(active), stocks_per_chunk)):
            out.append(Chunk(f"d{a:05d}-{b:05d}_s{k:03d}", tuple(active[s : s + stocks_per_chunk]), a, b))
    return out


def compute_chunk(source: MinuteSource, chunk: Chunk, names: Sequence[str] | None = None, device: str = "auto",
                  dtype: str = "float32") -> dict[str, pd.DataFrame]:
    """One chunk's factors as ``{mf_field: frame (sessions x symbols)}``."""
    bars = source.bars(list(chunk.symbols), chunk.d0, chunk.d1)
    vals = compute_factors(bars, names, device, dtype)
    dates = source.days[chunk.d0 : chunk.d1]
    return {f: pd.DataFrame(v.T, index=dates, columns=list(chunk.symbols)) for f, v in vals.items()}

