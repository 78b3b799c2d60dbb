"""Adding daily fields to an existing Qlib dataset: staged, resumable, swapped in file by file.

Builders that derive fields from a dataset (minute factors ``mf_*``, risk exposures, ...) work in
chunks.  Each finished chunk is saved under ``<root>/.staging/<job>/`` with a marker, so an
interrupted build resumes from the last finished chunk; :meth:`FieldStager.commit` assembles each
field's series and moves it into ``features/`` with ``os.replace`` (atomic per file), and only
then removes the staging area.  Existing fields of the dataset are never touched except the ones
being (re)built.  The staging area of a killed build is what the next run resumes from; the
half-written files of a killed run (a chunk being saved, ``features/<inst>/.tmp-<pid>-...`` of a
commit) carry its pid and are removed by the next stager (:mod:`.tempdirs`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .bin_io import bin_path
from .panel import read_calendar
from .tempdirs import sweep, temp_path

CHUNK_TMP = ".chunk.tmp-"   # <stage>/.chunk.tmp-<pid>-<token>: a chunk being saved
BIN_TMP = ".tmp-"           # features/<inst>/.tmp-<pid>-<token>: a bin being committed


class FieldStager:
    """Stage chunks of (calendar x instrument) values for new daily fields, then commit them."""

    def __init__(self, root: str | Path, job: str, fields: Iterable[str], freq: str = "day"):
        self.root = Path(root)
        self.freq = freq
        self.fields = [f.lower() for f in fields]
        self.calendar = read_calendar(self.root, freq)
        self.stage = self.root / ".staging" / job
        self.stage.mkdir(parents=True, exist_ok=True)
        manifest = self.stage / "manifest.json"
        spec = {"fields": self.fields, "freq": freq, "n_calendar": len(self.calendar)}
        if manifest.exists() and json.loads(manifest.read_text()) != spec:
            shutil.rmtree(self.stage)               # a different job under the same name: start over
            self.stage.mkdir(parents=True)
        manifest.write_text(json.dumps(spec))
        sweep(self.stage, CHUNK_TMP, "staged chunk temp file")

    def done(self, chunk: str) -> bool:
        """True when ``chunk`` was saved by an earlier (possibly interrupted) run."""
        return (self.stage / f"{chunk}.done").exists()

    def save(self, chunk: str, values: dict[str, pd.DataFrame]) -> None:
        """Save one chunk: per field a frame indexed by calendar dates, columns = instruments."""
        missing = set(self.fields) - {k.lower() for k in values}
        if missing:
            raise ValueError(f"chunk {chunk}: fields {sorted(missing)} missing")
        tmp = temp_path(self.stage, CHUNK_TMP)
        frames = {k.lower(): v for k, v in values.items()}
        first = frames[self.fields[0]]
        pos = self.calendar.get_indexer(pd.DatetimeIndex(first.index))
        if (pos < 0).any():
            bad = pd.DatetimeIndex(first.index)[pos < 0][0]
            raise ValueError(f"chunk {chunk}: date {bad.date()} is not in calendars/{self.freq}.txt")
        arrays = {f: frames[f].reindex(index=first.index, columns=first.columns).to_numpy(np.float32) for f in self.fields}
        with open(tmp, "wb") as fh:
            np.savez(fh, pos=pos, instruments=np.array(first.columns, dtype=str), **arrays)
        os.replace(tmp, self.stage / f"{chunk}.npz")
        (self.stage / f"{chunk}.done").touch()

    def commit(self, spans: pd.DataFrame | None = None) -> list[str]:
        """Write every staged field into ``features/`` and drop the staging area.

        ``spans`` (instrument, start, end) clips each series to the instrument's listing span;
        by default a series runs from its first to its last finite value.  Returns the fields written.
        """
        T = len(self.calendar)
        parts = sorted(self.stage.glob("*.npz"))
        span_of = {}
        if spans is not None:
            for inst, grp in spans.groupby("instrument"):
                a = self.calendar.searchsorted(grp["start"].min())
                b = self.calendar.searchsorted(grp["end"].max(), side="right") - 1
                span_of[inst] = (a, b)
        names: list[str] = []
        for part in parts:
            with np.load(part) as z:
                names.extend(str(x) for x in z["instruments"])
        names = sorted(set(names))
        col = {name: j for j, name in enumerate(names)}
        for name in names:                        # bins half-written by a killed commit
            sweep(self.root / "features" / name.lower(), BIN_TMP, "field temp file")
        for f in self.fields:                     # one field at a time: memory = one field's panel
            panel = np.full((T, len(names)), np.nan, dtype=np.float32)
            for part in parts:
                with np.load(part) as z:
                    cols = np.array([col[str(x)] for x in z["instruments"]], dtype=np.int64)
                    panel[np.ix_(z["pos"], cols)] = z[f]
            for inst, j in col.items():
                arr = panel[:, j]
                if inst in span_of:
                    a, b = span_of[inst]
                else:
                    ok = np.flatnonzero(np.isfinite(arr))
                    if not ok.size:
                        continue
                    a, b = ok[0], ok[-1]
                if b < a:
                    continue
                dest = bin_path(self.root, inst, f, self.freq)
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = temp_path(dest.parent, BIN_TMP)
                np.concatenate([np.array([a], dtype="<f4"), arr[a : b + 1].astype("<f4")]).tofile(tmp)
                os.replace(tmp, dest)
        shutil.rmtree(self.stage)
        staging = self.root / ".staging"
        if staging.exists() and not any(staging.iterdir()):
            staging.rmdir()
        return self.fields
