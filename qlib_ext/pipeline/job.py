"""The main job (``qlib-ext run``): market -> minute factors -> risk -> signal -> backtests -> report.

Stages, each cached by :class:`~.cache.StageCache` (a rerun skips a stage whose config and inputs
are unchanged; a stage whose config changed reruns, and so does everything downstream of it):

``market``          build the synthetic market of the preset when the data folder holds no dataset
``minute_factors``  the minute-factor library into ``mf_*`` daily fields (``qlib_ext.ops``)
``risk``            the Barra-style risk store ``<data>/risk`` (``qlib_ext.risk``)
``signal``          rolling retraining of the template's model over the backtest span (:mod:`.signal`)
``backtest_<b>``    one recorded Qlib run per benchmark: the enhancement strategy with the report's base
                    constraints (figure 10) over the whole window, every record of the template + extras
``report``          the HTML report (``qlib-ext report``) of the backtest runs, when installed
``headline``        table 11 (CSI500 and CSI1000 beside the report's numbers), printed and saved

Job presets are ``configs/pipeline/<name>.yaml`` (``tiny``, ``default``, ``full``), loaded with
``qlib_ext.config.load_config("pipeline", name)``.  Everything the job writes goes under ``out``
(stage manifests ``out/stages/``, the signal, the sqlite MLflow store ``out/mlruns/``, tables); Qlib's
artifact downloads go to a private temp folder that is removed at the end.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import ARTIFACTS, benchmark
from .cache import StageCache, dir_fingerprint, file_hash, write_json_atomic
from .tables import headline, to_markdown
from .tempdir import private_tmpdir
from .workflow import (
    apply_overrides,
    backtest_records,
    ensure_experiment,
    find_workflow,
    init_qlib,
    render_workflow,
)

JOB_KEYS = ("market", "data", "out", "template", "benchmarks", "minute_factors", "risk", "signal", "backtest",
            "window", "records", "signal_records", "report", "label_neutralisation")
PROFILES = ("fast", "report")


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


def benchmark_overrides(template: Mapping, name: str) -> dict[str, Any]:
    """Override dict retargeting a template's strategy, backtest benchmark and PerformanceRecord label to ``name``."""
    info = benchmark(name)
    out: dict[str, Any] = {"port_analysis_config.strategy.kwargs.benchmark": info.name,
                           "port_analysis_config.backtest.benchmark": info.instrument,
                           "experiment_name": f"enhance_{info.name}"}
    for i, rec in enumerate(template.get("task", {}).get("record", []) or []):
        if rec.get("class") == "PerformanceRecord":
            out[f"task.record.{i}.kwargs.label"] = f"{info.label} enhanced"
    return out


def template_context(job: Mapping, data: Path, tracking_uri: str, pred: str | None = None) -> dict[str, str]:
    """The ``QLIB_EXT_*`` Jinja context of the enhancement templates for this job."""
    sig = job["signal"]
    bt = job["backtest"]
    ctx = {"QLIB_EXT_PROVIDER_URI": str(data), "QLIB_EXT_MLFLOW_URI": tracking_uri,
           "QLIB_EXT_TRAIN": f"{sig['train'][0]}:{sig['train'][1]}",
           "QLIB_EXT_VALID": f"{sig['valid'][0]}:{sig['valid'][1]}",
           "QLIB_EXT_TEST": f"{bt[0]}:{bt[1]}", "QLIB_EXT_RISK_STORE": str(data / "risk")}
    if pred:
        ctx["QLIB_EXT_PRED"] = pred
    return ctx


def _with_benchmark(record: Mapping, name: str) -> dict:
    """A copy of a record config with each ``<BENCHMARK>`` kwarg replaced by the benchmark's name."""
    rec = json.loads(json.dumps(dict(record)))
    kw = rec.get("kwargs") or {}
    rec["kwargs"] = {k: (name if v == "<BENCHMARK>" else v) for k, v in kw.items()}
    return rec


def _has_field(data: Path, field: str) -> bool:
    """Whether any instrument of the dataset has the daily field ``field``."""
    return any(True for _ in (data / "features").glob(f"*/{field}.day.bin"))


def has_dataset(data: Path) -> bool:
    return (data / "calendars" / "day.txt").is_file() and (data / "instruments" / "all.txt").is_file()


