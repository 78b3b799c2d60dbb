"""The experiment sweep (``qlib-ext sweep``): override dicts over one workflow template, run as recorded Qlib runs.

A sweep file (``configs/sweeps/<name>.yaml``, loaded with ``qlib_ext.config.load_config("sweeps", ...)``)
names a workflow ``template``, the ``benchmarks``, and ``experiments``: each experiment sets one
``param`` (dotted, relative to ``override_root``) to each of its ``values``.  A **cell** is one
``(experiment, value, benchmark)``: the template with the benchmark's and the value's overrides.

* Identity: ``cell.id`` = hash of its resolved config (the rendered template with the overrides,
  the optimizer preset expanded to its bounds, the records, the signal's bytes and the risk store's
  fingerprint; not the tracking URI).  Cells that resolve to the same config (every experiment's
  baseline row) run once; an edited cell gets a new id and reruns.
* Resume: a finished cell writes ``<out>/cells/<id>.json`` (atomically) from the process that ran it;
  a rerun skips every cell whose file says ``ok`` and runs the rest (failed cells are retried), so a
  sweep killed with ``kill -9`` finishes only what is missing and writes the same tables.
* Failures: a cell that raises is written with its error and traceback and reported; the others go on.
* Parallel: one worker runs the cells in this process on the sqlite store ``<out>/tracking/mlflow.db``.
  More workers run them on a Dask ``LocalCluster`` (processes, one thread each) or on an existing
  cluster (``scheduler="tcp://host:port"``; data, signal and ``out`` must then be on a shared path),
  logging to an MLflow tracking server (several processes on one sqlite file collide): the one given as
  ``tracking_uri``, or a local ``mlflow server`` on that same sqlite store that the sweep starts and stops.
* Clean: each cell runs inside its own temp folder (``$TMPDIR``), removed afterwards.
* Output: ``<out>/sweep.json`` (cells, status, experiment and recorder ids, the tracking URI),
  ``<out>/tables/<experiment>_<benchmark>.csv`` and ``tables.md`` with the report's numbers beside ours.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..artifacts import load_artifact
from ..data.tempdirs import pid_alive
from ..files import PidLock, write_json_atomic, write_text_atomic
from ..risk.store import default_store, missing_store
from ..schema import ARTIFACTS, BENCHMARKS, LABEL_FILE, benchmark
from .cache import config_hash, dir_fingerprint, file_hash
from .spec import BacktestSpec, benchmark_overrides, recorded_run
from .tables import HOLDINGS_COLUMNS, PERF_COLUMNS, reference_frame, side_by_side, to_markdown
from .tempdir import private_tmpdir
from .workflow import ensure_experiment, find_workflow

SWEEP_KEYS = ("template", "data", "signal", "risk_store", "out", "backtest", "window", "benchmarks",
              "override_root", "records", "experiments", "reference", "label_neutralisation", "name",
              "skip_records")
SWEEP_FILE = "sweep.json"
CELLS_DIR = "cells"
_TRACKING_PLACEHOLDER = "sqlite:///<tracking>"
DEFAULT_WINDOW = ("2024-01-01", "2024-03-29")
EXPERIMENT_KEYS = ("param", "values", "labels", "title", "tables")
#: temp folders of a sweep under ``<out>/.tmp``: the runner's and each cell's, named after their process
_OWNED_TMP = re.compile(r"^(?:runner_|cell_[0-9a-f]+_)(\d+)-")


def load_sweep(name_or_path: str | Path, **overrides: Any) -> dict:
    """The sweep config (``configs/sweeps/<name>.yaml`` or a path) with overrides (None values ignored),
    validated (:func:`validate_sweep`, errors name the file and the key)."""
    from ..config import load_config, locate

    cfg = load_config("sweeps", name_or_path, allowed=("base", *SWEEP_KEYS),
                      **{k: v for k, v in overrides.items() if v is not None})
    cfg.setdefault("name", Path(str(name_or_path)).stem)
    validate_sweep(cfg, str(locate("sweeps", name_or_path).path))
    return cfg


def validate_sweep(cfg: Mapping, where: str = "sweep config") -> None:
    """Refuse a grid that cannot run, naming ``where`` (the file) and the key: no experiments, an unknown
    key of an experiment, a missing ``param``, empty ``values``, labels that do not match the values,
    no or unknown benchmarks, no backtest window."""
    exps = cfg.get("experiments")
    if not isinstance(exps, Mapping) or not exps:
        raise ValueError(f"{where}: `experiments` is empty: a sweep needs at least one experiment "
                         "({name: {param: dotted.path, values: [...]}})")
    for name, exp in exps.items():
        key = f"{where}: experiments.{name}"
        if not isinstance(exp, Mapping):
            raise ValueError(f"{key}: expected a mapping with {list(EXPERIMENT_KEYS)}, got {type(exp).__name__}")
        unknown = sorted(set(exp) - set(EXPERIMENT_KEYS))
        if unknown:
            raise ValueError(f"{key}: unknown keys {unknown} (allowed: {', '.join(EXPERIMENT_KEYS)})")
        for must in ("param", "values"):
            if must not in exp:
                raise ValueError(f"{key}: `{must}` is missing")
        values = exp["values"]
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{key}.values: expected a non-empty list of values, got {values!r}")
        labels = exp.get("labels")
        if labels is not None and len(labels) != len(values):
            raise ValueError(f"{key}.labels: {len(labels)} labels for {len(values)} values")
    benches = cfg.get("benchmarks")
    if not benches:
        raise ValueError(f"{where}: `benchmarks` is empty (known: {sorted(BENCHMARKS)})")
    for b in benches:
        try:
            benchmark(b)
        except ValueError as exc:
            raise ValueError(f"{where}: benchmarks: {exc}") from None
    bt = cfg.get("backtest")
    if not bt or len(bt) != 2:
        raise ValueError(f"{where}: `backtest` must be [start, end], got {bt!r}")


def validate_workers(workers: int | None) -> int | None:
    """``--workers``: None (all cores) or an integer >= 1; anything else is an error naming it."""
    if workers is None:
        return None
    if int(workers) < 1:
        raise ValueError(f"--workers must be >= 1 (1 = serial in this process), got {workers}")
    return int(workers)


@dataclass
class Cell:
    """One sweep cell: experiment, row label, benchmark, its overrides and its resolved config."""

    experiment: str
    label: str
    benchmark: str
    overrides: dict
    config: dict
    records: list
    id: str = ""
    members: list = field(default_factory=list)  # (experiment, label) pairs sharing this resolved config

    def spec(self) -> dict:
        return {"id": self.id, "experiment": self.experiment, "label": self.label, "benchmark": self.benchmark,
                "overrides": self.overrides, "members": self.members}


def _normalise_strategy(cfg: dict) -> dict:
    """For the identity only: the strategy's preset + optimizer overrides expanded to the settings it runs with
    (:func:`qlib_ext.strategy.presets.resolve_preset`, the strategy's own merge)."""
    from ..strategy.presets import resolve_preset

    out = copy.deepcopy(cfg)
    kw = out.get("port_analysis_config", {}).get("strategy", {}).get("kwargs")
    if isinstance(kw, dict) and "optimizer" in kw:
        preset = kw.pop("preset", "figure10")
        kw["optimizer"] = resolve_preset(preset, kw.get("optimizer"))
    out.pop("qlib_init", None)  # the tracking URI is not part of what a cell computes
    out.pop("experiment_name", None)
    return out


def _extra_records(records: Sequence[Mapping]) -> list[dict]:
    """The sweep's extra records of every cell (copies)."""
    return [dict(rec) for rec in records or []]


def build_cells(sweep: Mapping, cwd: Path | None = None) -> tuple[list[Cell], dict]:
    """The unique cells of a sweep and the shared inputs (signal, data, template path)."""
    data = Path(sweep["data"]).expanduser().resolve()
    signal = Path(sweep["signal"]).expanduser().resolve()
    if not signal.is_file():
        raise FileNotFoundError(f"sweep signal {signal} not found: run `qlib-ext run` first or set `signal:`")
    label = signal.with_name(LABEL_FILE)
    if not label.is_file():  # Qlib's PortAnaRecord silently skips a run without SignalRecord's label.pkl
        raise FileNotFoundError(f"sweep signal {signal}: no {LABEL_FILE} beside it (SignalRecord writes both)")
    store = default_store(data, sweep.get("risk_store")).resolve()
    if not (store / "meta.json").is_file():
        raise missing_store(store, data)
    spec = BacktestSpec(template=sweep["template"], data=data, backtest=tuple(sweep["backtest"]),
                        tracking_uri=_TRACKING_PLACEHOLDER, risk_store=store,
                        window=tuple(sweep.get("window") or DEFAULT_WINDOW))
    template = spec.render()
    shared = {"data": str(data), "signal": str(signal), "label": str(label),
              "signal_hash": file_hash(signal), "store": dir_fingerprint(store, ("meta.json",)),
              "template": str(find_workflow(sweep["template"]))}
    root = sweep.get("override_root", "")
    extra = _extra_records(sweep.get("records") or [])
    cells: dict[str, Cell] = {}
    order: list[str] = []
    for bench in sweep["benchmarks"]:
        info = benchmark(bench)
        for exp_name, exp in sweep["experiments"].items():
            labels = exp.get("labels") or [str(v) for v in exp["values"]]
            for value, row in zip(exp["values"], labels):
                param = f"{root}.{exp['param']}" if root else exp["param"]
                overrides = {**benchmark_overrides(template, info), param: value}
                cfg = spec.config(info, {param: value}, rendered=template)
                cfg["experiment_name"] = f"sweep_{sweep.get('name', 'sweep')}"
                records = spec.records(cfg, info, extra, skip=sweep.get("skip_records") or ())
                # PortAnaRecord's config is the template's port_analysis_config (normalised in "config")
                ident = {"config": _normalise_strategy(cfg), "signal": shared["signal_hash"], "store": shared["store"],
                         "records": [{**r, "kwargs": {k: v for k, v in r.get("kwargs", {}).items() if k != "config"}}
                                     for r in records]}
                cid = config_hash(ident)
                if cid not in cells:
                    cells[cid] = Cell(exp_name, str(row), info.name, overrides, cfg, records, cid)
                    order.append(cid)
                cells[cid].members.append([exp_name, str(row), info.name])
    return [cells[c] for c in order], shared


# ---------------------------------------------------------------------------------------------- cells
def _set_tracking(cfg: dict, uri: str) -> dict:
    out = copy.deepcopy(cfg)
    exp = out.get("qlib_init", {}).get("exp_manager", {}).get("kwargs")
    if isinstance(exp, dict):
        exp["uri"] = uri
    return out


def _holdings(rec: Any) -> dict:
    """The holdings recorder's summary (issue 11) when the cell ran it: {metric: value}."""
    try:
        summary = load_artifact(rec, "summary.json", ARTIFACTS.HOLDINGS)
    except FileNotFoundError:
        return {}
    return {k: v for k, v in summary.items() if isinstance(v, (int, float)) or v is None}


def run_cell(task: Mapping) -> dict:
    """Run one cell (a picklable task dict) and write ``<cells>/<id>.json``; never raises (errors are written)."""
    t0 = time.perf_counter()
    cell_file = Path(task["cells_dir"]) / f"{task['id']}.json"
    result = {"id": task["id"], "spec": task["spec"], "host": os.uname().nodename, "pid": os.getpid(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        from qlib.workflow import R

        with private_tmpdir(task.get("tmp_root"), prefix=f"cell_{task['id']}_"):
            qcache = Path(task["qcache_root"]) / str(os.getpid()) if task.get("qcache_root") else None
            cfg = _set_tracking(task["config"], task["tracking_uri"])
            out = recorded_run(task["data"], task["tracking_uri"], task["experiment_name"], cfg, task["signal"],
                               task.get("label"), task["records"],
                               recorder_name=f"{task['spec']['experiment']}:{task['spec']['label']}:"
                                             f"{task['spec']['benchmark']}",
                               kernels=1, dataset_cache=qcache,
                               params={"cell": task["id"], **{
                                   k.split(".")[-1]: v for k, v in task["spec"]["overrides"].items()}},
                               tags={"sweep_cell": task["id"]})
            rec = R.get_exp(experiment_id=out["experiment_id"]).get_recorder(recorder_id=out["recorder_id"])
            ran_holdings = any(r.get("class") == "HoldingsProfileRecord" for r in task["records"])
            out["holdings"] = _holdings(rec) if ran_holdings else {}
        result.update(status="ok", **out)
    except Exception as exc:  # a failed cell is reported, the others go on
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    result["seconds"] = time.perf_counter() - t0
    write_json_atomic(cell_file, result)
    return result


def _die_with_parent() -> None:
    """In a Dask worker: exit when the process that started it dies (Linux PR_SET_PDEATHSIG)."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def done_cells(cells_dir: Path) -> dict[str, dict]:
    out = {}
    for path in Path(cells_dir).glob("*.json"):
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        out[res.get("id", path.stem)] = res
    return out


# ---------------------------------------------------------------------------------------------- runner
def run_sweep(sweep: Mapping | str | Path, out: str | Path | None = None, workers: int | None = None,
              scheduler: str | None = None, tracking_uri: str | None = None, log: Callable[[str], None] = print,
              only: int | None = None, dataset_cache: bool = True) -> dict:
    """Run (or resume) a sweep; returns ``{"cells": [...], "tables": {...}, "failed": [...], "ran": [...]}``.

    workers: local processes (default: the machine's cores; 1 = serial in this process).  scheduler: an
    existing Dask scheduler address.  tracking_uri: an MLflow server (default: one started here when
    running in parallel, the sqlite store itself when serial).  only: run at most this many missing cells (then stop, as an interrupted sweep would).
    dataset_cache: each worker process keeps Qlib's dataset cache (the exchange quote of the window)
    across its cells (:func:`~.workflow.init_qlib`); removed at the end.

    One sweep at a time per ``out`` (pid lock ``<out>/.lock``); what a killed sweep left there (its
    ``.dask/`` scratch, dataset caches, runner and cell temp folders of dead processes) is removed first.
    """
    workers = validate_workers(workers)
    if isinstance(sweep, (str, Path)):
        cfg = load_sweep(sweep)
    else:
        cfg = dict(sweep)
        validate_sweep(cfg, f"sweep config {cfg.get('name', '<dict>')!r}")
    outdir = Path(out or cfg.get("out") or "runs/sweeps/sweep").expanduser().resolve()
    with PidLock(outdir, what="qlib-ext sweep"):
        _remove_leftovers(outdir, log)
        try:
            return _run_locked(cfg, outdir, workers, scheduler, tracking_uri, log, only, dataset_cache)
        finally:
            for scratch in (outdir / ".dask", outdir / ".qcache"):
                shutil.rmtree(scratch, ignore_errors=True)
            with contextlib.suppress(OSError):
                (outdir / ".tmp").rmdir()  # empty by now


def _remove_leftovers(outdir: Path, log: Callable[[str], None]) -> None:
    """What a killed sweep left in ``outdir`` (we hold its lock, so no live sweep owns any of it)."""
    for scratch in (outdir / ".dask", outdir / ".qcache"):
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
            log(f"  removed {scratch} left by an interrupted sweep")
    tmp = outdir / ".tmp"
    if tmp.is_dir():
        for entry in tmp.iterdir():
            m = _OWNED_TMP.match(entry.name)
            if m and not pid_alive(int(m.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
                log(f"  removed {entry} (its process {m.group(1)} is gone)")


def _run_locked(cfg: dict, outdir: Path, workers: int | None, scheduler: str | None, tracking_uri: str | None,
                log: Callable[[str], None], only: int | None, dataset_cache: bool) -> dict:
    """:func:`run_sweep` once the sweep holds ``outdir``'s lock."""
    cells_dir = outdir / CELLS_DIR
    cells_dir.mkdir(parents=True, exist_ok=True)
    tracking_dir = outdir / "tracking"
    cells, shared = build_cells(cfg)
    done = done_cells(cells_dir)
    todo = [c for c in cells if done.get(c.id, {}).get("status") != "ok"]
    if only is not None:
        todo = todo[: int(only)]
    workers = int(workers or os.cpu_count() or 1)
    parallel = scheduler is not None or workers > 1
    log(f"sweep {cfg.get('name')}: {len(cells)} cells ({len(cells) - len(todo)} done, {len(todo)} to run), "
        f"{'scheduler ' + scheduler if scheduler else f'{workers} local worker(s)'}, out {outdir}")
    with private_tmpdir(outdir / ".tmp", prefix="runner_"):
        timing: dict[str, float] = {}
        ran, wall = _run_todo(cfg, todo, shared, outdir, workers, scheduler, parallel, tracking_uri, log, timing,
                              qcache=dataset_cache)
        done = done_cells(cells_dir)
        # the page and later readers use the store itself: a server we started is gone by now
        stored = tracking_uri or f"sqlite:///{tracking_dir / 'mlflow.db'}"
        return finish_sweep(cfg, cells, done, outdir, stored, ran, wall, log, timing)


def _run_todo(cfg: Mapping, todo: Sequence[Cell], shared: dict, outdir: Path, workers: int, scheduler: str | None,
              parallel: bool, tracking_uri: str | None, log, timing: dict,
              qcache: bool = True) -> tuple[list, float]:
    """Dispatch the missing cells (starting and stopping a tracking server when needed); fills ``timing``."""
    exp_name = f"sweep_{cfg.get('name', 'sweep')}"
    tracking_dir = outdir / "tracking"
    tracking_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not todo:
        return [], 0.0
    # Qlib's dataset cache lives for one sweep run: a rebuilt dataset never meets an old cache
    shutil.rmtree(outdir / ".qcache", ignore_errors=True)
    server = None
    try:
        if tracking_uri is None and parallel:
            from .tracking import TrackingServer

            server = TrackingServer(tracking_dir)
            tracking_uri = server.start()
            timing["server_seconds"] = time.perf_counter() - t0
            log(f"  MLflow tracking server {tracking_uri} (store {tracking_dir / 'mlflow.db'}), "
                f"started in {time.perf_counter() - t0:.0f} s")
        uri = tracking_uri or f"sqlite:///{tracking_dir / 'mlflow.db'}"
        # our own store (sqlite, or the server we started on it): artifacts in the shared sweep folder;
        # a server given by the user keeps its own artifact location
        ensure_experiment(uri, exp_name, tracking_dir / "artifacts" if tracking_uri is None or server else None)
        tasks = [{"id": c.id, "spec": c.spec(), "config": c.config, "records": c.records,
                  "experiment_name": exp_name, "tracking_uri": uri, "cells_dir": str(outdir / CELLS_DIR),
                  "tmp_root": str(outdir / ".tmp"), "qcache_root": str(outdir / ".qcache") if qcache else None,
                  **shared}
                 for c in todo]
        t1 = time.perf_counter()
        ran = _dispatch(tasks, workers, scheduler, parallel, log, outdir / ".dask")
        timing["dispatch_seconds"] = time.perf_counter() - t1
    finally:
        if server is not None:
            server.stop()

        shutil.rmtree(outdir / ".qcache", ignore_errors=True)  # per-process dataset caches of this run
    return ran, time.perf_counter() - t0


def _dispatch(tasks: list[dict], workers: int, scheduler: str | None, parallel: bool, log,
              scratch: Path | None = None) -> list[dict]:
    results = []
    n = len(tasks)
    if not parallel:
        for i, task in enumerate(tasks, 1):
            res = run_cell(task)
            results.append(res)
            log(f"  [{i}/{n}] cell {task['id']} {task['spec']['experiment']}={task['spec']['label']} "
                f"{task['spec']['benchmark']}: {res['status']} in {res['seconds']:.0f} s"
                + (f" -- {res['error']}" if res["status"] != "ok" else ""))
        return results
    import dask
    from distributed import Client, LocalCluster, as_completed

    with dask.config.set({"distributed.worker.daemon": False, "distributed.scheduler.work-stealing": False}):
        if scheduler:
            cluster, client = None, Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40,
                                   local_directory=str(scratch) if scratch else None)
            client = Client(cluster)
            client.run(_die_with_parent)
        try:
            futures = [client.submit(run_cell, t, key=f"cell-{t['id']}", pure=False) for t in tasks]
            by_key = {f.key: t for f, t in zip(futures, tasks)}
            for i, fut in enumerate(as_completed(futures), 1):
                task = by_key[fut.key]
                try:
                    res = fut.result()
                except Exception as exc:  # the worker died: report the cell, keep the others going
                    res = {"id": task["id"], "spec": task["spec"], "status": "failed", "seconds": float("nan"),
                           "error": f"worker lost: {type(exc).__name__}: {exc}"}
                    write_json_atomic(Path(task["cells_dir"]) / f"{task['id']}.json", res)
                results.append(res)
                log(f"  [{i}/{len(tasks)}] cell {task['id']} {task['spec']['experiment']}={task['spec']['label']} "
                    f"{task['spec']['benchmark']}: {res['status']} in {res.get('seconds', float('nan')):.0f} s"
                    + (f" -- {res['error']}" if res["status"] != "ok" else ""))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
    return results


# ---------------------------------------------------------------------------------------------- tables
def sweep_tables(cfg: Mapping, cells: Sequence[Cell], done: Mapping[str, dict]) -> dict[str, pd.DataFrame]:
    """``{"<experiment>_<benchmark>": table}``: rows = the experiment's labels, ours beside the report's."""
    ref = cfg.get("reference") or {}
    cols = ref.get("columns", list(PERF_COLUMNS))
    hcols = ref.get("holdings_columns", list(HOLDINGS_COLUMNS))
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    for c in cells:
        res = done.get(c.id, {})
        for exp_name, row, bench in c.members:
            vals = {**res.get("performance", {}), **res.get("holdings", {})} if res.get("status") == "ok" else {}
            rows.setdefault((exp_name, bench), {})[row] = vals
    out = {}
    for bench in cfg["benchmarks"]:
        for exp_name, exp in cfg["experiments"].items():
            labels = exp.get("labels") or [str(v) for v in exp["values"]]
            ours = pd.DataFrame.from_dict({r: rows.get((exp_name, bench), {}).get(r, {}) for r in labels},
                                          orient="index").reindex(labels)
            ours.index.name = exp.get("title", exp_name)
            perf_ref = reference_frame((ref.get(bench) or {}).get(exp_name), cols)
            hold_ref = reference_frame((ref.get(f"{bench}_holdings") or {}).get(exp_name), hcols)
            table = pd.concat([side_by_side(ours, perf_ref, PERF_COLUMNS),
                               side_by_side(ours, hold_ref, HOLDINGS_COLUMNS).dropna(axis=1, how="all")], axis=1)
            out[f"{exp_name}_{bench}"] = table
    return out


def _cell_label(c: Cell) -> str:
    return f"{c.experiment}={c.label} {benchmark(c.benchmark).label}"


def finish_sweep(cfg: Mapping, cells: Sequence[Cell], done: Mapping[str, dict], outdir: Path, tracking_uri: str,
                 ran: Sequence[dict], wall: float, log, timing: Mapping[str, float] | None = None) -> dict:
    """Write ``sweep.json``, the tables (CSV + markdown) and the sweep page; return the summary."""
    exp_name = f"sweep_{cfg.get('name', 'sweep')}"
    tables = sweep_tables(cfg, cells, done)
    tdir = outdir / "tables"
    tdir.mkdir(exist_ok=True)
    md = [f"# Sweep {cfg.get('name')}", "",
          f"Ours: {_describe(cfg.get('data'))}, backtest {cfg['backtest'][0]}..{cfg['backtest'][1]}. "
          f"Columns prefixed 'report (real market)': {cfg.get('reference', {}).get('source', 'the report')}.", ""]
    for name, table in tables.items():
        table.to_csv(tdir / f"{name}.csv")
        exp, bench = name.rsplit("_", 1)
        tabs = cfg["experiments"][exp].get("tables")
        md += [to_markdown(table, f"{cfg['experiments'][exp].get('title', exp)}, {benchmark(bench).label} "
                                  f"(report tables {tabs})"), ""]
    write_text_atomic(tdir / "tables.md", "\n".join(md))
    failed = [done[c.id] for c in cells if done.get(c.id, {}).get("status") == "failed"]
    summary = {
        "name": cfg.get("name"), "tracking_uri": tracking_uri, "template": cfg.get("template"),
        "benchmarks": list(cfg["benchmarks"]), "backtest": list(cfg["backtest"]),
        # the format of `qlib-ext report` (qlib_ext.analysis.report): cell label, MLflow experiment, recorder id
        "cells": [{"cell": _cell_label(c), "experiment": exp_name, "recorder_id": done[c.id]["recorder_id"],
                   "experiment_id": done[c.id].get("experiment_id"), "id": c.id, "group": c.experiment,
                   "label": c.label, "benchmark": c.benchmark, "members": c.members, "overrides": c.overrides,
                   "seconds": done[c.id].get("seconds")}
                  for c in cells if done.get(c.id, {}).get("status") == "ok"],
        "failed": [{"id": c.id, "cell": _cell_label(c), "error": done[c.id].get("error")}
                   for c in cells if done.get(c.id, {}).get("status") == "failed"],
        "tables": {k: str(tdir / f"{k}.csv") for k in tables},
        "ran": [r["id"] for r in ran], "wall_seconds": wall, **dict(timing or {}),
    }
    write_json_atomic(outdir / SWEEP_FILE, summary)
    for f in failed:
        log(f"  FAILED cell {f['id']} {f.get('spec', {}).get('experiment')}={f.get('spec', {}).get('label')} "
            f"{f.get('spec', {}).get('benchmark')}: {f.get('error')}")
    missing = [c.id for c in cells if c.id not in done]
    log(f"sweep {cfg.get('name')}: {len(cells) - len(failed) - len(missing)} ok, {len(failed)} failed, "
        f"{len(missing)} missing; ran {len(ran)} cells in {wall:.0f} s; tables in {tdir}; {outdir / SWEEP_FILE}")
    page = _sweep_page(outdir, log) if summary["cells"] else None
    return {**summary, "tables": tables, "failed": failed, "missing": missing, "page": page}


def _describe(data: str | Path | None) -> str:
    """What the sweep's data are (:func:`qlib_ext.data.provenance.describe_dataset`)."""
    from ..data.provenance import describe_dataset

    return describe_dataset(Path(str(data)).expanduser()) if data else "the dataset"


def _sweep_page(outdir: Path, log) -> str | None:
    """The sweep's HTML page (``qlib-ext report <out>``) when the report module is installed."""
    try:
        from ..analysis.report import build_report
    except ImportError:
        log("  no sweep page: qlib_ext.analysis.report is not installed")
        return None
    path = build_report(str(outdir / SWEEP_FILE), outdir / "index.html", title=f"sweep {outdir.name}")
    log(f"  sweep page: {path}")
    return str(path)
