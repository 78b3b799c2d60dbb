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


#: Bytes of a CSV looked at to detect its encoding (a BOM, UTF-16 without one, text that is not UTF-8).
SNIFF_BYTES = 1 << 20
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig", "UTF-8 with BOM"), (b"\xff\xfe", "utf-16", "UTF-16 LE (BOM)"),
         (b"\xfe\xff", "utf-16", "UTF-16 BE (BOM)"))
ENCODING_FIX = "pass --encoding <name> (import_dataset(encoding=...)), e.g. --encoding gbk for Chinese Windows exports"


def csv_encoding(path: Path, report: ImportReport) -> str:
    """The encoding to read a CSV with: ``--encoding`` when given, else a BOM's (UTF-8, UTF-16), UTF-16 without
    a BOM (NUL bytes in every other position), else UTF-8 when the first MiB decodes as UTF-8; otherwise an
    error naming the file, the first undecodable byte and the ``--encoding`` fix."""
    given = report.options.get("encoding")
    if given:
        return str(given)
    if path.name.lower().endswith(".gz"):
        return "utf-8"
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    for bom, enc, what in _BOMS:
        if head.startswith(bom):
            report.units[f"{path.name} encoding"] = f"{what} (detected)"
            return enc
    if len(head) >= 4 and head[1:200:2].count(0) > 0.8 * len(head[1:200:2]):
        report.units[f"{path.name} encoding"] = "UTF-16 LE without BOM (detected)"
        return "utf-16-le"
    if len(head) >= 4 and head[0:200:2].count(0) > 0.8 * len(head[0:200:2]):
        report.units[f"{path.name} encoding"] = "UTF-16 BE without BOM (detected)"
        return "utf-16-be"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:                 # not just a character cut at the end of the sniffed bytes
            line = head[:exc.start].count(b"\n") + 1
            report.error("encoding", path.name, f"the file is not UTF-8: byte 0x{head[exc.start]:02x} on line {line} "
                         f"(byte {exc.start}) does not decode; {ENCODING_FIX}", row=line - 1 if line > 1 else None)
            raise ImportValidationError(report) from exc
    return "utf-8"


def _csv_header(path: Path, report: ImportReport) -> list[str]:
    """The CSV header's names; a one-name header holding ``;``, a tab or ``|`` is an error naming the separator."""
    cols = list(pd.read_csv(path, nrows=0, encoding=csv_encoding(path, report)).columns)
    if len(cols) == 1:
        for sep, what in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
            if sep in cols[0]:
                decimal = ", decimal=','" if sep == ";" else ""
                text = "{" + ", ".join(f"'{c.strip()}': str" for c in cols[0].split(sep)
                                       if c.strip().lower() in _TEXT) + "}"
                report.error("separator", path.name, f"the header is one column ({cols[0][:60]!r}): the file is "
                             f"separated by {what}, not by commas; re-save it comma-separated (decimal point), "
                             f"e.g. python -c \"import pandas as pd; pd.read_csv('{path.name}', sep={sep!r}{decimal}, "
                             f"dtype={text}).to_csv('{path.name}', index=False)\"")
                raise ImportValidationError(report)
    return cols


def source_columns(path: Path, report: ImportReport) -> list[str]:
    """Column names of a file (schema of a Parquet, header of a CSV), exactly as stored."""
    try:
        if _suffix(path) in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return _csv_header(path, report)
    except ImportValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a "cannot read" error naming the file
        hint = f"; {ENCODING_FIX}" if isinstance(exc, UnicodeError) else ""
        report.error("read", path.name, f"cannot read the file: {type(exc).__name__}: {exc}{hint}")
        raise ImportValidationError(report) from exc


def resolve_columns(path: Path, wanted: Sequence[str], optional: Sequence[str], report: ImportReport
                    ) -> dict[str, str]:
    """canonical -> source column for the wanted (required) and optional columns; missing required = error."""
    have = source_columns(path, report)
    padded = [c for c in have if isinstance(c, str) and c != c.strip()]
    if padded and f"{path.name}: header names stripped" not in report.stats:      # said once per file
        report.stats[f"{path.name}: header names stripped"] = [repr(c) for c in padded]
    lower = {str(c).strip().lower(): c for c in have}
    out: dict[str, str] = {}
    for canon in (*wanted, *optional):
        for cand in ALIASES.get(canon, (canon,)):
            if cand in lower and lower[cand] not in out.values():
                out[canon] = lower[cand]
                break
    for canon in wanted:
        if canon not in out:
            report.error("missing_column", path.name, f"required column {canon!r} is missing "
                         f"(accepted names: {', '.join(ALIASES.get(canon, (canon,)))}; found: "
                         f"{', '.join(repr(c) if c != str(c).strip() else str(c) for c in have)})", field=canon)
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
            batches = (b[src_cols] for b in pd.read_csv(path, chunksize=batch_rows, encoding=csv_encoding(path, report),
                                                        dtype=dict.fromkeys([c for c in src_cols if rename[c] in _TEXT], str)))
        for frame in batches:
            yield row0, frame.rename(columns=rename)
            row0 += len(frame)
    except ImportValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt/malformed file is reported with its name
        msg = " ".join(str(exc).split())
        line = re.search(r"line (\d+)", msg) if isinstance(exc, pd.errors.ParserError) else None
        row = int(line.group(1)) - 1 if line else row0 + 1          # CSV line 1 is the header
        hint = f"; {ENCODING_FIX}" if isinstance(exc, UnicodeError) else ""
        report.error("read", path.name, f"cannot read the file: {type(exc).__name__}: {msg}{hint}", row=row)
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
