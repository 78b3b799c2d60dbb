"""Export the risk store as Qlib's ``riskmodel_root`` for ``qlib.contrib.strategy.EnhancedIndexingStrategy``.

What Qlib 0.9.7 reads (``signal_strategy.py``, ``EnhancedIndexingStrategy.get_risk_data``), for the
trading day before each trade date, ``<root>/YYYYMMDD/`` with

* ``factor_exp.pkl``: DataFrame, index = instruments (its universe), columns = factors (country,
  industry dummies, styles); float32 as in the store (cvxpy works in float64 anyway: the same
  weights as a float64 file, checked), which halves the ~0.4 KB per stock-day on disk;
* ``factor_cov.pkl``: DataFrame factor x factor, same order as the columns of ``factor_exp``;
* ``specific_risk.pkl``: **Series** on instruments, the specific volatility (Qlib squares it into
  ``var_u``; a one-column DataFrame would broadcast wrongly), no NaN (Qlib's optimizer has no NaN
  handling: a stock without an estimate gets the day's largest, Qlib's own fill rule);
* the benchmark weights come from the dataset field ``$<market>_weight`` (e.g. ``$csi500_weight``),
  which our datasets call ``$w_csi500``: :func:`write_benchmark_weight_fields` adds the aliases.

Units are consistent daily ones (exposures in std units, covariance of daily factor returns, daily
specific std).  A date missing from the root makes Qlib skip optimisation that day (it holds), so
exporting every ``k``-th date gives a ``k``-day rebalance.  Qlib's optimizer hard-codes cvxpy's ECOS
solver and silently keeps the old weights without it (SPEC 11): install ``ecos``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.fields import FieldStager
from ..data.panel import read_instruments, read_panel
from ..schema import BENCHMARKS, benchmark
from .store import load_covariance_panel, load_exposures, load_meta, load_specific_risk, store_path

BENCH_INDEXES = tuple(BENCHMARKS)


def write_riskmodel_date(root: Path, date: pd.Timestamp, exposures: pd.DataFrame, cov: pd.DataFrame,
                         spec_risk: pd.Series) -> Path:
    """One ``YYYYMMDD`` folder; ``exposures`` indexed by instrument with the factor columns of ``cov``."""
    if list(exposures.columns) != list(cov.columns) or list(cov.index) != list(cov.columns):
        raise ValueError(f"{date.date()}: exposure columns and covariance factors differ")
    spec = spec_risk.reindex(exposures.index).astype(np.float64)
    if spec.isna().all():
        raise ValueError(f"{date.date()}: no specific risk for any stock")
    spec = spec.fillna(spec.max()).rename("specific_risk")
    folder = root / date.strftime("%Y%m%d")
    tmp = root / f".{folder.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    exposures.astype(np.float32).rename_axis("instrument").to_pickle(tmp / "factor_exp.pkl")  # as stored
    cov.astype(np.float64).to_pickle(tmp / "factor_cov.pkl")
    spec.rename_axis("instrument").to_pickle(tmp / "specific_risk.pkl")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def export_riskmodel_root(data_dir: str | Path, out: str | Path | None = None, start: Any = None,
                          end: Any = None, every: int = 1, progress: bool = False, chunk: int = 60) -> Path:
    """Write ``riskmodel_root`` folders from a built store for the dates in [start, end] that have a
    covariance, every ``every``-th of them; default ``out`` = ``<store>/qlib``.  Returns ``out``.

    Works through ``chunk`` dates at a time, so memory stays at a few months of exposures.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    store = store_path(data_dir)
    out = Path(out) if out is not None else store / "qlib"
    meta = load_meta(store)
    out.mkdir(parents=True, exist_ok=True)
    if meta.get("covariance_start") is None:
        return out
    lo = pd.Timestamp(meta["covariance_start"])
    if start is not None:
        lo = max(lo, pd.Timestamp(start))
    dates = pd.DatetimeIndex(load_covariance_panel(store, lo, end, columns=["datetime", "factor"])
                             .index.get_level_values("datetime").unique()).sort_values()[::every]
    bar = tqdm(total=len(dates), desc="riskmodel_root", unit="day", disable=not progress)
    for a in range(0, len(dates), chunk):
        part = dates[a : a + chunk]
        exp = load_exposures(store, part[0], part[-1], industry_dummies=True)
        exp = exp[exp.index.get_level_values("datetime").isin(part)]
        spec = dict(iter(load_specific_risk(store, start=part[0], end=part[-1]).groupby(level="datetime")))
        covs = dict(iter(load_covariance_panel(store, part[0], part[-1]).groupby(level="datetime")))
        for date, x in exp.groupby(level="datetime"):
            s = spec[date].droplevel("datetime") if date in spec else pd.Series(dtype=float)
            write_riskmodel_date(out, date, x.droplevel("datetime"), covs[date].droplevel("datetime"), s)
            bar.update(1)
    bar.close()
    return out


def write_benchmark_weight_fields(data_dir: str | Path, indexes: Iterable[str] = BENCH_INDEXES) -> list[str]:
    """Add ``<index>_weight`` day fields (copies of ``w_<index>``) so that Qlib's
    ``EnhancedIndexingStrategy(market=<index>)`` finds its ``$<index>_weight`` benchmark weights.

    Only indexes whose ``w_<index>`` exists are aliased; written through :class:`FieldStager`
    (atomic per file).  Returns the fields written.
    """
    root = Path(data_dir)
    spans = read_instruments(root, "all")
    instruments = sorted(spans["instrument"].unique())
    first = instruments[0].lower()
    weight = {i: benchmark(i).weight_field for i in indexes}
    present = [i for i in indexes if (root / "features" / first / f"{weight[i]}.day.bin").exists()]
    if not present:
        return []
    fields = [f"{i}_weight" for i in present]
    stager = FieldStager(root, "risk_benchmark_weights", fields)
    if not stager.done("all"):
        stager.save("all", {f"{i}_weight": read_panel(root, weight[i], instruments) for i in present})
    return stager.commit(spans)
