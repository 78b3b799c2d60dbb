"""The main job (``qlib-ext run``): market -> minute factors -> risk -> signal -> backtests -> report.

Each stage is one function below, run as a transaction of :class:`~.cache.StageCache` (its files in a
fresh folder renamed into ``out/stages/<name>/`` with a manifest of sizes and hashes) and identified
by its resolved config, its input stages' keys and its code version (:data:`STAGE_CODE`, bumped when
a stage's computation changes) plus the package version.  A rerun adopts a stage whose identity and
files verify; a changed stage reruns with everything downstream of it.

``market``          the dataset: built from the preset's market when ``data`` is missing or empty, else
                    used as it is.  Its identity is the content of its calendar, instruments and
                    ``meta/`` files -- the same whether this run built it or found it.  A folder that
                    holds anything but a dataset is refused, never replaced.  A synthetic market whose
                    config differs from the job's is rebuilt only when this job built it (its manifest
                    says so); otherwise the job stops and says so.
``minute_factors``  the minute-factor library into ``mf_*`` daily fields (``qlib_ext.ops``)
``risk``            the Barra-style risk store ``<data>/risk`` (``qlib_ext.risk``); rebuilt when its config
                    or code changed (``qlib_every``), an existing compatible store of a dataset the job did
                    not build is adopted
``signal``          rolling retraining of the signal workflow over the backtest span (:mod:`.signal`)
``backtest_<b>``    one recorded Qlib run per benchmark (:class:`~.spec.BacktestSpec`)
``report``          the HTML report (``qlib-ext report``) of the runs
``headline``        table 11 (CSI500 and CSI1000 beside the report's numbers), printed and saved

One run at a time per ``out`` (a pid lock ``out/.lock``; a second run names the holder's pid; a dead
holder's lock is taken over) and per dataset being built (the writer's lock).  Temp folders of
killed runs under ``out`` are removed at start.  Nothing is written outside ``out`` and ``data``.

Job presets are ``configs/pipeline/<name>.yaml`` (``tiny``, ``default``, ``full``, ``real``; without
``--preset``, :func:`default_preset` picks ``real`` for a dataset that is not a synthetic market of ours).

Determinism: two runs from scratch give identical ``pred.pkl`` bytes and headline on one machine
(tested on tiny), whatever the process's hash seed or ``OMP_NUM_THREADS`` (tested on the GRU ensemble).
The knobs: LightGBM ``seed`` + ``deterministic: true`` + ``force_col_wise`` + fixed ``num_threads``, the
GRUs' ``seed`` + fixed ``num_threads`` (torch's float sums follow its thread count) with
``torch.use_deterministic_algorithms`` in the trainer (all in configs/models), the synthetic market's
seed, and no wall-clock inputs in any stage.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..artifacts import load_artifact
from ..data.bin_io import check_target, has_dataset
from ..data.provenance import describe_dataset
from ..data.tempdirs import sweep
from ..files import PidLock, write_json_atomic, write_text_atomic
from ..schema import ARTIFACTS, LABEL_FILE, PRED_FILE, benchmark
from .cache import StageCache, StageResult, config_hash, cpu_seconds, dir_fingerprint, file_hash
from .spec import BacktestSpec, benchmark_overrides, recorded_run, with_benchmark
from .tables import headline, to_markdown
from .tempdir import private_tmpdir
from .workflow import find_workflow, render_workflow

JOB_KEYS = ("market", "data", "out", "template", "benchmarks", "minute_factors", "risk", "signal", "backtest",
            "window", "records", "signal_records", "report", "label_neutralisation")
PROFILES = ("fast", "report")
#: Per-stage code versions: bump one when that stage's computation changes, so caches rerun it.
STAGE_CODE: dict[str, int] = {"market": 1, "minute_factors": 1, "risk": 1, "signal": 1, "signal_strict": 1,
                              "signal_analysis": 1, "label_neutralisation": 1, "backtest": 1, "report": 1}
#: Files that identify a dataset's content (our writers rewrite them on every build).
IDENTITY_FILES = ("calendars/day.txt", "instruments/all.txt", "meta/qlib_ext.json", "meta/dataset.json",
                  "meta/market.yaml")

# kept for callers of the old names
_with_benchmark = with_benchmark
__all__ = ["run_job", "load_job", "check_job", "has_dataset", "benchmark_overrides", "template_context",
           "signal_task", "dataset_identity", "STAGE_CODE", "JOB_KEYS"]


def load_job(preset: str = "default", **overrides: Any) -> dict:
    """The job config of ``preset`` (``configs/pipeline/<preset>.yaml``) with overrides (None values ignored)."""
    from ..config import load_config

    return load_config("pipeline", preset, allowed=("base", *JOB_KEYS),
                       **{k: v for k, v in overrides.items() if v is not None})


def tracking(out: Path) -> tuple[str, Path]:
    """The job's sqlite tracking URI and artifact root under ``out/mlruns``."""
    root = (out / "mlruns").resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"


