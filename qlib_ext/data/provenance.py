"""What a dataset is, in one line: synthetic (preset and seed) or imported (path and source).

Read from the dataset's ``meta/`` folder, written by the synthetic market
(:mod:`qlib_ext.data.synth`: ``meta/dataset.json`` with ``kind: synthetic``, ``preset``, ``seed``) and
the importer (:mod:`qlib_ext.data.importers`: ``meta/dataset.json`` with ``kind: imported`` and
``source``; an augmented Qlib dataset has only ``meta/import_report.json`` with ``source`` and
``mode: augment``).  A dataset with neither is described by its path alone -- never as synthetic.
Captions and titles use :func:`describe_dataset`; caches use :func:`dataset_identity`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATASET_META = "meta/dataset.json"
IMPORT_REPORT = "meta/import_report.json"
#: files whose stats change whenever a dataset is (re)written in place (our writers rewrite them all)
IDENTITY_PROBES = ("calendars/day.txt", "instruments/all.txt", DATASET_META)


@dataclass(frozen=True)
class Provenance:
    """Where a dataset comes from; ``kind`` is ``synthetic``, ``imported``, ``augmented`` or ``unknown``."""

    path: Path
    kind: str
    preset: str | None = None
    seed: int | None = None
    source: str | None = None
    start: str | None = None
    end: str | None = None
    n_instruments: int | None = None

    @property
    def synthetic(self) -> bool:
        """True only for a dataset our synthetic market wrote."""
        return self.kind == "synthetic"

    def describe(self) -> str:
        """One line for captions and titles (see :func:`describe_dataset`)."""
        span = f"{self.start}..{self.end}" if self.start and self.end else ""
        size = f"{self.n_instruments} instruments" if self.n_instruments else ""
        extent = f" ({', '.join(x for x in (span, size) if x)})" if span or size else ""
        if self.kind == "synthetic":
            return f"synthetic market, preset {self.preset}, seed {self.seed}{extent}"
        if self.kind == "imported":
            return f"imported dataset {self.path} from {self.source}{extent}"
        if self.kind == "augmented":
            return f"Qlib dataset {self.path}, augmented from {self.source}{extent}"
        return f"Qlib dataset {self.path} (origin not recorded in meta/){extent}"


def _json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def read_provenance(data: str | Path) -> Provenance:
    """The :class:`Provenance` of dataset directory ``data`` from its ``meta/`` files."""
    root = Path(data).expanduser().resolve()
    meta = _json(root / DATASET_META)
    extent = {"start": meta.get("start"), "end": meta.get("end"), "n_instruments": meta.get("n_instruments")}
    kind = meta.get("kind")
    if kind == "synthetic":
        seed = meta.get("seed")
        return Provenance(root, "synthetic", preset=str(meta.get("preset", "?")),
                          seed=int(seed) if seed is not None else None, **extent)
    if kind == "imported":
        return Provenance(root, "imported", source=str(meta.get("source", "unknown source")), **extent)
    report = _json(root / IMPORT_REPORT)
    if report.get("source"):
        return Provenance(root, "augmented", source=str(report["source"]), **extent)
    return Provenance(root, "unknown", **extent)


def describe_dataset(data: str | Path) -> str:
    """What the data are, in one line: ``synthetic market, preset tiny, seed 20240425 (...)`` or
    ``imported dataset <path> from <source> (...)``; a dataset without our ``meta/`` is named by its path."""
    return read_provenance(data).describe()


def dataset_identity(data: str | Path, *instruments: str) -> tuple:
    """A cheap key that changes when dataset ``data`` is rewritten: (inode, size, mtime ns) of its
    calendar, ``instruments/all.txt``, ``meta/dataset.json`` and each ``instruments/<name>.txt`` given
    (absent files count as None).  For in-process caches keyed by path."""
    root = Path(data)
    probes = (*IDENTITY_PROBES, *(f"instruments/{name}.txt" for name in instruments))
    out = []
    for rel in probes:
        try:
            st = (root / rel).stat()
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)
