"""Qlib's binary dataset layout, written atomically and read back.

Layout (what ``qlib.data.D`` reads with the default file storage)::

    calendars/day.txt, calendars/1min.txt      one timestamp a line
    instruments/<market>.txt                    ``SYMBOL<TAB>start<TAB>end``, one line per span
    features/<symbol lower>/<field>.<freq>.bin  float32 little-endian; value 0 is the calendar index
                                                of the first row, then one value per calendar step

The writer builds everything in a temporary directory beside the target and renames it into place
on :meth:`DatasetWriter.commit`, so a failure never leaves a half-written dataset: the previous
dataset at the target stays untouched until the new one is complete and verified.  The temp dir
(``.<name>.tmp-<pid>-...``) and the backup of the swap (``.<name>.old-<pid>-...``) carry the writer's
pid, so the next writer of the same target removes those a killed run left (:mod:`.tempdirs`).

**Never replace what we did not write.**  The target must be missing, an empty folder, or a dataset
written by this writer: :data:`MARKER` (``meta/qlib_ext.json``, written on every commit), or, for
datasets of earlier versions that predate the marker, ``calendars/day.txt`` together with the
``meta/dataset.json`` that our synthetic market and importer have always written.  Anything else (a
folder of CSVs, notes, a regular file) is refused naming the path and what is there
(:func:`check_target`).  One writer per target at a time: a pid lock ``.<name>.lock`` beside it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .tempdirs import make_temp_dir, sweep

FREQS = ("day", "1min")
#: The marker our writer puts in every dataset it commits (writer, package version, a build token).
MARKER = "meta/qlib_ext.json"
#: Written by the synthetic market and the importer of every version: recognises datasets built before MARKER.
LEGACY_MARKER = "meta/dataset.json"


def has_dataset(root: str | Path) -> bool:
    """Whether ``root`` holds a Qlib dataset (a day calendar and the ``all`` instrument file)."""
    root = Path(root)
    return (root / "calendars" / "day.txt").is_file() and (root / "instruments" / "all.txt").is_file()


def is_our_dataset(root: str | Path) -> bool:
    """Whether ``root`` is a dataset written by qlib-ext (:data:`MARKER`, or :data:`LEGACY_MARKER` + calendar)."""
    root = Path(root)
    if (root / MARKER).is_file():
        return True
    return (root / LEGACY_MARKER).is_file() and (root / "calendars" / "day.txt").is_file()


def read_marker(root: str | Path) -> dict | None:
    """The dataset's :data:`MARKER` contents, None when it has none (a legacy or foreign dataset)."""
    try:
        return json.loads((Path(root) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def check_target(target: str | Path) -> None:
    """Refuse (``FileExistsError`` naming it and what it holds) a target that is neither absent, empty, nor ours."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise FileExistsError(f"{target} is a file, not a dataset folder: refusing to replace it "
                              "(choose a new or empty folder for the dataset)")
    entries = sorted(p.name for p in target.iterdir())
    if not entries or is_our_dataset(target):
        return
    shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
    raise FileExistsError(f"{target} holds {shown} and is not a dataset written by qlib-ext (no {MARKER}): "
                          "refusing to replace it; choose a new or empty folder for the dataset "
                          "(or an existing dataset with --data to use it as it is)")


def bin_path(root: str | Path, instrument: str, field: str, freq: str = "day") -> Path:
    """Path of one feature file in Qlib's layout (Qlib lower-cases instrument and field)."""
    return Path(root) / "features" / instrument.lower() / f"{field.lower()}.{freq}.bin"


def read_bin(path: str | Path) -> tuple[int, np.ndarray]:
    """Read a Qlib ``.bin``: returns (start calendar index, float32 values)."""
    path = Path(path)
    size = path.stat().st_size
    if size % 4:
        raise ValueError(f"{path}: size {size} bytes is not a whole number of float32 values (truncated bin?)")
    raw = np.fromfile(path, dtype="<f4")
    if raw.size == 0:
        raise ValueError(f"{path}: empty bin file (no start-index header)")
    start = raw[0]
    if not np.isfinite(start) or start < 0 or start != int(start):
        raise ValueError(f"{path}: header {start!r} is not a calendar index")
    return int(start), raw[1:]


def read_bin_into(out: np.ndarray, path: str | Path, i0: int) -> None:
    """Fill float32 ``out`` with calendar positions [i0, i0 + len(out)) of a bin; untouched where it has none.

    Reads only the bytes needed (no whole-file read), so per-block reads of large panels stay cheap.
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size % 4 or size < 4:
            raise ValueError(f"{path}: size {size} bytes is not a whole number of float32 values (truncated bin?)")
        start = int(np.frombuffer(fh.read(4), dtype="<f4")[0])
        a, b = max(i0, start), min(i0 + out.size, start + (size - 4) // 4)
        if a < b:
            fh.seek(4 * (1 + a - start))
            fh.readinto(memoryview(out[a - i0 : b - i0]).cast("B"))


def format_calendar(times: Iterable, freq: str) -> list[str]:
    """Calendar lines: dates for ``day``, ``YYYY-MM-DD HH:MM:SS`` for minute data."""
    idx = pd.DatetimeIndex(list(times))
    fmt = "%Y-%m-%d" if freq == "day" else "%Y-%m-%d %H:%M:%S"
    return list(idx.strftime(fmt))


class DatasetWriter:
    """Writes one Qlib dataset into a temp dir next to ``target``; ``commit`` swaps it in atomically.

    Use as a context manager: an exception inside the block discards the temp dir and leaves the
    target as it was.  Features may be written whole (:meth:`write_feature`) or appended in
    contiguous blocks (:meth:`append_feature`) so that large datasets stream in bounded memory.
    """

    def __init__(self, target: str | Path):
        from ..files import PidLock

        self.target = Path(target).expanduser().resolve()
        self.target.parent.mkdir(parents=True, exist_ok=True)
        name = self.target.name
        self._lock = PidLock(self.target.parent, what="dataset build", name=f".{name}.lock").acquire()
        try:
            sweep(self.target.parent, f".{name}.old-", "dataset backup", restore_to=self.target)
            sweep(self.target.parent, f".{name}.tmp-", "dataset temp folder")
            check_target(self.target)
            self.tmp = make_temp_dir(self.target.parent, f".{name}.tmp-")
        except BaseException:
            self._lock.release()
            raise
        self._calendars: dict[str, int] = {}
        # (instrument, field, freq) -> (start index, number of values written)
        self._extent: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._done = False
        self._features = str(self.tmp / "features")
        self._folders: set[str] = set()

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._done:
            self.commit()
        elif not self._done:
            self.abort()

    def abort(self) -> None:
        """Discard everything written so far."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._done = True
        self._lock.release()

    # -- content ---------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """Where files are being written (the temp dir until commit)."""
        return self.tmp

    def write_calendar(self, times: Sequence, freq: str = "day") -> None:
        """Write ``calendars/<freq>.txt``; times must be strictly increasing."""
        lines = format_calendar(times, freq)
        if len(lines) != len(set(lines)) or lines != sorted(lines):
            raise ValueError(f"calendar {freq}: timestamps must be strictly increasing and unique")
        path = self.tmp / "calendars" / f"{freq}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        self._calendars[freq] = len(lines)

    def write_instruments(self, market: str, spans: pd.DataFrame | Iterable[tuple]) -> None:
        """Write ``instruments/<market>.txt`` from rows (symbol, start, end); one line per span."""
        df = pd.DataFrame(spans, columns=["symbol", "start", "end"]) if not isinstance(spans, pd.DataFrame) else spans
        df = df.copy()
        df.columns = ["symbol", "start", "end"]
        df["start"] = pd.to_datetime(df["start"]).dt.strftime("%Y-%m-%d")
        df["end"] = pd.to_datetime(df["end"]).dt.strftime("%Y-%m-%d")
        bad = df[df["start"] > df["end"]]
        if len(bad):
            raise ValueError(f"instruments/{market}.txt: span ends before it starts for {bad.iloc[0]['symbol']}")
        path = self.tmp / "instruments" / f"{market.lower()}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.sort_values(["symbol", "start"]).to_csv(path, sep="\t", header=False, index=False)

    def write_feature(self, instrument: str, field: str, start_index: int, values: np.ndarray, freq: str = "day") -> None:
        """Write a whole feature series starting at calendar index ``start_index``."""
        key = (instrument.upper(), field.lower(), freq)
        if key in self._extent:
            raise ValueError(f"{instrument}/{field}.{freq}: already written")
        self._write(key, start_index, values, mode="wb")

    def append_feature(self, instrument: str, field: str, start_index: int, values: np.ndarray, freq: str = "day") -> None:
        """Append a contiguous block; the first call fixes the series' start index."""
        key = (instrument.upper(), field.lower(), freq)
        if key not in self._extent:
            self._write(key, start_index, values, mode="wb")
            return
        start, n = self._extent[key]
        if start_index != start + n:
            raise ValueError(
                f"{instrument}/{field}.{freq}: block starts at calendar index {start_index}, "
                f"expected {start + n} (blocks must be contiguous)"
            )
        self._write(key, start_index, values, mode="ab")

    def _write(self, key: tuple[str, str, str], start_index: int, values: np.ndarray, mode: str) -> None:
        instrument, field, freq = key
        if freq not in FREQS:
            raise ValueError(f"unknown freq {freq!r}; expected one of {FREQS}")
        vals = np.ascontiguousarray(values, dtype="<f4").ravel()
        folder = os.path.join(self._features, instrument.lower())
        if mode == "wb":
            if folder not in self._folders:
                os.makedirs(folder, exist_ok=True)
                self._folders.add(folder)
            payload = np.concatenate([np.array([start_index], dtype="<f4"), vals])
            self._extent[key] = (int(start_index), 0)
        else:
            payload = vals
        with open(os.path.join(folder, f"{field}.{freq}.bin"), mode) as fh:
            fh.write(payload.tobytes())
        start, n = self._extent[key]
        self._extent[key] = (start, n + vals.size)

    def write_json(self, name: str, obj) -> None:
        """A side file (e.g. ``meta/industry_names.json``) stored with the dataset."""
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=str))

    def copy_in(self, src: str | Path, name: str) -> None:
        """Copy a file (e.g. the generator's config) into the dataset."""
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)

    # -- finish ----------------------------------------------------------------------------
    def verify(self) -> None:
        """Read back every bin's header and size and check it fits its calendar."""
        for (inst, field, freq), (start, n) in self._extent.items():
            if freq not in self._calendars:
                raise ValueError(f"{inst}/{field}.{freq}: no calendars/{freq}.txt was written")
            path = bin_path(self.tmp, inst, field, freq)
            got_start, vals = read_bin(path)
            if got_start != start or vals.size != n:
                raise ValueError(f"{path}: read back start={got_start} n={vals.size}, wrote start={start} n={n}")
            if start + n > self._calendars[freq]:
                raise ValueError(
                    f"{path}: covers calendar indices {start}..{start + n - 1} but calendars/{freq}.txt "
                    f"has {self._calendars[freq]} entries"
                )

    def commit(self) -> Path:
        """Verify, then move the temp dir onto the target (the old dataset is removed only after)."""
        if self._done:
            raise RuntimeError("writer already committed or aborted")
        try:
            self.verify()
        except Exception:
            self.abort()
            raise
        from .. import __version__
        from ..files import swap_dir

        try:
            check_target(self.target)  # again: something may have appeared there while we wrote
            self.write_json(MARKER, {"writer": "qlib_ext.data.bin_io.DatasetWriter", "version": __version__,
                                     "build": self.tmp.name.rsplit("-", 1)[-1],
                                     "written": pd.Timestamp.now().strftime("%Y-%m-%dT%H:%M:%S")})
            swap_dir(self.tmp, self.target)             # the previous dataset is put back if the swap fails
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._lock.release()
        return self.target