def dataset_identity(data: Path) -> str:
    """A hash of the dataset's identifying files (:data:`IDENTITY_FILES`), the same built or found."""
    return dir_fingerprint(data, IDENTITY_FILES)


def backtest_spec(job: Mapping, data: Path, uri: str) -> BacktestSpec:
    """The job's :class:`~.spec.BacktestSpec` (template, windows, the dataset's risk store)."""
    sig = job["signal"]
    return BacktestSpec(template=job["template"], data=data, backtest=tuple(job["backtest"]), tracking_uri=uri,
                        window=tuple(job["window"]), train=tuple(sig["train"]), valid=tuple(sig["valid"]))


def template_context(job: Mapping, data: Path, tracking_uri: str, pred: str | None = None) -> dict[str, str]:
    """The ``QLIB_EXT_*`` Jinja context of the enhancement templates for this job."""
    return dataclasses.replace(backtest_spec(job, data, tracking_uri), pred=pred).context()


def signal_task(job: Mapping, data: Path, uri: str, profile: str, template: Mapping | None = None,
                neutralize: str | None = None) -> dict:
    """The qrun task of the signal stage: the ``signal.workflow``'s task (ensemble.yaml) rendered for this
    job, or the enhancement template's own model rolled with ``qlib_ext.models.Rolling``."""
    from .signal import rolling_task

    sig = job["signal"]
    spec = backtest_spec(job, data, uri)
    if sig.get("workflow"):
        label = neutralize or sig.get("neutralize", "industry_size")
        ctx = {**spec.context(), "QLIB_EXT_MODEL_PROFILE": profile, "QLIB_EXT_ROLL_STEP": sig.get("step", 244),
               "QLIB_EXT_NEUTRALIZE": "null" if label is None else label}  # null: no label neutralisation
        ctx.pop("QLIB_EXT_RISK_STORE", None)
        task = dict(render_workflow(find_workflow(sig["workflow"]), ctx)["task"])
    else:
        template = template if template is not None else spec.render()
        task = {"model": template["task"]["model"], "dataset": template["task"]["dataset"]}
        task = rolling_task(task, sig.get("step", 244), sig.get("rolling", "sliding"))
    task.pop("record", None)
    from .signal import exclude_members

    return exclude_members(task, sig.get("exclude") or ())


# ---------------------------------------------------------------------------------------------- preflight
def _plan(job: dict, data: Path) -> Any | None:
    """The preflight plan of ``job`` on ``data`` (:mod:`.preflight`), None while that module is absent."""
    try:
        from .preflight import make_plan
    except ImportError:
        return None
    return make_plan(job, data)


def default_preset(data: str | Path | None) -> str:
    """The preset ``qlib-ext run`` uses when none is given: ``real`` for a dataset that is not one of our
    synthetic markets (imported, augmented or foreign: windows and benchmarks fitted to it), the market's own
    preset for one of ours (tiny, default, full), ``default`` for an empty or new folder."""
    if data is None:
        return "default"
    from ..data.provenance import read_provenance

    path = Path(data).expanduser().resolve()
    if not has_dataset(path):
        return "default"
    prov = read_provenance(path)
    if prov.kind != "synthetic":
        return "real"
    return prov.preset if prov.preset in ("tiny", "default", "full") else "default"


def check_job(preset: str = "default", data: str | Path | None = None, **overrides: Any) -> tuple[bool, str]:
    """``qlib-ext run --check``: (ok, the preflight's text) without running any stage."""
    job = load_job(preset, data=str(data) if data else None, **overrides)
    path = Path(job["data"]).expanduser().resolve()
    if not has_dataset(path):
        check_target(path)
        if job.get("market") is None:
            return False, (f"{path} holds no dataset and this preset builds none (market: null): import your data "
                           f"first (qlib-ext data import --source <tushare-like files> --out {path})")
        return True, (f"{path} holds no dataset: the job would build the synthetic market {job['market']!r} "
                      "there, then check it before any other stage")
    plan = _plan(job, path)
    if plan is None:
        return True, f"{path}: a dataset (no preflight module installed: nothing more to check)"
    return not plan.problems, plan.format()


