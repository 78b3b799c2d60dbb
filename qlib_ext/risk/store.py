"""The risk store: parquet files under ``<data_dir>/risk/`` that the strategy and the recorders load.

Layout (every file written to a temp name and renamed; :func:`qlib_ext.files.swap_dir` swaps a whole
new store in, so readers never see a half-written one; :func:`temp_store` names the build folder after its
process and first removes the ones a killed build left)::

    meta.json               config, factor names, industries, dates, conventions
    exposures.parquet       datetime, instrument, <styles> (float32), industry (int code); the exposures
                            known at the close of ``datetime``
    factor_returns.parquet  datetime x [country, ind_<code>..., <styles>]: returns realised on ``datetime``
    regression.parquet      datetime x [r2, n_obs]
    specific.parquet        datetime, instrument, specific_return (realised on datetime), specific_risk
                            (daily std known at the close of datetime)
    covariance.parquet      (datetime, factor) x factor: daily factor covariance known at the close
    qlib/YYYYMMDD/...       Qlib's ``riskmodel_root`` (see :mod:`.qlib_export`)

A loader accepts the dataset directory (the store is its ``risk/``) or the store directory itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.tempdirs import make_temp_dir, sweep
from ..files import atomic_path
from .config import COUNTRY, industry_factor

STORE_DIR = "risk"
FILES = ("meta.json", "exposures.parquet", "factor_returns.parquet", "regression.parquet",
         "specific.parquet", "covariance.parquet")


#: How to make a missing store: the one wording every reader uses (``{root}``: the dataset).
BUILD_HINT = "run `qlib-ext risk build --data {root}` first (or give `risk_store: DIR`)"


def default_store(data: str | Path, risk_store: str | Path | None = None) -> Path:
    """The risk store a reader of dataset ``data`` uses: ``risk_store`` when given, else ``<data>/risk``."""
    return Path(risk_store if risk_store is not None else Path(data) / STORE_DIR).expanduser()


def missing_store(path: str | Path, data: str | Path) -> FileNotFoundError:
    """The error for an absent store at ``path`` of dataset ``data``, saying how to build it."""
    return FileNotFoundError(f"no risk store at {path} (meta.json missing): {BUILD_HINT.format(root=data)}")


def store_path(path: str | Path) -> Path:
    """The store directory: ``path`` itself if it holds ``meta.json``, else ``path/risk``."""
    path = Path(path)
    if (path / "meta.json").exists():
        return path
    store = path / STORE_DIR
    if not (store / "meta.json").exists():
        raise FileNotFoundError(f"no risk store at {path} or {store} (meta.json missing): "
                                f"{BUILD_HINT.format(root=path)}")
    return store


def write_table(table: pa.Table, path: Path) -> None:
    """Write a parquet file atomically (temp file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=1_000_000)


def long_table(dates: pd.DatetimeIndex, instruments: list[str], mask: np.ndarray,
               columns: dict[str, np.ndarray]) -> pa.Table:
    """(datetime, instrument, columns...) rows where ``mask`` (T, N) is true, sorted by date then instrument."""
    ti, ni = np.nonzero(mask)
    inst = pa.DictionaryArray.from_arrays(pa.array(ni.astype(np.int32)), pa.array(list(instruments)))
    cols = {"datetime": pa.array(dates.values[ti]), "instrument": inst}
    cols.update({k: pa.array(v[ti, ni]) for k, v in columns.items()})
    return pa.table(cols)


def sweep_stale(dest: Path) -> list[Path]:
    """Remove the temp folders (and restore or remove the backups) that killed builds of ``dest`` left."""
    dest = Path(dest)
    return (sweep(dest.parent, f".{dest.name}.old-", "risk store backup", restore_to=dest)
            + sweep(dest.parent, f".{dest.name}.tmp-", "risk store temp folder"))


def temp_store(dest: Path) -> Path:
    """A new temp directory beside ``dest`` (``.<name>.tmp-<pid>-...``), after :func:`sweep_stale`."""
    sweep_stale(dest)
    return make_temp_dir(Path(dest).parent, f".{Path(dest).name}.tmp-")


# ---------------------------------------------------------------------------- loaders
def load_meta(path: str | Path) -> dict:
    """The store's ``meta.json`` (factor names, industries, config, date range, conventions)."""
    return json.loads((store_path(path) / "meta.json").read_text())


