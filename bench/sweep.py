"""Bench: the sweep runner -- cells per minute with 1 and 2 workers, parallel efficiency, one cell's time split.

    python bench/sweep.py --quick                    # tiny market, a reversal signal, 4 cells of 2023-07..2024-03
    python bench/sweep.py --data data/qlib_ext_default --signal runs/default/stages/signal/pred.pkl [--cells 4]

* Throughput: the same cells on a Dask LocalCluster of 1 and of 2 worker processes, each logging to a
  local ``mlflow server``; cells per minute counts the cells' dispatch time (the tracking server's
  start-up is reported apart).  Both start cold (imports, each worker's dataset cache), so a handful of
  cells understates a long sweep's rate; an in-process serial run is no baseline (it inherits a warm
  process and a 2-thread BLAS).  Efficiency = rate(2) / (2 rate(1));
  floor 0.8 on 2 free cores (this machine is shared: expect less when others load it).
* Split: one cell under cProfile in a warm process (a first cell pays the imports), by the cumulative
  time of its parts: data loading (the exchange quote), the strategy's inputs, the optimizer, order
  generation, Qlib's exchange and position bookkeeping (the backtest loop minus the strategy), the
  recorders and MLflow -- before (Qlib's dataset cache off: every cell loads the quote) and after
  (on: a worker loads it once for all its cells).  Last line: JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import yaml

#: entry points (code path suffix, function) whose cumulative time the split reads
ENTRIES = {
    "run": ("qlib_ext/pipeline/workflow.py", "run_backtest"),
    "backtest": ("qlib/backtest/__init__.py", "backtest"),
    "exchange": ("qlib/backtest/exchange.py", "__init__"),
    "loop": ("qlib/backtest/backtest.py", "collect_data_loop"),
    "decision": ("qlib_ext/strategy/enhancement.py", "generate_trade_decision"),
    "inputs": ("qlib_ext/strategy/enhancement.py", "optim_input"),
    "solve": ("qlib_ext/optim/optimizer.py", "solve"),
    "orders": ("qlib_ext/strategy/orders.py", "generate_order_list_from_target_weight_position"),
}


def split(profile: cProfile.Profile) -> dict[str, float]:
    """Seconds of one cell by part, from the cumulative times of :data:`ENTRIES` (largest match each)."""
    stats = pstats.Stats(profile)
    cum = dict.fromkeys(ENTRIES, 0.0)
    for (path, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for key, (suffix, name) in ENTRIES.items():
            if fn == name and path.endswith(suffix):
                cum[key] = max(cum[key], ct)
    parts = {
        "data loading (exchange quote)": cum["exchange"],
        "strategy inputs (signal, weights, exposures, masks)": cum["inputs"],
        "optimizer": cum["solve"],
        "order generation": cum["orders"],
        "strategy other": cum["decision"] - cum["inputs"] - cum["solve"] - cum["orders"],
        "Qlib exchange + position bookkeeping": cum["loop"] - cum["decision"],
        "backtest setup other": cum["backtest"] - cum["loop"] - cum["exchange"],
        "recorders + MLflow": cum["run"] - cum["backtest"],
    }
    return dict(sorted(((k, max(v, 0.0)) for k, v in parts.items()), key=lambda kv: -kv[1]))


def quick_inputs(work: Path, start: str, end: str) -> tuple[Path, Path]:
    """The tiny market with its risk store and a 5-day reversal signal (no training)."""
    from qlib.data import D

    import qlib_ext
    from qlib_ext.data.synth import build_market
    from qlib_ext.risk import build_risk

    data = work / "data"
    if not (data / "risk" / "meta.json").is_file():
        build_market("tiny", data, progress=False)
        build_risk(data, export_qlib=False, progress=False)
    qlib_ext.init(data, mlruns=work / "signal_mlruns")
    sig = work / "signal"
    sig.mkdir(exist_ok=True)
    for expr, col, name in (("1 - $close/Ref($close, 5)", "score", "pred.pkl"),
                            ("Ref($vwap, -11)/Ref($vwap, -1) - 1", "LABEL0", "label.pkl")):
        df = D.features(D.instruments("csiall"), [expr], start, end).swaplevel().sort_index()
        df.columns = [col]
        df.to_pickle(sig / name)
    return data, sig / "pred.pkl"


def sweep_config(data: Path, signal: Path, window: list[str], n_cells: int) -> dict:
    from qlib_ext.config import load_config

    values = [1.0, 0.8, None, 0.9, 0.7, 0.6][:max(n_cells, 1)]
    report = load_config("sweeps", "report")
    return {"skip_records": report["skip_records"], "records": report["records"],  # as the report's sweep
            "name": "bench", "template": "enhance_csi500", "data": str(data), "signal": str(signal),
            "backtest": window, "window": ["2024-01-01", "2024-03-29"], "benchmarks": ["csi1000"],
            "override_root": "port_analysis_config.strategy.kwargs",
            "experiments": {"constituent_floor": {"param": "optimizer.constituent_floor", "values": values,
                                                  "labels": [f"v{i}" for i in range(len(values))]}},
            "reference": report["reference"]}


def profile_cell(cfg: dict, work: Path, window: list, out: dict) -> None:
    """One cell's time split under cProfile, before/after Qlib's dataset cache (fills ``out``)."""
    from qlib_ext.pipeline.sweep import build_cells, run_cell
    from qlib_ext.pipeline.workflow import ensure_experiment

    # one cell's split, warm process (imports, Qlib init, MLflow store done by a first cell):
    # before = Qlib's dataset cache off (every cell loads the exchange quote), after = on (cache hit)
    cells, shared = build_cells(cfg)
    prof_dir = work / "profile"
    uri = f"sqlite:///{prof_dir / 'mlflow.db'}"
    prof_dir.mkdir(exist_ok=True)
    ensure_experiment(uri, "bench_profile", prof_dir / "artifacts")

    def task(qcache: bool) -> dict:
        return {"id": cells[0].id, "spec": cells[0].spec(), "config": cells[0].config, "records": cells[0].records,
                "experiment_name": "bench_profile", "tracking_uri": uri, "cells_dir": str(prof_dir / "cells"),
                "tmp_root": str(prof_dir / "tmp"), "qcache_root": str(prof_dir / "qcache") if qcache else None,
                **shared}

    t0 = time.perf_counter()
    warm = run_cell(task(True))  # imports + fills the dataset cache
    if warm["status"] != "ok":
        raise SystemExit(f"cell failed: {warm['error']}")
    print(f"warm-up cell (cold process): {time.perf_counter() - t0:.1f} s")
    for label, qcache in (("before", False), ("after", True)):
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        res = run_cell(task(qcache))
        prof.disable()
        cell_s = time.perf_counter() - t0
        if res["status"] != "ok":
            raise SystemExit(f"profiled cell failed: {res['error']}")
        parts = split(prof)
        total = sum(parts.values())
        print(f"one cell {label} (dataset cache {'on' if qcache else 'off'}; {window[0]}..{window[1]}, CSI1000): "
              f"{cell_s:.1f} s wall under cProfile")
        for k, v in parts.items():
            print(f"  {k:<22}{v:8.1f} s  {v / total:6.1%}")
        prof.dump_stats(str(work / f"cell_{label}.prof"))
        out[f"cell_seconds_{label}"] = round(cell_s, 1)
        out[f"split_seconds_{label}"] = {k: round(v, 2) for k, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default=None)
    ap.add_argument("--signal", default=None, help="pred.pkl (label.pkl beside it)")
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--window", default=None, help="START:END of the backtest")
    ap.add_argument("--work", default=None)
    ap.add_argument("--skip-parallel", action="store_true")
    ap.add_argument("--skip-profile", action="store_true", help="only the throughput part")
    args = ap.parse_args()

    from qlib_ext.pipeline.sweep import run_sweep

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    window = (args.window or ("2023-07-03:2024-03-28" if args.quick or not args.data else "2016-12-30:2024-03-28")).split(":")
    if args.data:
        data, signal = Path(args.data).resolve(), Path(args.signal).resolve()
    else:
        data, signal = quick_inputs(work, "2023-06-01", window[1])
    cfg = sweep_config(data, signal, window, args.cells)
    (work / "bench.yaml").write_text(yaml.safe_dump(cfg))
    quiet = lambda m: None  # noqa: E731

    out: dict = {"bench": "sweep", "window": window}
    if not args.skip_profile:
        profile_cell(cfg, work, window, out)

    # throughput: the same cells on a 1-worker and a 2-worker LocalCluster (fresh worker processes
    # both, so both pay the imports and the dataset-cache fill of each worker; same BLAS threading)
    from distributed import LocalCluster

    runs = {}
    for n_workers in (1,) if args.skip_parallel else (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            res = run_sweep(cfg, out=work / f"workers{n_workers}", scheduler=c.scheduler_address, log=quiet)
        rate = len(res["ran"]) / res["dispatch_seconds"] * 60
        runs[n_workers] = (res, rate)
        print(f"{n_workers} worker(s): {len(res['ran'])} cells in {res['dispatch_seconds']:.0f} s = {rate:.2f} cells/min "
              f"(+{res.get('server_seconds', 0):.0f} s mlflow server start)")
        out[f"cells_per_min_{n_workers}"] = round(rate, 3)
    out["cells"] = len(runs[1][0]["ran"])
    if 2 in runs:
        (one, rate1), (two, rate2) = runs[1], runs[2]
        eff = rate2 / (2 * rate1)
        diff = max(float((two["tables"][k].select_dtypes("number") - one["tables"][k].select_dtypes("number"))
                         .abs().max().max()) for k in one["tables"])
        same = all(two["tables"][k].equals(one["tables"][k]) for k in one["tables"])
        print(f"parallel efficiency {eff:.2f} (floor 0.8); tables identical: {same} (max difference {diff:.1e})")
        out.update(efficiency=round(eff, 3), floor=0.8, tables_identical=same, tables_max_difference=diff)
    print("(measured on a shared 2-core machine under load from other jobs: pessimistic)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