# ---------------------------------------------------------------------------------------------- stages
def market_stage(job: Mapping, data: Path, cache: StageCache, log: Callable[[str], None]) -> StageResult:
    """The dataset (module docstring): built when missing or empty, used as it is otherwise."""
    import yaml

    from ..data.synth import build_market, load_market_config

    t0, c0 = time.perf_counter(), cpu_seconds()
    prev = cache.manifest("market")
    prev_out = (prev or {}).get("outputs", {})
    if job.get("market") is None:  # a preset for data the user brings (real.yaml): never build one
        if not has_dataset(data):
            check_target(data)
            raise ValueError(f"{data} holds no dataset and this preset builds none (market: null): import your data "
                             f"first (qlib-ext data import --source <tushare-like files> --out {data}), or give "
                             "--preset default to build the synthetic market there")
        ident = dataset_identity(data)
        log(f"[market] using the dataset at {data}")
        outputs = {"data": str(data), "built": False, "identity": ident, "market": None}
        return cache.run("market", lambda _folder: outputs, config={"identity": ident, "data": str(data), "built": False},
                         code=STAGE_CODE["market"], seconds=time.perf_counter() - t0, cpu=cpu_seconds() - c0)
    want = load_market_config(job["market"])
    built = False
    if has_dataset(data):
        ident = dataset_identity(data)
        ours = bool(prev_out.get("built")) and prev_out.get("data") == str(data) and prev_out.get("identity") == ident
        meta = data / "meta" / "market.yaml"
        have = yaml.safe_load(meta.read_text()) if meta.is_file() else None
        if have is not None and config_hash(have) != config_hash(want):
            if not ours:
                raise ValueError(
                    f"{data} is the synthetic market {have.get('name')!r} (seed {have.get('seed')}), but the job asks "
                    f"for market {job['market']!r} (seed {want.get('seed')}); this job did not build that dataset "
                    "(no market manifest of it in the output folder), so it is not rebuilt: pass another --data, "
                    "or set `market:` to the dataset's, or delete the folder yourself")
            log(f"[market] the job's market config changed: rebuilding {data} (built by this job)")
            build_market(job["market"], data, progress=True)
            built = True
        else:
            built = ours
            log(f"[market] using the dataset at {data}" + (" (built by this job)" if ours else ""))
    else:
        check_target(data)  # refuse a folder of other files before anything is written
        log(f"[market] {data} holds no dataset: building the synthetic market {job['market']!r}")
        build_market(job["market"], data, progress=True)
        built = True
    ident = dataset_identity(data)
    outputs = {"data": str(data), "built": built, "identity": ident, "market": config_hash(want)}
    # keyed by content and place (the templates name the folder); built: later stages may rebuild what it holds
    return cache.run("market", lambda _folder: outputs, config={"identity": ident, "data": str(data), "built": built},
                     code=STAGE_CODE["market"], seconds=time.perf_counter() - t0, cpu=cpu_seconds() - c0)


def minute_factors_stage(data: Path, market: StageResult, cache: StageCache, log) -> StageResult:
    """The ``mf_*`` fields: computed into the dataset; already present in a dataset the job did not build: adopted."""
    from ..ops.library import resolve

    fields = [f.field for f in resolve()]

    def present(names) -> bool:
        return all(any(True for _ in (data / "features").glob(f"*/{f}.day.bin")) for f in names)

    def run(_folder: Path) -> dict:
        if not market.outputs["built"] and present(fields):
            log(f"[minute_factors] the dataset (not built by this job) already holds {len(fields)} mf_* fields: adopted")
            return {"fields": fields, "adopted": True}
        from ..ops.build import build_minute_factors

        return {"fields": build_minute_factors(data, progress=True), "adopted": False}
    return cache.run("minute_factors", run, config={"fields": fields}, inputs={"market": market.key},
                     code=STAGE_CODE["minute_factors"], exists=lambda o: present(o["fields"]))