def _filters(start: Any, end: Any) -> list | None:
    f = []
    if start is not None:
        f.append(("datetime", ">=", pd.Timestamp(start)))
    if end is not None:
        f.append(("datetime", "<=", pd.Timestamp(end)))
    return f or None


def _read(path: str | Path, name: str, start: Any = None, end: Any = None,
          columns: list[str] | None = None) -> pd.DataFrame:
    file = store_path(path) / name
    df = pq.read_table(file, columns=columns, filters=_filters(start, end)).to_pandas()
    if "instrument" in df:
        df["instrument"] = df["instrument"].astype(str)
    return df


def load_exposures(data_dir: str | Path, start: Any = None, end: Any = None,
                   industry_dummies: bool = False) -> pd.DataFrame:
    """Exposures on (datetime, instrument): the styles and ``industry`` (code), known at the close.

    ``industry_dummies=True`` replaces ``industry`` by the columns ``country`` (1) and ``ind_<code>``
    (0/1) in the order of ``load_meta(...)["factors"]``, i.e. the regression's design matrix.
    """
    df = _read(data_dir, "exposures.parquet", start, end).set_index(["datetime", "instrument"])
    if industry_dummies:
        meta = load_meta(data_dir)
        codes = np.asarray(meta["industries"])
        pos = np.searchsorted(codes, df["industry"].to_numpy())
        dummies = np.zeros((len(df), codes.size), dtype=np.float32)
        dummies[np.arange(len(df)), pos] = 1.0
        front = pd.DataFrame(dummies, index=df.index, columns=[industry_factor(c) for c in codes])
        front.insert(0, COUNTRY, np.float32(1.0))
        df = pd.concat([front, df.drop(columns="industry")], axis=1)[meta["factors"]]
    return df


def load_factor_returns(data_dir: str | Path, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Daily factor returns (datetime x factor), each row realised on its date."""
    return _read(data_dir, "factor_returns.parquet", start, end).set_index("datetime")


def load_regression_stats(data_dir: str | Path, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Per-day weighted R^2 and number of stocks of the factor-return regression."""
    return _read(data_dir, "regression.parquet", start, end).set_index("datetime")


def load_specific_returns(data_dir: str | Path, start: Any = None, end: Any = None) -> pd.Series:
    """Specific returns on (datetime, instrument), realised on datetime (only regression stocks)."""
    df = _read(data_dir, "specific.parquet", start, end).set_index(["datetime", "instrument"])
    return df["specific_return"].dropna()


def load_specific_risk(data_dir: str | Path, date: Any = None, start: Any = None, end: Any = None) -> pd.Series:
    """Specific volatility (daily std): for one ``date`` indexed by instrument, else on (datetime, instrument)."""
    if date is not None:
        start = end = date
    df = _read(data_dir, "specific.parquet", start, end).set_index(["datetime", "instrument"])
    s = df["specific_risk"].dropna()
    if date is not None:
        if s.empty:
            raise KeyError(f"no specific risk for {pd.Timestamp(date).date()} in {store_path(data_dir)}")
        s = s.droplevel("datetime")
    return s


def load_covariance_panel(data_dir: str | Path, start: Any = None, end: Any = None,
                          columns: list[str] | None = None) -> pd.DataFrame:
    """Factor covariances of a date range on (datetime, factor) x factor (daily units)."""
    return _read(data_dir, "covariance.parquet", start, end, columns).set_index(["datetime", "factor"])


def load_covariance(data_dir: str | Path, date: Any) -> pd.DataFrame:
    """Factor covariance (factor x factor, daily units) of the last store date on or before ``date``."""
    ts = pd.Timestamp(date)
    df = _read(data_dir, "covariance.parquet", ts - pd.Timedelta(days=31), ts)   # the usual case: a recent date
    if df.empty:
        df = _read(data_dir, "covariance.parquet", None, ts)
    if df.empty:
        meta = load_meta(data_dir)
        raise KeyError(f"no factor covariance on or before {ts.date()} in {store_path(data_dir)} "
                       f"(covariance starts {meta.get('covariance_start')})")
    last = df["datetime"].max()
    return df[df["datetime"] == last].drop(columns="datetime").set_index("factor").rename_axis(None)
