"""Finding and reading the source files: tushare-like names, CSV or Parquet, streamed in row batches.

A source directory holds files named by their tushare stem (``daily.parquet``, ``adj_factor.csv``,
``shares.parquet`` or ``daily_basic.csv``, ``industry``, ``index_daily``, ``index_member``,
``index_weight``, ``st``, and ``minute_*`` files or a ``minute/`` folder).  Columns are matched by
name with a few aliases; codes become Qlib symbols by :mod:`qlib_ext.data.codes` and dates
``datetime64``.  Row numbers in messages are 1-based data rows (the CSV header is not counted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..codes import INDEX_ALIASES, qlib_codes  # noqa: F401  (re-exported: importers use them from here)
from .report import ImportReport, ImportValidationError

SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".txt")
#: role -> accepted file stems, in order of preference.
ROLES: dict[str, tuple[str, ...]] = {
    "daily": ("daily",),
    "adj_factor": ("adj_factor",),
    "shares": ("shares", "daily_basic", "bak_basic"),
    "industry": ("industry", "index_member_all"),
    "index_daily": ("index_daily",),
    "index_member": ("index_member",),
    "index_weight": ("index_weight",),
    "st": ("st", "stock_st"),
}
#: canonical column -> accepted source names (first found wins).
ALIASES: dict[str, tuple[str, ...]] = {
    "ts_code": ("ts_code", "code", "symbol", "instrument"),
    "trade_date": ("trade_date", "date", "datetime", "cal_date"),
    "trade_time": ("trade_time", "datetime", "time"),
    "vol": ("vol", "volume"),
    "adj_factor": ("adj_factor", "factor"),
    "float_share": ("float_share", "float_shares", "circ_share"),
    "total_share": ("total_share", "total_shares"),
    "index_code": ("index_code",),
    "con_code": ("con_code", "ts_code"),
    "in_date": ("in_date", "start_date"),
    "out_date": ("out_date", "end_date"),
    "l1_code": ("l1_code", "industry_code"),
    "l1_name": ("l1_name", "industry_name"),
    "is_st": ("is_st", "st"),
}


def discover(source: str | Path, report: ImportReport) -> dict[str, list[Path]]:
    """Map each role to its file(s); ``minute`` gets every ``minute*`` file and the ``minute/`` folder's files."""
    root = Path(source).expanduser()
    if not root.is_dir():
        report.error("files", str(root), "source is not a directory")
        raise ImportValidationError(report)
    files = sorted(p for p in root.iterdir() if p.is_file() and _suffix(p))
    if (root / "minute").is_dir():
        files += sorted(p for p in (root / "minute").iterdir() if p.is_file() and _suffix(p))
    found: dict[str, list[Path]] = {"minute": []}
    ignored = []
    for p in files:
        stem = p.name[: -len(_suffix(p))].lower()
        if p.parent.name == "minute" or stem == "minute" or stem.startswith("minute_"):
            found["minute"].append(p)
            continue
        role = next((r for r, stems in ROLES.items() if stem in stems), None)
        if role is None:
            ignored.append(p.name)
        elif role in found:
            report.error("files", p.name, f"two files for {role!r}: {found[role][0].name} and {p.name}; keep one")
        else:
            found[role] = [p]
    if ignored:
        report.stats["ignored files"] = ignored
    if "daily" not in found:
        report.error("files", str(root), "no daily file (daily.parquet or daily.csv) in the source directory")
    report.raise_if_failed()
    report.files = {r: ", ".join(p.name for p in ps) for r, ps in found.items() if ps}
    return found


def _suffix(p: Path) -> str:
    name = p.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), "")


def source_columns(path: Path, report: ImportReport) -> list[str]:
    """Column names of a file (schema of a Parquet, header of a CSV)."""
    try:
        if _suffix(path) in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a "cannot read" error naming the file
        report.error("read", path.name, f"cannot read the file: {type(exc).__name__}: {exc}")
        raise ImportValidationError(report) from exc


