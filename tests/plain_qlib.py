"""A plain-Qlib-shaped dataset made from one of our synthetic markets, for tests of foreign data.

What many users hold (SPEC 3.3: Qlib-format data written by other tools, Qlib's Yahoo normalisation):
daily ``open high low close volume factor change`` only, as float32, with *adjusted* prices and a
per-stock ``factor`` that steps at corporate actions; no ``vwap``, ``amount``, ``industry``, ``mcap``,
``turnover``, shares, limits, ``paused`` or benchmark weights; no minute bars; no ``meta/``; and
(on some systems) upper-case instrument feature folders, which Qlib on Linux never finds.

Construction, per stock (the synthetic market has no corporate actions, so its prices are raw):

* ``S_t``: a split multiplier, 1 then x1.5 at one third of the stock's span then x2 at two thirds
  (the raw price a plain dataset saw drops by those factors on the ex-dates);
* ``k = 1 / (first close)`` (Yahoo normalisation: the adjusted series starts at 1);
* ``factor = k * S_t``, adjusted price ``= raw_t * factor = src_price * k`` (continuous across the
  steps, as an adjusted series is), adjusted volume ``= raw volume / factor = src_volume / k``;
* ``change`` = the adjusted close's daily change.

Index instruments keep their own OHLC (adjusted by nothing) and ``volume``; their ``amount`` is
dropped too.  Instrument files and the day calendar are copied as they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from qlib_ext.data.bin_io import read_bin
from qlib_ext.schema import INDEX_INSTRUMENTS

__all__ = ["PLAIN_FIELDS", "STEP_MULTIPLIERS", "make_plain_qlib_dataset"]

#: the day fields a plain dataset keeps
PLAIN_FIELDS = ("open", "high", "low", "close", "volume", "factor", "change")
#: cumulative split steps of ``S_t`` (at one third and two thirds of each stock's span)
STEP_MULTIPLIERS = (1.5, 2.0)
_PRICES = ("open", "high", "low", "close")
_INDEXES = {code.lower() for code in INDEX_INSTRUMENTS.values()}


def _write(path: Path, start: int, values: np.ndarray) -> None:
    np.concatenate([np.array([start], dtype="<f4"), values.astype("<f4")]).tofile(path)


def make_plain_qlib_dataset(src: Path, dst: Path, upper_case: bool = True) -> Path:
    """Write the plain-Qlib-shaped copy of the dataset at ``src`` to ``dst`` (see the module docstring).

    ``upper_case``: instrument folders as ``features/SH600000/`` (Qlib on Linux then reads nothing,
    which is what the case diagnostics are for); False writes them lower-case, as after the fix.
    Returns ``dst``.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise FileExistsError(f"make_plain_qlib_dataset: {dst} exists")
    (dst / "calendars").mkdir(parents=True)
    shutil.copy2(src / "calendars" / "day.txt", dst / "calendars" / "day.txt")
    shutil.copytree(src / "instruments", dst / "instruments")
    for folder in sorted((src / "features").iterdir()):
        name = folder.name.upper() if upper_case else folder.name.lower()
        out = dst / "features" / name
        out.mkdir(parents=True)
        if folder.name.lower() in _INDEXES:
            for f in ("open", "high", "low", "close", "volume", "change"):
                if (folder / f"{f}.day.bin").exists():
                    shutil.copy2(folder / f"{f}.day.bin", out / f"{f}.day.bin")
            continue
        start, close = read_bin(folder / "close.day.bin")
        close = close.astype(np.float64)
        ok = np.flatnonzero(np.isfinite(close) & (close > 0))
        if not ok.size:
            continue
        k = 1.0 / close[ok[0]]
        steps = np.ones(len(close))
        for frac, mult in zip((1 / 3, 2 / 3), STEP_MULTIPLIERS, strict=True):
            steps[int(ok[0] + frac * (ok[-1] - ok[0])):] *= mult
        for f in _PRICES:
            s, x = read_bin(folder / f"{f}.day.bin")
            _write(out / f"{f}.day.bin", s, x.astype(np.float64) * k)
        s, vol = read_bin(folder / "volume.day.bin")
        _write(out / "volume.day.bin", s, vol.astype(np.float64) / k)
        _write(out / "factor.day.bin", start, np.where(np.isfinite(close), k * steps, np.nan))
        adj = (close * k).astype(np.float32).astype(np.float64)
        change = np.full(len(adj), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            change[1:] = adj[1:] / adj[:-1] - 1
        _write(out / "change.day.bin", start, change)
    return dst
