"""Benchmark: build time, peak RSS and stock-days per second of the synthetic market presets.

    python bench/synth.py [--quick] [--presets tiny,default,full] [--out DIR]
    python bench/synth.py --presets tiny,tiny+mechanisms      # issue 21's facts on a tiny-sized build

Each preset is built in its own subprocess (so its peak RSS is its own), then the stylized facts of
the last preset built (or default) are printed beside the real-market targets, with the planted
alpha's style correlations and the index path facts (quarterly returns 2021Q1-2024Q1 and the 2024Q1
NAVs against the real closes, yearly 2017-2020 against the preset's targets) with their tolerances, and,
for a market built with ``mechanisms:`` (default, full, or ``tiny+mechanisms``: tiny with default's
``mechanisms:`` section), issue 21's factor-level facts (crash / rebound decile spreads and the size /
liquidity paths against the real fixture, the unwind, the crowding peak, the composite's tails, size
correlations and IC / ICIR) with their targets and tolerances.  Targets (issue #2): default in
under 5 minutes, full under 15 minutes and 4 GiB peak RSS on 2 cores.  No peer exists for this
job (Qlib's dump_bin is not in its wheel), so `ratios` compares against the targets instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

CHILD = """
import json, resource, sys, time
from qlib_ext.data.synth import build_market
from qlib_ext.data.panel import read_panel
preset = sys.argv[1]
if preset.endswith("+mechanisms"):  # a preset with default's mechanisms: section (issue 21)
    from qlib_ext.data.synth import load_market_config
    preset = load_market_config(preset.split("+")[0], mechanisms=load_market_config("default")["mechanisms"])
t0 = time.time()
out = build_market(preset, sys.argv[2], progress=False)
secs = time.time() - t0
stock_days = int(read_panel(out, "paused").notna().sum().sum())
print(json.dumps({"seconds": secs, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stock_days": stock_days}))
"""
TARGET_S = {"default": 300, "full": 900}


def run(preset: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, preset, str(out)], capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["stock_days_per_s"] = res["stock_days"] / res["seconds"]
    res["disk_mib"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny preset only (under a minute)")
    ap.add_argument("--presets", default=None)
    ap.add_argument("--out", default=None, help="where to build (default: a temp dir, removed after)")
    args = ap.parse_args()
    presets = (args.presets or ("tiny" if args.quick else "tiny,default,full")).split(",")
    tmp = tempfile.TemporaryDirectory(prefix="bench_synth_")
    base = Path(args.out or tmp.name)
    rows = {}
    for p in presets:
        t = time.time()
        rows[p] = run(p, base / p)
        print(f"built {p} in {time.time() - t:.0f} s", file=sys.stderr)
    table = pd.DataFrame(rows).T[["seconds", "peak_rss_mib", "stock_days", "stock_days_per_s", "disk_mib"]]
    print(table.round(1).to_string())
    from qlib_ext.data.synth.facts import (
        MECHANISM_TARGETS,
        alpha_style_facts,
        mechanism_facts,
        path_facts,
        stylized_facts,
    )

    facts_of = "default" if "default" in rows else presets[-1]
    print(f"\nstylized facts of '{facts_of}' vs the real fixture (alpha_corr_*: the report's figures 16-17):")
    facts = pd.concat([stylized_facts(base / facts_of), alpha_style_facts(base / facts_of)])
    print(facts.round(4).to_string())
    path = path_facts(base / facts_of)
    print(f"\nindex path of '{facts_of}' vs the real closes (q:, nav:) and the preset's targets (y:, order:):")
    print(path.round(4).to_string())
    print(f"path facts inside tolerance: {int(path['ok'].sum())}/{len(path)}")
    figures = {f"{p}_{k}": round(float(v), 2) for p, r in rows.items() for k, v in r.items()}
    mech_of = [p for p in rows if (base / p / "meta" / "planted_alpha_daily.csv").exists()]
    if mech_of:
        mech = mechanism_facts(base / mech_of[-1])
        mech["source"] = [MECHANISM_TARGETS[k][2] if k in MECHANISM_TARGETS else "real fixture (spread_targets.csv)"
                          for k in mech.index]
        print(f"\nissue 21's factor-level facts of '{mech_of[-1]}' (real = target):")
        print(mech.round(4).to_string())
        print(f"mechanism facts inside tolerance: {int(mech['ok'].sum())}/{len(mech)}")
        figures["mechanism_facts_ok_share"] = round(float(mech["ok"].mean()), 4)
    figures["path_facts_ok_share"] = round(float(path["ok"].mean()), 4) if len(path) else None
    figures["path_max_abs_quarter_error"] = round(float(
        (path.filter(like="q:", axis=0)["dataset"] - path.filter(like="q:", axis=0)["real"]).abs().max()), 4)
    ratios = {f"target_{p}_s": round(TARGET_S[p] / rows[p]["seconds"], 2) for p in rows if p in TARGET_S}
    print(json.dumps({"bench": "synth", "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
