"""Benchmark: import throughput (rows per second) and peak RSS of ``qlib_ext.data.importers.import_dataset``.

    python bench/import.py [--quick] [--synth DIR] [--keep DIR]

Cases: the real fixture (``../shared/realdata``, 1.76 M daily rows) and a tushare-format export of the
``full`` synthetic preset (about 5,000 stocks x 14 years; /tmp/bench_synth/full when it exists, else
/tmp/default), written by ``qlib_ext.data.importers.export.export_tushare`` (tushare units: lots,
kCNY, 10^4 shares; CSI300 weight snapshots every 21 sessions).  ``--quick``: the fixture only.
Each run is its own subprocess, so peak RSS is its own.  Peer: a plain pandas read of the same
files plus a pivot of every value column to (date x code) frames -- the minimum any importer does
before validation, derived fields and writing 20+ bins per stock, so ratios below 1 are expected.
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
SYNTH = (Path("/tmp/bench_synth/full"), Path("/tmp/default"))

OURS = """
import json, resource, sys, time
from qlib_ext.data.importers import import_dataset
t0 = time.time()
rep = import_dataset(sys.argv[1], sys.argv[2], progress=False)
print(json.dumps({"seconds": time.time() - t0, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "daily_rows": rep.stats["daily rows"], "warnings": len(rep.warnings), "timings": rep.timings}))
"""
PEER = """
import json, resource, sys, time
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
print(json.dumps({"seconds": time.time() - t0, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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


def measure(name: str, src: Path, work: Path) -> dict:
    out = work / f"{name}_out"
    ours = _child(OURS, str(src), str(out))
    shutil.rmtree(out, ignore_errors=True)
    peer = _child(PEER, str(src))
    rows = _rows(src)
    print(f"{name}: ours {ours['seconds']:.1f} s ({ours['timings']}), pandas read+pivot {peer['seconds']:.1f} s",
          file=sys.stderr)
    return {"daily_rows": ours["daily_rows"], "all_rows": rows, "seconds": ours["seconds"],
            "daily_rows_per_s": ours["daily_rows"] / ours["seconds"], "all_rows_per_s": rows / ours["seconds"],
            "peak_rss_mib": ours["peak_rss_mib"], "peer_seconds": peer["seconds"], "peer_peak_rss_mib": peer["peak_rss_mib"],
            "write_s": ours["timings"].get("write stocks", 0.0) + ours["timings"].get("verify, commit", 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the real fixture only (under a minute)")
    ap.add_argument("--synth", default=None, help="synthetic dataset to export (default: full preset, else default)")
    ap.add_argument("--keep", default=None, help="work directory to keep (default: a temp dir, removed)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench_import_")
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    if (REALDATA / "daily.parquet").exists():
        rows["fixture"] = measure("fixture", REALDATA, work)
    if not args.quick:
        synth = Path(args.synth) if args.synth else next((p for p in SYNTH if (p / "calendars" / "day.txt").exists()), None)
        if synth is not None:
            from qlib_ext.data.importers.export import export_tushare

            t = time.time()
            export_tushare(synth, work / "export")
            export_s = time.time() - t
            name = f"synth_{synth.name}"
            print(f"exported {synth} in {export_s:.0f} s", file=sys.stderr)
            rows[name] = measure(name, work / "export", work) | {"export_s": export_s}
    if not rows:
        sys.exit("nothing to measure: no real fixture and no synthetic dataset")
    table = pd.DataFrame(rows).T
    print(table.round(1).to_string())
    figures = {f"{case}_{k}": round(float(v), 1) for case, r in rows.items() for k, v in r.items()}
    ratios = {f"pandas_read_pivot_{case}": round(r["peer_seconds"] / r["seconds"], 3) for case, r in rows.items()}
    print(json.dumps({"bench": "import", "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