def risk_stage(job: Mapping, data: Path, market: StageResult, cache: StageCache, log) -> StageResult:
    """The risk store ``<data>/risk``, built with the job's ``risk`` config (``qlib_every``: Qlib export)."""
    cfg = dict(job.get("risk") or {})
    every = int(cfg.get("qlib_every", 0))
    store = data / "risk"

    def compatible() -> bool:
        return (store / "meta.json").is_file() and (every == 0 or (store / "qlib").is_dir())

    def run(_folder: Path) -> dict:
        if not market.outputs["built"] and compatible():
            log(f"[risk] adopted the existing risk store {store} (the dataset was not built by this job)")
        else:
            from ..risk import build_risk

            build_risk(data, progress=True, export_qlib=every > 0, qlib_every=max(every, 1))
        return {"store": str(store), "meta": file_hash(store / "meta.json", 64), "qlib_every": every}
    return cache.run("risk", run, config=cfg, inputs={"market": market.key}, code=STAGE_CODE["risk"],
                     exists=lambda o: (store / "meta.json").is_file() and file_hash(store / "meta.json", 64) == o["meta"])


def signal_stage(name: str, task: dict, profile: str, data: Path, uri: str, artifacts: Path,
                 inputs: Mapping[str, str], cache: StageCache) -> StageResult:
    """Train the signal task as one recorded run; ``pred.pkl`` / ``label.pkl`` land in the stage folder."""
    def run(folder: Path) -> dict:
        from .signal import train_signal
        from .workflow import ensure_experiment, init_qlib

        init_qlib(data, uri)
        ensure_experiment(uri, name, artifacts)
        res = train_signal(task, name, folder)
        return {**res, "pred": PRED_FILE, "label": LABEL_FILE, "experiment_name": name}
    return cache.run(name, run, config={"task": task, "profile": profile}, inputs=inputs,
                     code=STAGE_CODE.get(name, STAGE_CODE["signal"]))


def _mlflow_run_kept(artifacts: Path) -> Callable[[dict], bool]:
    """``exists`` of a recorded-run stage: its run's artifact folder is still in the job's store."""
    return lambda o: (artifacts / str(o.get("experiment_name")) / str(o.get("recorder_id"))).is_dir()


def signal_analysis_stage(name: str, signal: StageResult, records: list, data: Path, uri: str, artifacts: Path,
                          inputs: Mapping[str, str], cache: StageCache) -> StageResult:
    """The recorders of the signal alone (IC, style profile, quantiles, crowding) as one recorded run."""
    def run(_folder: Path) -> dict:
        return recorded_run(data, uri, "signal_analysis", {}, signal.path("pred"), signal.path("label"), records,
                            recorder_name=name, artifacts=artifacts)
    return cache.run(name, run, config={"records": records}, inputs={"signal": signal.key, **inputs},
                     code=STAGE_CODE["signal_analysis"], exists=_mlflow_run_kept(artifacts))


def backtest_stage(spec: BacktestSpec, rendered: dict, name: str, job: Mapping, signal: StageResult,
                   inputs: Mapping[str, str], artifacts: Path, qcache: Path, cache: StageCache) -> StageResult:
    """One recorded backtest of benchmark ``name`` on the signal (template records + the job's extras)."""
    info = benchmark(name)
    cfg = spec.config(info, rendered=rendered)
    skip = [r["class"] for r in job.get("signal_records") or []]  # run once, in signal_analysis
    records = spec.records(cfg, info, job.get("records") or [], skip=skip)

    def run(_folder: Path) -> dict:
        return recorded_run(spec.data, spec.tracking_uri, cfg["experiment_name"], cfg, signal.path("pred"),
                            signal.path("label"), records, recorder_name=f"{info.name}_figure10",
                            artifacts=artifacts, dataset_cache=qcache,
                            params={"benchmark": info.name, "signal": str(signal.path("pred"))})
    return cache.run(f"backtest_{info.name}", run, config={"records": records, "pac": cfg["port_analysis_config"]},
                     inputs={"signal": signal.key, **inputs}, code=STAGE_CODE["backtest"],
                     exists=_mlflow_run_kept(artifacts))


