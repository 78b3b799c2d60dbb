"""Add the fields an existing Qlib directory (e.g. Qlib's ``cn_data``) lacks, leaving every existing file as is.

The source rows are put on the target's own calendar (``load_daily(calendar=...)``).  For each stock
the target already has (a ``features/<symbol>/`` folder), each missing daily field is written over the
same calendar range as the stock's existing ``close`` (or first) bin, NaN where the source has no data.
Price-like fields are expressed in the target's adjustment: raw x the target's ``factor`` (volume:
raw / factor) when the target has one.  Missing instrument files (e.g. ``csi1000.txt``) are added for
the target's stocks, and missing index instruments are added whole.  Nothing in the target is
touched until everything is computed: new files are staged under ``<root>/.staging/import-<pid>/``
and then moved into place with ``os.replace`` (atomic per file); existing files are never opened for
writing.  Minute bars are not added in this mode.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..bin_io import bin_path, read_bin
from ..panel import read_calendar, read_instruments
from ..tempdirs import sweep
from .build import BLOCK
from .derive import ADJUSTED_FIELDS, stock_fields
from .indexes import INDEX_FIELDS
from .inputs import Inputs
from .report import ImportReport

#: Staging folder of one import run: ``<root>/.staging/import-<pid>`` (removed by the next run if it was killed).
STAGE_PREFIX = "import-"
#: A target close off the source's raw close x target factor by more than this counts as a mismatch.
MISMATCH_TOL = 5e-3


def _day_fields(folder: Path) -> set[str]:
    return {p.name[: -len(".day.bin")] for p in folder.glob("*.day.bin")}


def _extent(folder: Path, have: set[str]) -> tuple[int, int]:
    """(start, length) of the stock's existing ``close`` bin (else its first day bin), from the header and size."""
    ref = folder / f"{'close' if 'close' in have else sorted(have)[0]}.day.bin"
    return int(np.fromfile(ref, "<f4", count=1)[0]), ref.stat().st_size // 4 - 1


def _stage(stage: Path, inst: str, field: str, start: int, values: np.ndarray) -> None:
    path = bin_path(stage, inst, field)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.concatenate([np.array([start], "<f4"), np.asarray(values, "<f4")]).tofile(path)


def _target_series(root: Path, inst: str, field: str, start: int, n: int) -> np.ndarray:
    """An existing target field over [start, start + n), NaN where the bin does not reach."""
    s, vals = read_bin(bin_path(root, inst, field))
    out = np.full(n, np.nan)
    a, b = max(s, start), min(s + vals.size, start + n)
    if b > a:
        out[a - start:b - start] = vals[a - s:b - s]
    return out


def augment_dataset(root: Path, inp: Inputs, report: ImportReport, strict: bool, progress: bool) -> list[str]:
    """Stage and move in the missing files; returns the paths added (relative to ``root``)."""
    d, g = inp.daily, inp.daily.grid
    T, N = g.shape
    cal = read_calendar(root)
    off = int(cal.searchsorted(g.days[0]))
    sweep(root / ".staging", STAGE_PREFIX, "import staging folder")   # left by killed imports
    stage = root / ".staging" / f"{STAGE_PREFIX}{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    counts = {"stocks not in the target (skipped)": 0, "stock fields added": 0, "close mismatches": 0}
    stats: dict = {}
    _renormalise_weights(root, inp, off, report)
    try:
        bar = tqdm(total=N, desc="augment stocks", unit="stock", disable=not progress)
        for c0 in range(0, N, BLOCK):
            cols = slice(c0, min(N, c0 + BLOCK))
            fields = stock_fields(d, cols, inp.shares, inp.extra, stats)
            for jj, j in enumerate(range(cols.start, cols.stop)):
                _augment_stock(root, stage, g.stocks[j], {f: a[:, jj] for f, a in fields.items()}, off, T, counts)
            bar.update(cols.stop - c0)
        bar.close()
        report.lap("stock fields")
        for code, (a, bars) in inp.index_bars.items():
            _augment_index(root, stage, code, a + off, bars, cal, counts)
        _augment_instruments(root, stage, inp, counts)
        if not (root / "meta" / "industries.json").exists() and inp.industries:
            (stage / "meta").mkdir(parents=True, exist_ok=True)
            pd.Series(inp.industries).to_json(stage / "meta" / "industries.json", force_ascii=False, indent=1)
        if counts["close mismatches"]:
            report.warn("augment_mismatch", report.source, f"{counts['close mismatches']} stock-days where the target's "
                        f"close / factor differs from the source's raw close by more than {MISMATCH_TOL:.1%} (different data?)",
                        field="close", count=counts["close mismatches"])
        report.stats.update(counts)
        report.raise_if_failed(strict)
        report.write(stage / "meta" / "import_report.json")
        added = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
        for rel in added:                                 # rename only: existing files were never written
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, dest)
        report.stats["files added"] = len(added)
        if inp.minute_files:
            report.stats["minute files (not added in augment mode)"] = [p.name for p in inp.minute_files]
        report.lap("stage, move in")
        return added
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if (root / ".staging").is_dir() and not any((root / ".staging").iterdir()):
            (root / ".staging").rmdir()


