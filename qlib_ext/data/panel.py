"""Fast wide-panel reads of a Qlib dataset straight from its ``.bin`` files (no Qlib init needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .bin_io import bin_path, read_bin


def read_calendar(root: str | Path, freq: str = "day") -> pd.DatetimeIndex:
    """The dataset's calendar of ``freq``."""
    path = Path(root) / "calendars" / f"{freq}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing calendar")
    return pd.DatetimeIndex(pd.read_csv(path, header=None)[0])


def read_instruments(root: str | Path, market: str = "all") -> pd.DataFrame:
    """Spans of an instrument file: columns instrument, start, end (one row per span)."""
    path = Path(root) / "instruments" / f"{market.lower()}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing instrument file for market {market!r}")
    df = pd.read_csv(path, sep="\t", header=None, names=["instrument", "start", "end"], dtype=str)
    df["start"], df["end"] = pd.to_datetime(df["start"]), pd.to_datetime(df["end"])
    return df


def read_panel(root: str | Path, field: str, instruments: Sequence[str] | None = None,
               freq: str = "day") -> pd.DataFrame:
    """One field as a (calendar x instrument) float frame; NaN where an instrument has no data."""
    cal = read_calendar(root, freq)
    if instruments is None:
        instruments = sorted(read_instruments(root)["instrument"].unique())
    out = np.full((len(cal), len(instruments)), np.nan, dtype=np.float32)
    for j, inst in enumerate(instruments):
        path = bin_path(root, inst, field, freq)
        if not path.exists():
            continue
        start, vals = read_bin(path)
        n = min(vals.size, len(cal) - start)
        out[start : start + n, j] = vals[:n]
    return pd.DataFrame(out, index=cal, columns=list(instruments))
