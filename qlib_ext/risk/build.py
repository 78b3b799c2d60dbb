"""``build_risk``: dataset panels -> descriptors -> exposures -> factor returns -> covariance -> store.

The whole history up to ``end`` is always computed (windows of up to 525 days and the EWMA
covariance need it), so the numbers on a date do not depend on ``start``: ``start``/``end`` only
choose which dates are written.  Memory at 5,000 stocks x 3,500 days: float32 input panels
(~70 MB each), descriptors in blocks of stocks, a few float64 panels (~140 MB each) at a time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from .. import __version__
from ..data.check import missing_fields_message
from ..data.panel import read_calendar, read_instruments, read_panel
from ..files import swap_dir, write_json_atomic
from .config import COUNTRY, STYLES, RiskConfig, industry_factor
from .covariance import check_risk_panels, factor_covariance, specific_risk
from .descriptors import compute_descriptors
from .exposures import style_exposures
from .qlib_export import export_riskmodel_root, write_benchmark_weight_fields
from .regression import factor_returns
from .store import STORE_DIR, long_table, sweep_stale, temp_store, write_table

FIELDS = ("change", "mcap", "turnover", "industry")
#: What each input field is for (named when it is missing).
FIELD_USES = {"change": "daily returns", "mcap": "size, regression weights", "turnover": "liquidity",
              "industry": "industry factors"}


def read_inputs(root: Path, end: Any = None) -> tuple[pd.DatetimeIndex, list[str], dict[str, np.ndarray]]:
    """Calendar (up to ``end``), stock list (``instruments/all.txt``) and the float32 input panels."""
    cal = read_calendar(root)
    if end is not None:
        cal = cal[cal <= pd.Timestamp(end)]
    if len(cal) == 0:
        raise ValueError(f"{root}: no trading day on or before end={end}")
    instruments = sorted(read_instruments(root, "all")["instrument"].unique())
    missing = missing_fields_message(root, FIELD_USES, "the risk model")
    if missing:
        raise FileNotFoundError(missing)
    panels = {}
    for f in FIELDS:
        panels[f] = read_panel(root, f, instruments).to_numpy()[: len(cal)]
    return cal, instruments, panels


def industry_index(codes_panel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted industry codes and the (T, N) int16 panel of their positions (-1 = none)."""
    finite = np.isfinite(codes_panel)
    codes = np.unique(codes_panel[finite]).astype(np.int64)
    idx = np.full(codes_panel.shape, -1, dtype=np.int16)
    idx[finite] = np.searchsorted(codes, codes_panel[finite].astype(np.int64))
    return codes, idx


def _industry_names(root: Path) -> dict:
    path = root / "meta" / "industries.json"
    return json.loads(path.read_text()) if path.exists() else {}


