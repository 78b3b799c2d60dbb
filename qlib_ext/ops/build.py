"""Materialise the minute-factor library as daily Qlib fields ``mf_*`` of a dataset.

``build_minute_factors`` reads a minute source chunk by chunk, computes the library with the batch
engine and stages each chunk with :class:`~qlib_ext.data.fields.FieldStager`: an interrupted build
resumes from its last finished chunk, and fields are swapped into ``features/`` atomically per file.
Handlers then read ``$mf_rskew`` like any field, or their N-day means from
:func:`~qlib_ext.ops.library.mean_expressions`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.fields import FieldStager
from ..data.panel import read_instruments, read_panel
from .batch import compute_chunk, plan_chunks
from .library import resolve
from .sources import MinuteSource, open_source

STOCK_DAYS_PER_CHUNK = 20_000     # bars of one chunk: 20k x 240 x 6 float32 = 110 MiB (the stream: x2 in float64)
JOB_PREFIX = "minute_factors-"


def _session_range(source: MinuteSource, start, end) -> tuple[int, int]:
    days = source.days
    lo = int(source.spans["first"].min()) if len(source.spans) else 0
    hi = int(source.spans["last"].max()) + 1 if len(source.spans) else 0
    if start is not None:
        lo = max(lo, int(days.searchsorted(pd.Timestamp(start))))
    if end is not None:
        hi = min(hi, int(days.searchsorted(pd.Timestamp(end), side="right")))
    return lo, hi


def _job_name(source: MinuteSource, d0: int, d1: int, spc: int, dpc: int, fields: list[str], dtype: str) -> str:
    spec = json.dumps([source.kind, str(getattr(source, "path", "")), d0, d1, spc, dpc, fields, dtype])
    return JOB_PREFIX + hashlib.sha1(spec.encode()).hexdigest()[:10]


def _drop_stale_jobs(root: Path, job: str) -> None:
    """A build with other parameters leaves chunks that must not mix with this one's."""
    for old in (root / ".staging").glob(JOB_PREFIX + "*"):
        if old.name != job:
            shutil.rmtree(old, ignore_errors=True)


def _stage_kept_values(stager: FieldStager, root: Path, fields: list[str], d0: int, d1: int) -> None:
    """Stage existing ``mf_*`` values outside [d0, d1) so a partial rebuild keeps them."""
    if stager.done("keep") or not (root / "features").exists():
        return
    insts = sorted({p.parent.name.upper() for f in fields for p in (root / "features").glob(f"*/{f}.day.bin")})
    if not insts:
        return
    outside = np.ones(len(stager.calendar), dtype=bool)
    outside[d0:d1] = False
    if not outside.any():
        return
    frames = {f: read_panel(root, f, insts).loc[outside] for f in fields}
    stager.save("keep", frames)


def _run_chunk(args: tuple) -> tuple[str, dict[str, pd.DataFrame]]:
    """Worker: compute one chunk (its own source, opened once per process); the parent stages it."""
    root, source_arg, chunk, names, device, dtype = args
    if _WORKER.get("key") != (root, source_arg):
        _WORKER.update(key=(root, source_arg), source=open_source(root, source_arg))
    return chunk.key, compute_chunk(_WORKER["source"], chunk, names, device, dtype)


_WORKER: dict = {}


def build_minute_factors(data_dir: str | Path, source: str = "auto", start=None, end=None,
                         stocks_per_chunk: int | None = None, days_per_chunk: int | None = None,
                         device: str = "auto", progress: bool = True, names: Sequence[str] | None = None,
                         workers: int = 1, dtype: str = "float32") -> list[str]:
    """Compute the library (or ``names``) into daily fields ``mf_*`` of ``data_dir``; returns the fields.

    ``source``: ``auto`` (the synthetic stream when ``meta/market.yaml`` exists, else the 1-minute
    bins), ``stream``, ``bins`` or a tushare-like minute file/directory.  ``start``/``end`` limit the
    sessions computed; existing ``mf_*`` values outside them are kept.  Chunk sizes default to about
    20,000 stock-days (the stream: all stocks of a block of sessions, since it draws a session's
    random numbers for the whole market at once).  ``workers`` > 1 computes chunks in that many
    processes (CPU only).  Re-running after an interruption resumes from the last staged chunk.
    """
    root = Path(data_dir)
    fields = [f.field for f in resolve(names)]
    src = open_source(root, source)
    d0, d1 = _session_range(src, start, end)
    if d1 <= d0:
        raise ValueError(f"{root}: no session with minute data between start={start} and end={end} "
                         f"(source {src.kind})")
    n_active = int(((src.spans["first"] < d1) & (src.spans["last"] >= d0)).sum())
    spc = stocks_per_chunk or (max(n_active, 1) if src.kind == "stream" else 500)
    dpc = days_per_chunk or max(1, STOCK_DAYS_PER_CHUNK // min(spc, max(n_active, 1)))
    chunks = plan_chunks(src.spans, d0, d1, spc, dpc)
    job = _job_name(src, d0, d1, spc, dpc, fields, dtype)
    _drop_stale_jobs(root, job)
    stager = FieldStager(root, job, fields)
    _stage_kept_values(stager, root, fields, d0, d1)
    todo = [c for c in chunks if not stager.done(c.key)]
    total, left = sum(c.stock_days for c in chunks), sum(c.stock_days for c in todo)
    bar = tqdm(total=total, initial=total - left, unit="stock-day", unit_scale=True, disable=not progress,
               desc="minute factors")
    names_l = [f.name for f in resolve(names)]
    if workers > 1 and todo:
        size = {c.key: c.stock_days for c in todo}
        args = [(str(root), source, c, names_l, device, dtype) for c in todo]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for key, frames in pool.map(_run_chunk, args):
                stager.save(key, frames)
                bar.update(size[key])
    else:
        for chunk in todo:
            stager.save(chunk.key, compute_chunk(src, chunk, names_l, device, dtype))
            bar.update(chunk.stock_days)
    bar.close()
    # each series spans the stock's listing, like its other fields (when the dataset lists its stocks)
    spans = read_instruments(root) if (root / "instruments" / "all.txt").exists() else None
    return stager.commit(spans)