def run_job(preset: str = "default", data: str | Path | None = None, out: str | Path | None = None,
            profile: str = "fast", log: Callable[[str], None] = print, only: tuple[str, ...] | None = None,
            **overrides: Any) -> dict:
    """Run the main job (module docstring); returns ``{"stages": {name: StageResult}, "headline": DataFrame, ...}``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    job = load_job(preset, data=str(data) if data else None, out=str(out) if out else None, **overrides)
    data, out = Path(job["data"]).expanduser().resolve(), Path(job["out"]).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache = StageCache(out / "stages", log=log)
    t_start = time.perf_counter()
    log(f"qlib-ext run: preset {preset}, profile {profile}, data {data}, out {out}")
    with private_tmpdir(out / "tmp", prefix="run_"):
        res = _stages(job, data, out, profile, cache, log)
    total = time.perf_counter() - t_start
    times = pd.DataFrame([{"stage": r.name, "seconds": round(r.seconds, 1), "cached": r.cached,
                           "peak_rss_mb": r.peak_rss_mb} for r in cache.results.values()]).set_index("stage")
    write_json_atomic(out / "timings.json", {"total_seconds": total, "stages": times.reset_index().to_dict("records")})
    log(f"\nstage times (this run {total:.0f} s; a cached stage shows the time of the run that made it):\n"
        f"{times.to_string()}")
    res.update(stages=cache.results, seconds=total, out=str(out), timings=times)
    return res


def _stages(job: dict, data: Path, out: Path, profile: str, cache: StageCache, log) -> dict:
    from ..data.synth import build_market, load_market_config

    # market ---------------------------------------------------------------------------------------
    if has_dataset(data):
        market = cache.run("market", lambda: {"data": str(data), "built": False},
                           config={"data": str(data), "fingerprint": dir_fingerprint(data, ("calendars/day.txt",
                                                                                            "instruments/all.txt"))})
    else:
        cfg = load_market_config(job["market"])
        market = cache.run("market", lambda: {"data": str(build_market(job["market"], data, progress=True)),
                                              "built": True},
                           config={"data": str(data), "market": cfg}, force=True)
    # minute factors -------------------------------------------------------------------------------
    mf_inputs = {"market": market.key}
    if job.get("minute_factors"):
        from ..ops.library import resolve

        fields = [f.field for f in resolve()]
        present = all(_has_field(data, f) for f in fields)

        def _mf() -> dict:
            if present:  # already materialised (e.g. by `qlib-ext factors minute`): adopted as they are
                return {"fields": fields, "adopted": True}
            from ..ops.build import build_minute_factors

            return {"fields": build_minute_factors(data, progress=True), "adopted": False}
        minute = cache.run("minute_factors", _mf, config={"data": str(data), "fields": fields},
                           inputs=mf_inputs, exists=lambda o: all(_has_field(data, f) for f in o["fields"]))
        mf_inputs = {"minute_factors": minute.key}
    # risk -----------------------------------------------------------------------------------------
    risk_cfg = dict(job.get("risk") or {})
    meta = data / "risk" / "meta.json"
    adopt = meta.is_file()

    def _risk() -> dict:
        if adopt:  # an existing store of this dataset is reused, never rebuilt under another run's feet
            return {"store": str(meta.parent), "adopted": True}
        from ..risk import build_risk

        every = int(risk_cfg.get("qlib_every", 0))
        return {"store": str(build_risk(data, progress=True, export_qlib=every > 0, qlib_every=max(every, 1))),
                "adopted": False}
    risk = cache.run("risk", _risk, config={"data": str(data), **risk_cfg}, inputs={"market": market.key},
                     exists=lambda o: (Path(o["store"]) / "meta.json").is_file())
    # signal ---------------------------------------------------------------------------------------
    uri, artifacts = tracking(out)
    template_path = find_workflow(job["template"])
    ctx = template_context(job, data, uri)
    template = render_workflow(template_path, ctx)
    sig_task = signal_task(job, data, uri, profile, template)
    signal = cache.run("signal", lambda: _train(data, uri, artifacts, sig_task, out / "signal", "signal"),
                       config={"task": sig_task, "profile": profile},
                       inputs={"market": market.key, **mf_inputs}, exists=lambda o: Path(o["pred"]).is_file())
    pred_hash = file_hash(signal.outputs["pred"])
    risk_print = dir_fingerprint(Path(risk.outputs["store"]), ("meta.json",))  # a rebuilt store reruns the analyses
    runs: dict[str, dict] = {}
    sig_records = [dict(r) for r in job.get("signal_records") or []]
    if sig_records:
        def _sig_analysis() -> dict:
            from .workflow import run_backtest

            init_qlib(data, uri)
            ensure_experiment(uri, "signal_analysis", artifacts)
            res = run_backtest({}, signal.outputs["pred"], signal.outputs["label"], "signal_analysis",
                               recorder_name="signal_analysis", records=sig_records)
            return {**res, "experiment_name": "signal_analysis"}
        sa = cache.run("signal_analysis", _sig_analysis, config={"records": sig_records},
                       inputs={"signal": signal.key, "pred": pred_hash, "store": risk_print})
        runs["signal"] = sa.outputs
    if profile == "report" and (job.get("label_neutralisation") or {}).get("enabled", True):
        strict_task = signal_task(job, data, uri, profile, template, neutralize="strict")
        strict = cache.run("signal_strict", lambda: _train(data, uri, artifacts, strict_task, out / "signal_strict",
                                                           "signal_strict"),
                           config={"task": strict_task, "profile": profile},
                           inputs={"market": market.key, **mf_inputs}, exists=lambda o: Path(o["pred"]).is_file())
        ln = _label_neutralisation(signal, strict, sig_records, data, uri, artifacts, out, cache, log)
        if ln:
            runs["signal_strict"] = ln
    # backtests ------------------------------------------------------------------------------------
    perf: dict[str, dict] = {}
    # Qlib's dataset cache, shared by this run's backtests (the second benchmark reuses the first one's
    # exchange quote); emptied first, so a rebuilt dataset never meets an old cache
    qcache = out / "cache" / "qlib_dataset"
    shutil.rmtree(qcache, ignore_errors=True)
    for name in job["benchmarks"]:
        info = benchmark(name)
        cfg = apply_overrides(template, benchmark_overrides(template, name))
        extra = [_with_benchmark(r, info.name) for r in job.get("records") or []]
        for rec in cfg["task"]["record"]:
            if rec.get("class") == "PerformanceRecord":
                rec.setdefault("kwargs", {})["window"] = list(job["window"])
        # the signal's own analysis (SigAnaRecord: IC) runs once in `signal_analysis`, not in every backtest
        # (and so do the other recorders of the signal alone: StyleProfile, Quantile, Crowding)
        skip = [r["class"] for r in job.get("signal_records") or []]
        records = backtest_records(cfg, extra, skip=skip)
        for rec in records:
            if rec.get("class") == "PortAnaRecord":
                rec["kwargs"]["config"] = cfg["port_analysis_config"]

        def _bt(cfg=cfg, records=records, info=info) -> dict:
            from .workflow import run_backtest

            init_qlib(data, uri, dataset_cache=qcache)
            ensure_experiment(uri, cfg["experiment_name"], artifacts)
            res = run_backtest(cfg, signal.outputs["pred"], signal.outputs["label"], cfg["experiment_name"],
                               recorder_name=f"{info.name}_figure10", records=records,
                               params={"benchmark": info.name, "signal": signal.outputs["pred"]})
            return {**res, "experiment_name": cfg["experiment_name"]}
        bt = cache.run(f"backtest_{info.name}", _bt, config={"records": records, "pac": cfg["port_analysis_config"]},
                       inputs={"signal": signal.key, "pred": pred_hash, "risk": risk.key, "store": risk_print})
        perf[info.label] = bt.outputs["performance"]
        runs[info.name] = bt.outputs
    # report ---------------------------------------------------------------------------------------
    report_path = None
    if job.get("report"):
        report_path = _report_stage(job, out, uri, runs, cache, log)
    # headline -------------------------------------------------------------------------------------
    from ..config import load_config

    reference = load_config("sweeps", "report").get("reference")
    table = headline(perf, reference)
    (out / "tables").mkdir(exist_ok=True)
    table.to_csv(out / "tables" / "headline.csv")
    md = to_markdown(table, f"Table 11 layout: base constraints (figure 10), backtest {job['backtest'][0]}.."
                            f"{job['backtest'][1]}; ours on the synthetic market, the report's on the real market")
    (out / "tables" / "headline.md").write_text(md + "\n")
    log("\n" + md)
    log(f"\nsignal: IC {signal.outputs.get('ic', float('nan')):.4f}, rank IC "
        f"{signal.outputs.get('rank_ic', float('nan')):.4f} ({job['signal'].get('workflow') or 'template model'}, "
        f"{signal.outputs.get('first_day')}..{signal.outputs.get('last_day')})")
    log(f"MLflow: mlflow ui --backend-store-uri {uri}")
    if report_path:
        log(f"report: {report_path}")
    write_json_atomic(out / "runs.json", {"tracking_uri": uri, "signal": signal.outputs, "backtests": runs,
                                          "report": report_path})
    return {"headline": table, "runs": runs, "report": report_path, "tracking_uri": uri}


def signal_task(job: Mapping, data: Path, uri: str, profile: str, template: Mapping,
                neutralize: str | None = None) -> dict:
    """The qrun task of the signal stage: the ``signal.workflow``'s task (ensemble.yaml) rendered for this
    job, or the enhancement template's own model rolled with ``qlib_ext.models.Rolling``."""
    from .signal import rolling_task

    sig = job["signal"]
    bt = job["backtest"]
    if sig.get("workflow"):
        ctx = {"QLIB_EXT_PROVIDER_URI": str(data), "QLIB_EXT_MLFLOW_URI": uri,
               "QLIB_EXT_TRAIN": f"{sig['train'][0]}:{sig['train'][1]}",
               "QLIB_EXT_VALID": f"{sig['valid'][0]}:{sig['valid'][1]}", "QLIB_EXT_TEST": f"{bt[0]}:{bt[1]}",
               "QLIB_EXT_MODEL_PROFILE": profile, "QLIB_EXT_ROLL_STEP": sig.get("step", 244),
               "QLIB_EXT_NEUTRALIZE": neutralize or sig.get("neutralize", "industry_size")}
        task = dict(render_workflow(find_workflow(sig["workflow"]), ctx)["task"])
    else:
        task = {"model": template["task"]["model"], "dataset": template["task"]["dataset"]}
        task = rolling_task(task, sig.get("step", 244), sig.get("rolling", "sliding"))
    task.pop("record", None)
    return task