def resolve_columns(path: Path, wanted: Sequence[str], optional: Sequence[str], report: ImportReport
                    ) -> dict[str, str]:
    """canonical -> source column for the wanted (required) and optional columns; missing required = error."""
    have = source_columns(path, report)
    lower = {c.lower(): c for c in have}
    out: dict[str, str] = {}
    for canon in (*wanted, *optional):
        for cand in ALIASES.get(canon, (canon,)):
            if cand in lower and lower[cand] not in out.values():
                out[canon] = lower[cand]
                break
    for canon in wanted:
        if canon not in out:
            report.error("missing_column", path.name, f"required column {canon!r} is missing "
                         f"(accepted names: {', '.join(ALIASES.get(canon, (canon,)))}; found: {', '.join(have)})",
                         field=canon)
    report.raise_if_failed()
    return out


def iter_frames(path: Path, columns: dict[str, str], report: ImportReport, batch_rows: int = 1 << 18
                ) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield (first 0-based data row, frame with canonical column names) in batches of ``batch_rows``."""
    rename = {src: canon for canon, src in columns.items()}
    src_cols = list(rename)
    row0 = 0
    try:
        if _suffix(path) in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            batches = (b.to_pandas() for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=src_cols))
        else:
            # no usecols: with it pandas silently accepts rows with too many fields
            batches = (b[src_cols] for b in pd.read_csv(path, chunksize=batch_rows, dtype=dict.fromkeys(
                [c for c in src_cols if rename[c] in _TEXT], str)))
        for frame in batches:
            yield row0, frame.rename(columns=rename)
            row0 += len(frame)
    except ImportValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt/malformed file is reported with its name
        msg = " ".join(str(exc).split())
        line = re.search(r"line (\d+)", msg) if isinstance(exc, pd.errors.ParserError) else None
        row = int(line.group(1)) - 1 if line else row0 + 1          # CSV line 1 is the header
        report.error("read", path.name, f"cannot read the file: {type(exc).__name__}: {msg}", row=row)
        raise ImportValidationError(report) from exc


_TEXT = {"ts_code", "trade_date", "trade_time", "index_code", "con_code", "in_date", "out_date", "l1_code",
         "l1_name", "l1_name_en", "ind_code", "sw_version", "name", "source"}


def read_table(path: Path, wanted: Sequence[str], optional: Sequence[str], report: ImportReport) -> pd.DataFrame:
    """A whole (small) file with canonical column names; column ``_row`` is the 1-based data row."""
    cols = resolve_columns(path, wanted, optional, report)
    parts = [f.assign(_row=np.arange(r0 + 1, r0 + 1 + len(f))) for r0, f in iter_frames(path, cols, report)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*cols, "_row"])


class LazyKeys:
    """Series-like ``keys.iloc[i]`` / ``keys[i]`` row labels, built only for the rows a message names."""

    def __init__(self, fn):
        self.fn, self.iloc = fn, self

    def __getitem__(self, i: int) -> str:
        return self.fn(int(i))


def parse_dates(values: pd.Series) -> np.ndarray:
    """``YYYYMMDD`` (string or int), ``YYYY-MM-DD`` or datetimes -> datetime64[ns]; NaT where unparseable.

    Parsed once per distinct value.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.DatetimeIndex(values).tz_localize(None).normalize().as_unit("ns").to_numpy()
    pos, uniq = pd.factorize(values.astype("string"), use_na_sentinel=True)
    s = pd.Series(uniq, dtype="string").str.strip().str.split(" ").str[0].str.replace("-", "", regex=False)
    s = s.where(s.str.fullmatch(r"\d{8}(\.0)?").fillna(False)).str.slice(0, 8)
    parsed = pd.to_datetime(s, format="%Y%m%d", errors="coerce").to_numpy(dtype="datetime64[ns]")
    return np.append(parsed, np.datetime64("NaT", "ns"))[np.where(pos >= 0, pos, len(uniq))]


def numeric(frame: pd.DataFrame, cols: Sequence[str], file: str, report: ImportReport,
            key: pd.Series | None = None, row0: int = 0) -> None:
    """Coerce ``cols`` to float64 in place; text that is not a number is an error naming row and field."""
    for c in cols:
        if c not in frame or pd.api.types.is_float_dtype(frame[c]):
            continue
        raw = frame[c]
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = np.flatnonzero((num.isna() & raw.notna()).to_numpy())
        if bad.size:
            i = int(bad[0])
            report.error("type", file, f"{c} {raw.iloc[i]!r} is not a number", row=row0 + i + 1,
                         key=None if key is None else str(key.iloc[i]), field=c, count=bad.size)
        frame[c] = num
