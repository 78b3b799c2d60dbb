"""Benchmark: the importer at the ``full`` preset's size against the dataset writer on the same data.

    python bench/import.py [--stocks 5000] [--start 2010-01-04] [--end 2024-03-29] [--quick] [--fixture]
                           [--synth DIR] [--keep DIR]

Case: a synthetic market of the ``full`` preset (5,000 stocks, 2010-01-04 .. 2024-03-29 by default; the
size is set with ``--stocks``/``--start``/``--end``, index bands scaled with the universe) is built, exported
to tushare-like Parquet by :func:`qlib_ext.data.importers.export.export_tushare` (tushare units: lots,
kCNY, 10^4 shares; CSI300/500/1000 members, CSI300 weight snapshots every 21 sessions, 3 stocks' minute
bars) and imported with :func:`~qlib_ext.data.importers.import_dataset`: wall time and peak RSS.

Peer: :class:`~qlib_ext.data.bin_io.DatasetWriter` writing the same bins (every day and minute field of
the imported dataset, its calendars and instrument files), read back one stock at a time; its figure
is the write and commit time only (reads excluded) and the peak RSS of that process.  The import does
everything the writer does plus reading, checking, unit detection and deriving 20+ fields, so the
ratio says what the checks and derivations cost over the floor of writing the bins.  A plain pandas
read + pivot of the value files is printed beside them for scale.  ``--fixture`` adds the real fixture
(``../shared/realdata``, 1.76 M daily rows).  ``--quick``: 200 stocks, 2022-2024 (under a minute).
Each measured run is its own subprocess; peak RSS is its ``VmHWM`` (``ru_maxrss`` would carry the parent's
peak across ``exec``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
FULL = {"stocks": 5000, "start": "2010-01-04", "end": "2024-03-29"}
QUICK = {"stocks": 200, "start": "2022-01-04", "end": "2024-03-29"}

OURS = """
import json, sys, time
def peak():
    return next(int(ln.split()[1]) for ln in open('/proc/self/status') if ln.startswith('VmHWM')) / 1024
from qlib_ext.data.importers import import_dataset
t0 = time.time()
rep = import_dataset(sys.argv[1], sys.argv[2], progress=False)
print(json.dumps({"seconds": time.time() - t0, "peak_rss_mib": peak(),
                  "daily_rows": rep.stats["daily rows"], "warnings": len(rep.warnings), "timings": rep.timings}))
"""
WRITER = """
import json, sys, time
def peak():
    return next(int(ln.split()[1]) for ln in open('/proc/self/status') if ln.startswith('VmHWM')) / 1024
from pathlib import Path
from qlib_ext.data.bin_io import DatasetWriter, read_bin
from qlib_ext.data.panel import read_calendar, read_instruments
src, out = Path(sys.argv[1]), Path(sys.argv[2])
t0, write_s, n = time.time(), 0.0, 0
w = DatasetWriter(out)
for freq in ("day", "1min"):
    if (src / "calendars" / f"{freq}.txt").exists():
        w.write_calendar(read_calendar(src, freq), freq)
for p in sorted((src / "instruments").glob("*.txt")):
    sp = read_instruments(src, p.stem)
    w.write_instruments(p.stem, sp.rename(columns={"instrument": "symbol"})[["symbol", "start", "end"]])
for folder in sorted((src / "features").iterdir()):
    bins = [(f.name.split(".")[0], f.name.split(".")[1], *read_bin(f)) for f in sorted(folder.glob("*.bin"))]
    t = time.perf_counter()
    for field, freq, start, vals in bins:
        w.write_feature(folder.name.upper(), field, start, vals, freq)
    write_s += time.perf_counter() - t
    n += len(bins)
t = time.perf_counter()
w.commit()
write_s += time.perf_counter() - t
print(json.dumps({"seconds": write_s, "wall_s": time.time() - t0, "bins": n,
                  "peak_rss_mib": peak()}))
"""
PEER = """
import json, sys, time
def peak():
    return next(int(ln.split()[1]) for ln in open('/proc/self/status') if ln.startswith('VmHWM')) / 1024
from pathlib import Path
import pandas as pd
t0 = time.time()
src = Path(sys.argv[1])
def read(stem):
    for suf in (".parquet", ".csv"):
        if (src / (stem + suf)).exists():
            return pd.read_parquet(src / (stem + suf)) if suf == ".parquet" else pd.read_csv(src / (stem + suf), dtype=str)
    return None
n = 0
for stem in ("daily", "adj_factor", "shares", "daily_basic"):
    df = read(stem)
    if df is None:
        continue
    n += len(df)
    values = [c for c in df.columns if c not in ("ts_code", "trade_date", "source")]
    wide = {c: df.pivot(index="trade_date", columns="ts_code", values=c) for c in values}
    del df, wide