def label_neutralisation_stage(signal: StageResult, strict: StageResult, analysis: StageResult, records: list,
                               data: Path, uri: str, artifacts: Path, cache: StageCache, log) -> StageResult | None:
    """Figure 20: the signal recorders on the ensemble trained with the ``strict`` label, beside the default."""
    if not any(r.get("class") == "QuantileRecord" for r in records):
        log("[label_neutralisation] QuantileRecord is not installed: no long-leg comparison (stage skipped)")
        return None

    def run(folder: Path) -> dict:
        from qlib.workflow import R

        res = recorded_run(data, uri, "signal_analysis", {}, strict.path("pred"), strict.path("label"), records,
                           recorder_name="signal_strict_label", artifacts=artifacts)
        rows = {}
        for name, rid in (("industry_size", analysis.outputs["recorder_id"]), ("strict", res["recorder_id"])):
            rec = R.get_recorder(recorder_id=rid, experiment_name="signal_analysis")
            rows[name] = load_artifact(rec, "summary.json", ARTIFACTS.QUANTILE)
        pd.DataFrame(rows).T.to_csv(folder / "label_neutralisation.csv")
        return {**res, "table": "label_neutralisation.csv"}
    res = cache.run("label_neutralisation", run, config={"records": records},
                    inputs={"signal": signal.key, "strict": strict.key, "analysis": analysis.key},
                    code=STAGE_CODE["label_neutralisation"])
    log(f"[label_neutralisation] long-leg summaries (default vs strict label): {res.path('table')}")
    return res


def report_stage(data: Path, uri: str, runs: dict, decisions: list[str], cache: StageCache) -> StageResult:
    """The HTML report of the signal and backtest runs: ``runs.json`` and ``decisions.json`` (what this run
    could not do) in the stage folder, so ``qlib-ext report <folder>/runs.json`` renders the same page;
    the dataset is described under the title (:func:`~qlib_ext.data.provenance.describe_dataset`)."""
    from ..analysis.report import DECISIONS_FILE, build_report

    listing = {"tracking_uri": uri,
               "cells": [{"cell": name if name.startswith("signal") else f"{benchmark(name).label} enhanced",
                          "experiment": r.get("experiment_name"), "recorder_id": r["recorder_id"]}
                         for name, r in runs.items()]}
    title = "qlib-ext main job"  # what the data are is the line under it, never the job's market name

    def run(folder: Path) -> dict:
        write_json_atomic(folder / "runs.json", listing)
        write_json_atomic(folder / DECISIONS_FILE, {"decisions": list(decisions)})
        build_report(str(folder / "runs.json"), folder / "index.html", uri=uri, title=title, data=data)
        return {"html": "index.html"}
    return cache.run("report", run, config={"runs": json.loads(json.dumps(listing, default=str)), "title": title,
                                            "decisions": list(decisions), "data": describe_dataset(data)},
                     code=STAGE_CODE["report"])


def write_headline(job: Mapping, data: Path, out: Path, perf: dict, decisions: list[str], log) -> pd.DataFrame:
    """Table 11 of our runs beside the report's: ``tables/headline.{csv,md}``, with what this run could not do."""
    from ..config import load_config

    table = headline(perf, load_config("sweeps", "report").get("reference"))
    (out / "tables").mkdir(exist_ok=True)
    write_text_atomic(out / "tables" / "headline.csv", table.to_csv())
    md = to_markdown(table, f"Table 11 layout: base constraints (figure 10), backtest {job['backtest'][0]}.."
                            f"{job['backtest'][1]}; ours on {describe_dataset(data)}, the report's on the real market")
    if decisions:
        md += "\n\n**What this run could not do**\n\n" + "\n".join(f"- {d}" for d in decisions)
    write_text_atomic(out / "tables" / "headline.md", md + "\n")
    log("\n" + md)
    return table