def target_cells(root: Path, stocks: list[str], off: int, T: int) -> np.ndarray:
    """(T, N) bool: the source-grid cells an augment writes (the stock has a folder in the target and the day
    lies inside its existing ``close`` (or first) bin)."""
    out = np.zeros((T, len(stocks)), dtype=bool)
    for j, inst in enumerate(stocks):
        folder = root / "features" / inst.lower()
        have = _day_fields(folder) if folder.is_dir() else set()
        if have:
            start, n = _extent(folder, have)
            out[max(start - off, 0):max(min(start + n - off, T), 0), j] = True
    return out


def _renormalise_weights(root: Path, inp: Inputs, off: int, report: ImportReport) -> None:
    """Benchmark weights summing to 1 over the members the target holds: members whose stock (or day) is not in
    the target are dropped and the day's weights renormalised (a warning counts them), so the augmented
    dataset passes ``data check``'s weight sums."""
    weights = [k for k in inp.extra if k.startswith("w_")]
    if not weights:
        return
    g = inp.daily.grid
    cells = target_cells(root, g.stocks, off, len(g.days))
    for k in weights:
        w = inp.extra[k]
        dropped = np.nan_to_num(w) > 0
        dropped &= ~cells
        if not dropped.any():
            continue
        kept = np.where(cells, np.nan_to_num(w), 0.0)
        tot = kept.sum(axis=1, keepdims=True, dtype=np.float64)
        inp.extra[k] = np.where(np.isnan(w), np.nan, np.divide(kept, tot, out=np.zeros_like(kept, dtype=np.float64),
                                                              where=tot > 0)).astype(np.float32)
        t, j = np.nonzero(dropped)
        names = sorted({g.stocks[x] for x in j})
        report.warn("weight_renormalised", report.source, f"{k}: {len(names)} members are not in the target dataset "
                    f"(or not on those days): their weight on {len(set(t))} days is given to the other members "
                    "(renormalised to 1)", key=names[0], field=k, count=int(t.size), examples=names[1:6])


def _augment_stock(root: Path, stage: Path, inst: str, ours: dict[str, np.ndarray], off: int, T: int,
                   counts: dict) -> None:
    folder = root / "features" / inst.lower()
    if not folder.is_dir():
        counts["stocks not in the target (skipped)"] += 1
        return
    have = _day_fields(folder)
    new = [f for f in ours if f not in have]
    if not new or not have:
        return
    start, n = _extent(folder, have)
    t = np.arange(start, start + n) - off
    ok = (t >= 0) & (t < T)

    def on_target(x: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        out[ok] = x[t[ok]]
        return out

    our_factor = on_target(ours["factor"])
    tgt_factor = _target_series(root, inst, "factor", start, n) if "factor" in have else our_factor
    if "close" in have and "factor" in have:
        raw = on_target(ours["close"]) / our_factor
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(_target_series(root, inst, "close", start, n) / tgt_factor / raw - 1)
        counts["close mismatches"] += int((rel > MISMATCH_TOL).sum())
    for f in new:
        x = on_target(ours[f])
        if f in ADJUSTED_FIELDS:
            x = x / our_factor * tgt_factor
        elif f == "volume":
            x = x * our_factor / tgt_factor
        _stage(stage, inst, f, start, x)
        counts["stock fields added"] += 1


def _augment_index(root: Path, stage: Path, code: str, start: int, bars: dict[str, np.ndarray], cal: pd.DatetimeIndex,
                   counts: dict) -> None:
    folder = root / "features" / code.lower()
    have = _day_fields(folder) if folder.is_dir() else set()
    if have:
        s0, n = _extent(folder, have)
    else:
        s0, n = start, len(bars["close"])
    for f in INDEX_FIELDS:
        if f in have:
            continue
        x = np.full(n, np.nan)
        t = np.arange(s0, s0 + n) - start
        ok = (t >= 0) & (t < len(bars[f]))
        x[ok] = bars[f][t[ok]]
        _stage(stage, code, f, s0, x)
        counts[f"index fields added ({code})"] = counts.get(f"index fields added ({code})", 0) + 1


def _augment_instruments(root: Path, stage: Path, inp: Inputs, counts: dict) -> None:
    known = set(read_instruments(root, "all")["instrument"]) if (root / "instruments" / "all.txt").exists() else set()
    for market, spans in inp.member_spans.items():
        if (root / "instruments" / f"{market}.txt").exists():
            continue
        sp = spans[spans["symbol"].isin(known)]
        path = stage / "instruments" / f"{market}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        sp.assign(start=sp["start"].dt.strftime("%Y-%m-%d"), end=sp["end"].dt.strftime("%Y-%m-%d")).sort_values(
            ["symbol", "start"]).to_csv(path, sep="\t", header=False, index=False)
        counts[f"instruments/{market}.txt"] = f"added ({sp['symbol'].nunique()} stocks)"