print(json.dumps({"seconds": time.time() - t0, "peak_rss_mib": peak(),
                  "rows": n}))
"""


def _child(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rows(src: Path) -> int:
    """Data rows of every source file (Parquet metadata / CSV lines)."""
    import pyarrow.parquet as pq

    n = 0
    for p in src.iterdir():
        if p.suffix == ".parquet":
            n += pq.ParquetFile(p).metadata.num_rows
        elif p.suffix == ".csv" and p.name != "glitches.csv":
            n += sum(1 for _ in p.open()) - 1
    return n


def build_synth(stocks: int, start: str, end: str, out: Path) -> Path:
    """The ``full`` preset at the given size (index bands scaled with the universe)."""
    from qlib_ext.data.synth import build_market, load_market_config

    scale = stocks / FULL["stocks"]
    base = load_market_config("full")
    bands = {k: max(2, round(v * scale)) for k, v in base["index_bands"].items()}
    cfg = load_market_config("full", n_stocks=stocks, start=start, end=end, index_bands=bands)
    return build_market(cfg, out, progress=False)


def measure(name: str, src: Path, work: Path) -> dict:
    """Import ``src`` (ours), then rewrite the imported bins with the writer (peer), then the pandas scale."""
    out = work / f"{name}_out"
    ours = _child(OURS, str(src), str(out))
    writer = _child(WRITER, str(out), str(work / f"{name}_writer"))
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / f"{name}_writer", ignore_errors=True)
    pandas_ = _child(PEER, str(src))
    rows = _rows(src)
    print(f"{name}: import {ours['seconds']:.1f} s ({ours['timings']}), writer {writer['seconds']:.1f} s "
          f"({writer['bins']} bins), pandas read+pivot {pandas_['seconds']:.1f} s", file=sys.stderr)
    return {"daily_rows": ours["daily_rows"], "all_rows": rows, "seconds": ours["seconds"],
            "daily_rows_per_s": ours["daily_rows"] / ours["seconds"], "peak_rss_mib": ours["peak_rss_mib"],
            "writer_seconds": writer["seconds"], "writer_peak_rss_mib": writer["peak_rss_mib"], "bins": writer["bins"],
            "pandas_seconds": pandas_["seconds"], "pandas_peak_rss_mib": pandas_["peak_rss_mib"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stocks", type=int, default=None, help=f"universe size (default {FULL['stocks']}, the full preset)")
    ap.add_argument("--start", default=None, help=f"first session (default {FULL['start']})")
    ap.add_argument("--end", default=None, help=f"last session (default {FULL['end']})")
    ap.add_argument("--quick", action="store_true", help="200 stocks, 2022-2024 (under a minute)")
    ap.add_argument("--fixture", action="store_true", help="also the real fixture (../shared/realdata)")
    ap.add_argument("--synth", default=None, help="an existing synthetic dataset to export instead of building one")
    ap.add_argument("--keep", default=None, help="work directory to keep (default: a temp dir, removed)")
    args = ap.parse_args()
    size = dict(QUICK if args.quick else FULL)
    size.update({k: v for k, v in (("stocks", args.stocks), ("start", args.start), ("end", args.end)) if v is not None})
    tmp = tempfile.TemporaryDirectory(prefix="bench_import_")
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    t = time.time()
    synth = Path(args.synth) if args.synth else build_synth(size["stocks"], size["start"], size["end"], work / "synth")
    build_s = time.time() - t
    from qlib_ext.data.importers.export import export_tushare

    t = time.time()
    export_tushare(synth, work / "export", weight_indexes=("csi300",))
    export_s = time.time() - t
    name = f"synth_{size['stocks']}x{size['start'][:4]}-{size['end'][:4]}" if not args.synth else f"synth_{synth.name}"
    print(f"built {synth} in {build_s:.0f} s, exported in {export_s:.0f} s", file=sys.stderr)
    rows[name] = measure(name, work / "export", work) | {"export_s": export_s}
    if args.fixture and (REALDATA / "daily.parquet").exists():
        rows["fixture"] = measure("fixture", REALDATA, work)
    table = pd.DataFrame(rows).T
    print(table.round(1).to_string())
    figures = {f"{case}_{k}": round(float(v), 1) for case, r in rows.items() for k, v in r.items()}
    ratios = {f"writer_over_import_{case}": round(r["writer_seconds"] / r["seconds"], 3) for case, r in rows.items()}
    print(json.dumps({"bench": "import", "size": size, "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
