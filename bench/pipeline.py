"""Bench: the main job (`qlib-ext run`) stage by stage -- wall time, CPU time and peak RSS of each stage.

    python bench/pipeline.py --quick                 # tiny preset (builds the tiny market under --work)
    python bench/pipeline.py --preset default --data data/qlib_ext_default
    python bench/pipeline.py --preset full

The dataset is shallow-copied (folders copied, files symlinked) so the job's writes (minute-factor
fields, risk store) never touch the source dataset.  Peak RSS per stage is sampled every 0.2 s over
this process and its children (psutil); targets (issue 13): default <= 30 min and < 8 GiB on 2 cores,
tiny <= 5 min, full <= 2 h and < 12 GiB.  Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

TARGETS = {"tiny": (300, 8 * 1024), "default": (1800, 8 * 1024), "full": (7200, 12 * 1024)}


class RssSampler:
    """Peak RSS (MiB, this process + children) per named stage, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.stage, self.peaks = every, "setup", {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> float:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)
            time.sleep(self.every)

    def log(self, line: str) -> None:
        m = re.match(r"\[(\w+)\] running", line)
        if m:
            self.stage = m.group(1)
        print(line, flush=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the tiny preset")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--data", default=None, help="an existing dataset (shallow-copied); default: build the preset's")
    ap.add_argument("--work", default=None, help="work folder (default: a temp folder, removed)")
    ap.add_argument("--profile", default="fast")
    args = ap.parse_args()
    preset = "tiny" if args.quick else args.preset

    from qlib_ext.pipeline.job import run_job

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_pipeline_"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if args.data and not data.exists():
        shutil.copytree(args.data, data, copy_function=os.symlink)
    t0 = time.perf_counter()
    with RssSampler() as rss:
        res = run_job(preset, data=data, out=work / "out", profile=args.profile, log=rss.log)
    wall = time.perf_counter() - t0
    rows = []
    for name, r in res["stages"].items():
        rows.append({"stage": name, "seconds": round(r.seconds, 1),
                     "cpu_seconds": None if r.cpu_seconds is None else round(r.cpu_seconds, 1), "cached": r.cached,
                     "peak_rss_mib": round(rss.peaks.get(name, float("nan")), 0)})
    peak = max(rss.peaks.values()) if rss.peaks else float("nan")
    print(f"\n{'stage':<22}{'wall s':>10}{'CPU s':>10}{'peak RSS MiB':>14}")
    for row in rows:
        cpu = float("nan") if row["cpu_seconds"] is None else row["cpu_seconds"]
        print(f"{row['stage']:<22}{row['seconds']:>10.1f}{cpu:>10.1f}{row['peak_rss_mib']:>14.0f}"
              + ("  (cached)" if row["cached"] else ""))
    limit_s, limit_mb = TARGETS.get(preset, (float("nan"), float("nan")))
    cpu_total = sum(r["cpu_seconds"] or 0.0 for r in rows if not r["cached"])
    print(f"{'total':<22}{wall:>10.1f}{cpu_total:>10.1f}{peak:>14.0f}   target: {limit_s:.0f} s, {limit_mb:.0f} MiB "
          f"(peer: the issue's budget); measured on a shared, loaded machine: pessimistic")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"preset": preset, "profile": args.profile, "total_seconds": round(wall, 1),
               "total_cpu_seconds": round(cpu_total, 1), "peak_rss_mib": round(peak, 0), "target_seconds": limit_s,
               "target_rss_mib": limit_mb, "within_target": bool(wall <= limit_s and peak <= limit_mb), "stages": rows}
    print(json.dumps({"bench": "pipeline", "figures": figures,
                      "ratios": {"budget": round(limit_s / wall, 3) if wall else None}}))


if __name__ == "__main__":
    main()