def build_risk(data_dir: str | Path, start: Any = None, end: Any = None, progress: bool = True,
               export_qlib: bool = True, *, out: str | Path | None = None,
               config: RiskConfig | dict | None = None, qlib_every: int = 1,
               benchmark_fields: bool = True) -> Path:
    """Build the risk store of a Qlib dataset and return its directory (default ``<data_dir>/risk``).

    ``export_qlib`` also writes Qlib's ``riskmodel_root`` under ``<store>/qlib`` (every
    ``qlib_every``-th date) and, with ``benchmark_fields``, the ``<index>_weight`` alias fields into
    the dataset that Qlib's ``EnhancedIndexingStrategy`` reads.  ``config``: a :class:`RiskConfig` or
    its keywords.  The new store replaces the old one only once complete, and only if its covariances and
specific risks pass the optimizer's input rules (:func:`.covariance.check_risk_panels`): a bad covariance
never reaches a backtest.
    """
    root = Path(data_dir).expanduser().resolve()
    cfg = config if isinstance(config, RiskConfig) else RiskConfig(**(config or {}))
    dest = Path(out).expanduser().resolve() if out is not None else root / STORE_DIR
    sweep_stale(dest)
    cal, instruments, p = read_inputs(root, end)
    ret, mcap, turnover = p["change"], p["mcap"], p["turnover"]
    codes, ind = industry_index(p["industry"])
    T, N = ret.shape

    bar = tqdm(total=N, desc="risk: descriptors", unit="stock", disable=not progress)
    desc = compute_descriptors(ret, mcap, turnover, cfg, tick=bar.update)
    bar.close()
    bar = tqdm(total=len(STYLES), desc="risk: exposures", unit="style", disable=not progress)
    styles = style_exposures(desc, mcap, ind, cfg, tick=bar.update)
    bar.close()
    del desc
    X = np.stack([styles.pop(s) for s in STYLES], axis=2).astype(np.float32)   # (T, N, S), stored values
    bar = tqdm(total=T - 1, desc="risk: regressions", unit="day", disable=not progress)
    reg = factor_returns(X, ind, mcap, ret, len(codes), tick=bar.update)
    bar.close()
    cov = factor_covariance(reg.factor_returns, cfg)
    spec = specific_risk(reg.specific_returns, np.isfinite(mcap), cfg)

    in_range = np.ones(T, dtype=bool)
    if start is not None:
        in_range &= cal >= pd.Timestamp(start)
    has_exp = np.isfinite(X).all(axis=2)
    exp_days = in_range & has_exp.any(axis=1)
    if not exp_days.any():
        raise ValueError(f"{root}: no date in [{start}, {end}] has style exposures; the windows need about "
                         f"{cfg.beta_min_obs}-{cfg.rstr_min_obs + cfg.rstr_lag} days of history "
                         f"(calendar {cal[0].date()}..{cal[-1].date()})")
    f_days = in_range & np.isfinite(reg.factor_returns).any(axis=1)
    cov_days = in_range & np.isfinite(cov).all(axis=(1, 2))
    factors = [COUNTRY] + [industry_factor(c) for c in codes] + list(STYLES)
    check_risk_panels(cal, cov, factors, spec, instruments, in_range)

    tmp = temp_store(dest)
    try:
        mask = has_exp & exp_days[:, None]
        cols = {s: X[:, :, j] for j, s in enumerate(STYLES)}
        cols["industry"] = np.where(ind >= 0, codes[np.maximum(ind, 0)], -1).astype(np.int32)
        write_table(long_table(cal, instruments, mask, cols), tmp / "exposures.parquet")
        write_table(pa.table({"datetime": cal.values[f_days],
                              **{f: reg.factor_returns[f_days, k] for k, f in enumerate(factors)}}),
                    tmp / "factor_returns.parquet")
        write_table(pa.table({"datetime": cal.values[f_days], "r2": reg.r2[f_days], "n_obs": reg.n_obs[f_days]}),
                    tmp / "regression.parquet")
        smask = in_range[:, None] & (np.isfinite(reg.specific_returns) | np.isfinite(spec))
        write_table(long_table(cal, instruments, smask, {"specific_return": reg.specific_returns,
                                                         "specific_risk": spec}), tmp / "specific.parquet")
        K = len(factors)
        c = cov[cov_days].reshape(-1, K)
        write_table(pa.table({"datetime": np.repeat(cal.values[cov_days], K),
                              "factor": np.tile(np.array(factors), int(cov_days.sum())),
                              **{f: c[:, k] for k, f in enumerate(factors)}}), tmp / "covariance.parquet")
        days = cal[exp_days]
        meta = {
            "version": 1, "qlib_ext": __version__, "dataset": str(root), "built_at": pd.Timestamp.now().isoformat(),
            "start": str(days[0].date()), "end": str(days[-1].date()),
            "covariance_start": str(cal[cov_days][0].date()) if cov_days.any() else None,
            "factors": factors, "styles": list(STYLES), "industries": [int(c) for c in codes],
            "industry_names": _industry_names(root), "config": cfg.as_dict(),
            "conventions": {
                "exposures": "known at the close of datetime; cap-weighted mean 0, equal-weighted std 1",
                "factor_returns": "realised on datetime: WLS of r(datetime) on exposures of the previous session",
                "returns": "$change (close over previous traded close); risk-free rate 0",
                "regression_weights": "sqrt(total mcap); industry constraint weights: total mcap",
                "covariance": "daily units, known at the close of datetime (returns up to datetime)",
                "specific_risk": "daily std, known at the close of datetime",
            },
        }
        write_json_atomic(tmp / "meta.json", meta, sort_keys=False)
        if export_qlib and cov_days.any():
            export_riskmodel_root(tmp, tmp / "qlib", every=qlib_every, progress=progress)
        swap_dir(tmp, dest)  # restores the previous store if the swap fails
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if export_qlib and benchmark_fields:
        write_benchmark_weight_fields(root)
    return dest