# ---------------------------------------------------------------------------------------------- the job
def run_job(preset: str = "default", data: str | Path | None = None, out: str | Path | None = None,
            profile: str = "fast", log: Callable[[str], None] = print, **overrides: Any) -> dict:
    """Run the main job (module docstring); returns ``{"stages": {name: StageResult}, "headline": DataFrame, ...}``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    overrides.pop("only", None)  # accepted for old callers; never used
    job = load_job(preset, data=str(data) if data else None, out=str(out) if out else None, **overrides)
    data, out = Path(job["data"]).expanduser().resolve(), Path(job["out"]).expanduser().resolve()
    if data == out:
        raise ValueError(f"--data and --out are the same folder {out}: the dataset and the job's outputs need two")
    with PidLock(out, what="qlib-ext run"):
        sweep(out / "tmp", "run_", "run temp folder")
        cache = StageCache(out / "stages", log=log)
        t_start = time.perf_counter()
        log(f"qlib-ext run: preset {preset}, profile {profile}, data {data}, out {out}")
        with private_tmpdir(out / "tmp", prefix="run_"):
            res = _sequence(job, data, out, profile, cache, log)
        total = time.perf_counter() - t_start
        times = pd.DataFrame([{"stage": r.name, "seconds": round(r.seconds, 1),
                               "cpu_seconds": None if r.cpu_seconds is None else round(r.cpu_seconds, 1),
                               "cached": r.cached, "peak_rss_mb": r.peak_rss_mb} for r in cache.results.values()]).set_index("stage")
        write_json_atomic(out / "timings.json", {"total_seconds": total,
                                                  "stages": times.reset_index().to_dict("records")})
        log(f"\nstage times (this run {total:.0f} s; a cached stage shows the time of the run that made it):\n"
            f"{times.to_string()}")
    res.update(stages=cache.results, seconds=total, out=str(out), timings=times)
    return res


def _sequence(job: dict, data: Path, out: Path, profile: str, cache: StageCache, log) -> dict:
    """The stages in order (module docstring)."""
    market = market_stage(job, data, cache, log)
    plan = _plan(job, data)
    decisions: list[str] = []
    if plan is not None:
        if plan.problems:
            raise ValueError(f"the job cannot run on {data}:\n{plan.format()}")
        job, decisions = plan.job, list(plan.decisions)
        log("[preflight] " + plan.format().replace("\n", "\n[preflight] "))
    upstream = {"market": market.key}
    if job.get("minute_factors"):
        upstream = {"minute_factors": minute_factors_stage(data, market, cache, log).key}
    risk = risk_stage(job, data, market, cache, log)
    store = {"risk": risk.key, "store": risk.outputs["meta"]}
    uri, artifacts = tracking(out)
    spec = backtest_spec(job, data, uri)
    rendered = spec.render()
    signal = signal_stage("signal", signal_task(job, data, uri, profile, rendered), profile, data, uri, artifacts,
                          {"market": market.key, **upstream}, cache)
    runs: dict[str, dict] = {}
    sig_records = [dict(r) for r in job.get("signal_records") or []]
    if sig_records:
        analysis = signal_analysis_stage("signal_analysis", signal, sig_records, data, uri, artifacts, store, cache)
        runs["signal"] = analysis.outputs
        if profile == "report" and (job.get("label_neutralisation") or {}).get("enabled", True):
            strict = signal_stage("signal_strict", signal_task(job, data, uri, profile, rendered, neutralize="strict"),
                                  profile, data, uri, artifacts, {"market": market.key, **upstream}, cache)
            ln = label_neutralisation_stage(signal, strict, analysis, sig_records, data, uri, artifacts, cache, log)
            if ln is not None:
                runs["signal_strict"] = ln.outputs
    # Qlib's dataset cache, shared by this run's backtests (the second benchmark reuses the first one's
    # exchange quote); emptied first, so a rebuilt dataset never meets an old cache
    qcache = out / "cache" / "qlib_dataset"
    shutil.rmtree(qcache, ignore_errors=True)
    perf: dict[str, dict] = {}
    for name in job["benchmarks"]:
        bt = backtest_stage(spec, rendered, name, job, signal, store, artifacts, qcache, cache)
        perf[benchmark(name).label] = bt.outputs["performance"]
        runs[benchmark(name).name] = bt.outputs
    report_path = str(report_stage(data, uri, runs, decisions, cache).path("html")) if job.get("report") else None
    table = write_headline(job, data, out, perf, decisions, log)
    log(f"\nsignal: IC {signal.outputs.get('ic', float('nan')):.4f}, rank IC "
        f"{signal.outputs.get('rank_ic', float('nan')):.4f} ({job['signal'].get('workflow') or 'template model'}, "
        f"{signal.outputs.get('first_day')}..{signal.outputs.get('last_day')})")
    log(f"MLflow: mlflow ui --backend-store-uri {uri}")
    if report_path:
        log(f"report: {report_path}")
    signal_out = {**signal.outputs, "pred": str(signal.path("pred")), "label": str(signal.path("label"))}
    write_json_atomic(out / "runs.json", {"tracking_uri": uri, "signal": signal_out, "backtests": runs,
                                          "report": report_path, "decisions": decisions})
    return {"headline": table, "runs": runs, "report": report_path, "tracking_uri": uri, "decisions": decisions,
            "signal": signal_out}