def _train(data: Path, uri: str, artifacts: Path, task: dict, folder: Path, experiment: str) -> dict:
    from .signal import train_signal

    init_qlib(data, uri)
    ensure_experiment(uri, experiment, artifacts)
    return train_signal(task, experiment, folder)


def _label_neutralisation(signal, strict, sig_records: list, data: Path, uri: str, artifacts: Path, out: Path,
                          cache: StageCache, log) -> dict | None:
    """Figure 20: the signal recorders (QuantileRecord: long-leg NAV relative to the universe) on the
    ensemble trained with the ``strict`` label, as one more recorded run beside ``signal_analysis``."""
    if not any(r.get("class") == "QuantileRecord" for r in sig_records):
        log("[label_neutralisation] QuantileRecord is not installed: no long-leg comparison (stage skipped)")
        return None

    def _go() -> dict:
        from ..analysis.base import load_artifact
        from .workflow import run_backtest

        init_qlib(data, uri)
        ensure_experiment(uri, "signal_analysis", artifacts)
        res = run_backtest({}, strict.outputs["pred"], strict.outputs["label"], "signal_analysis",
                           recorder_name="signal_strict_label", records=sig_records)
        from qlib.workflow import R

        rows = {}
        for name, rid in (("industry_size", signal_analysis_id(out)), ("strict", res["recorder_id"])):
            if rid is None:
                continue
            rec = R.get_recorder(recorder_id=rid, experiment_name="signal_analysis")
            rows[name] = load_artifact(rec, "summary.json", ARTIFACTS.QUANTILE)
        table = pd.DataFrame(rows).T
        (out / "tables").mkdir(exist_ok=True)
        table.to_csv(out / "tables" / "label_neutralisation.csv")
        return {**res, "experiment_name": "signal_analysis", "table": str(out / "tables" / "label_neutralisation.csv")}
    res = cache.run("label_neutralisation", _go, config={"records": sig_records},
                    inputs={"signal": signal.key, "strict": strict.key})
    log(f"[label_neutralisation] long-leg summaries (default vs strict label): {res.outputs['table']}")
    return res.outputs


def signal_analysis_id(out: Path) -> str | None:
    m = StageCache(out / "stages", log=lambda _: None).manifest("signal_analysis")
    return m["outputs"]["recorder_id"] if m else None


def _report_stage(job: dict, out: Path, uri: str, runs: dict, cache: StageCache, log) -> str | None:
    """The HTML report of the signal and backtest runs (``qlib-ext report`` of ``out/report/runs.json``)."""
    from ..analysis.report import build_report

    folder = out / ARTIFACTS.REPORT
    listing = {"tracking_uri": uri,
               "cells": [{"cell": name if name.startswith("signal") else f"{benchmark(name).label} enhanced",
                          "experiment": r.get("experiment_name"), "recorder_id": r["recorder_id"]}
                         for name, r in runs.items()]}

    def _go() -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "runs.json", listing)
        html = build_report(str(folder / "runs.json"), folder / "index.html", uri=uri,
                            title=f"qlib-ext main job ({job.get('market')} market)")
        return {"html": str(html)}
    res = cache.run("report", _go, config={"runs": json.loads(json.dumps(listing, default=str))},
                    exists=lambda o: Path(o["html"]).is_file())
    return res.outputs["html"]
