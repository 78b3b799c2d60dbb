"""The HTML report: one self-contained page of a run's saved figures and tables, or of several runs
side by side (SPEC section 7; ``qlib-ext report``).

It reads only what the runs stored, through Qlib's ``R`` API and the MLflow store -- figures (PNG,
embedded as ``data:`` URIs), tables (CSV, as HTML tables), ``summary.json`` of each recorder folder,
the run's metrics, params and Qlib's ``config`` artifact (dataset, period, strategy) -- and recomputes
nothing.  The page has no external reference (no script, stylesheet or image URL).

Targets (:func:`resolve_runs`):

* an experiment name: its latest run (``all_runs=True``: every run, side by side);
* a recorder (MLflow run) id;
* a sweep: a ``sweep.json`` file, a directory holding one, or a directory with one sub-folder per
  cell each holding a ``run.json``.  Format::

      {"tracking_uri": "sqlite:///mlruns.db",            # optional; relative sqlite paths resolve
       "cells": [{"cell": "floor=0.8", "experiment": "enhance_csi1000", "recorder_id": "<run id>"},
                 ...]}                                    #   against the file's folder

  (``run.json`` holds one cell object, optionally with its own ``tracking_uri``).  ``cell`` labels
  the column; ``experiment`` is optional when ``recorder_id`` is given.

Package versions in the header are those of the rendering environment (runs do not record them).
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import ARTIFACTS

TEMPLATE = "report.html.j2"
REPORT_FILE = "report.html"
#: Recorder folders in page order, with the report figures/tables they reproduce.
SECTIONS: dict[str, str] = {
    ARTIFACTS.MARKET_REVIEW: "Market review (figures 1-4)",
    ARTIFACTS.PERFORMANCE: "Performance (tables 11, 23, 30, 33, 35; figures 12-15, 24)",
    ARTIFACTS.HOLDINGS: "Holdings profile (tables 23, 31, 34, 36)",
    ARTIFACTS.STYLE_PROFILE: "Signal style profile (figures 16-18)",
    ARTIFACTS.QUANTILE: "Quantile backtests (figures 19-20)",
    ARTIFACTS.CROWDING: "Crowding (figures 21-22)",
    ARTIFACTS.ATTRIBUTION: "Return attribution (figures 25-26)",
    ARTIFACTS.STYLE_TIMING: "Style timing (figure 27, table 28, figure 29)",
    ARTIFACTS.OPTIM: "Optimizer diagnostics",
}
SHOWN = (".png", ".csv", ".json")
MAX_ROWS = 30
#: The workflows' default tracking URI (``sqlite:///mlruns.db`` of the current directory).
DEFAULT_URI = "sqlite:///mlruns.db"
VERSIONS = ("qlib-ext", "pyqlib", "mlflow", "pandas", "numpy", "matplotlib", "cvxpy", "clarabel", "lightgbm", "torch")


@dataclass
class Section:
    folder: str
    title: str
    figures: dict[str, str] = field(default_factory=dict)      # name -> data URI
    tables: dict[str, dict] = field(default_factory=dict)      # name -> {html, rows, cols, full}
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunView:
    label: str
    header: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    sections: dict[str, Section]


# ----------------------------------------------------------------------------- reading a run
def _walk(recorder: Any, folder: str | None = None, depth: int = 0) -> list[str]:
    """Artifact paths under ``folder`` (files only), recursing into sub-folders."""
    out = []
    for path in recorder.list_artifacts(folder):
        if Path(path).suffix:
            out.append(path)
        elif depth < 4:
            inner = [p for p in recorder.list_artifacts(path) if p != path]
            out.extend(_walk(recorder, path, depth + 1) if inner else [])
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def table_html(df: pd.DataFrame, max_rows: int = MAX_ROWS) -> dict:
    """``{html, rows, cols, full}``: the table, or its first and last rows when it is longer than ``max_rows``."""
    full = len(df) <= max_rows
    shown = df if full else pd.concat([df.head(max_rows // 2), df.tail(max_rows // 2)])
    html = shown.to_html(classes="tbl", border=0, na_rep="", float_format=_fmt, escape=True)
    return {"html": html, "rows": len(df), "cols": df.shape[1], "full": full}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _config(recorder: Any) -> dict:
    """Qlib's ``config`` artifact (qrun saves the rendered YAML as a pickle), or {}."""
    if "config" not in recorder.list_artifacts():
        return {}
    with tempfile.TemporaryDirectory(prefix="qlib_ext_report_") as tmp:
        return pd.read_pickle(recorder.download_artifact("config", dst_path=tmp))


def _find(obj: Any, key: str) -> Any:
    """First value of ``key`` anywhere in a nested dict/list."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            hit = _find(v, key)
            if hit is not None:
                return hit
    return None


def _header(recorder: Any, config: dict, label: str) -> dict[str, str]:
    info = getattr(recorder, "info", {}) or {}
    backtest = _find(config, "backtest") or {}
    strategy = _find(config, "strategy") or {}
    model = _find(config.get("task", {}), "model") or {}
    kwargs = strategy.get("kwargs", {}) if isinstance(strategy, dict) else {}
    head = {
        "run": label,
        "experiment": str(getattr(recorder, "experiment_id", "")),
        "recorder id": str(recorder.id),
        "status": str(info.get("status", getattr(recorder, "status", ""))),
        "started": str(info.get("start_time", "")),
        "dataset": str((config.get("qlib_init") or {}).get("provider_uri", "")),
        "market": str(config.get("market", "")),
        "benchmark": str(config.get("benchmark", kwargs.get("benchmark", ""))),
        "backtest": f"{backtest.get('start_time', '')} .. {backtest.get('end_time', '')}" if backtest else "",
        "model": str(model.get("class", "")) if isinstance(model, dict) else "",
        "strategy": str(strategy.get("class", "")) if isinstance(strategy, dict) else "",
        "strategy kwargs": ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "signal"),
    }
    return {k: v for k, v in head.items() if v not in ("", " .. ")}


def collect_run(recorder: Any, label: str | None = None, max_rows: int = MAX_ROWS) -> RunView:
    """Everything the page shows of one run, read from its artifacts, metrics and params."""
    label = label or getattr(recorder, "name", None) or str(recorder.id)
    files = [p for p in _walk(recorder) if p.lower().endswith(SHOWN) and "/" in p
             and not p.startswith(f"{ARTIFACTS.REPORT}/")]
    folders = [f for f in SECTIONS if any(p.startswith(f + "/") for p in files)]
    folders += sorted({p.split("/", 1)[0] for p in files} - set(folders))
    sections: dict[str, Section] = {}
    with tempfile.TemporaryDirectory(prefix="qlib_ext_report_") as tmp:
        for folder in folders:
            sec = Section(folder, SECTIONS.get(folder, folder.replace("_", " ").capitalize()))
            for path in sorted(p for p in files if p.startswith(folder + "/")):
                local = Path(recorder.download_artifact(path, dst_path=tmp))
                name = path[len(folder) + 1:].rsplit(".", 1)[0]
                if path.endswith(".png"):
                    sec.figures[name] = _data_uri(local)
                elif path.endswith(".csv"):
                    sec.tables[name] = table_html(pd.read_csv(local, index_col=0), max_rows)
                elif name == "summary":
                    sec.summary = json.loads(local.read_text())
            sections[folder] = sec
    metrics = {k: float(v) for k, v in sorted(recorder.list_metrics().items())}
    params = {k: str(v) for k, v in sorted(recorder.list_params().items())}
    return RunView(label, _header(recorder, _config(recorder), label), params, metrics, sections)


def versions() -> dict[str, str]:
    out = {}
    for dist in VERSIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _names(secs: Sequence[Section | None], attr: str) -> list[str]:
    """Figure or table names of a section over several runs, in first-seen order."""
    return list(dict.fromkeys(n for s in secs if s for n in getattr(s, attr)))


def render(runs: Sequence[RunView], title: str | None = None) -> str:
    """The page (HTML text) of one or several runs; sections, figures and tables are unions over the runs."""
    import jinja2

    if not runs:
        raise ValueError("report: no run to render")
    source = resources.files("qlib_ext.analysis").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    folders: list[str] = []
    for r in runs:
        folders += [f for f in r.sections if f not in folders]
    layout = []
    for f in folders:
        # a section is laid out over the runs that have it (a signal-only section spans the page)
        have = [r for r in runs if r.sections.get(f)]
        secs = [r.sections[f] for r in have]
        keys = list(dict.fromkeys(k for s in secs for k in s.summary))
        summary = [(k, [_fmt(s.summary.get(k)) if s.summary.get(k) is not None else "" for s in secs])
                   for k in keys]
        layout.append({"folder": f, "title": secs[0].title, "summary": summary, "runs": have,
                       "figures": [(n, [s.figures.get(n) if s else None for s in secs]) for n in _names(secs, "figures")],
                       "tables": [(n, [s.tables.get(n) if s else None for s in secs]) for n in _names(secs, "tables")]})
    keys = list(dict.fromkeys(k for r in runs for k in r.metrics))
    metrics = [(k, [_fmt(r.metrics.get(k, float("nan"))) for r in runs]) for k in keys]
    title = title or ("qlib-ext report: " + ", ".join(r.label for r in runs))
    return env.from_string(source).render(
        title=title, runs=runs, layout=layout, metrics=metrics, versions=versions(),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"), markup=jinja2.utils.markupsafe.Markup)


# ----------------------------------------------------------------------------- finding runs
def use_tracking_uri(uri: str | None) -> None:
    """Point Qlib's ``R`` at an MLflow tracking URI (a directory means ``<dir>/mlflow.db`` as in
    :func:`qlib_ext.mlflow_exp_manager`); None keeps the current one (after ``qlib.init``), else
    :data:`DEFAULT_URI`."""
    from qlib.workflow import QlibRecorder, R
    from qlib.workflow.expm import MLflowExpManager

    if uri is None:
        if R.__dict__.get("_provider") is not None:
            return
        uri = DEFAULT_URI
    if "://" not in uri:
        path = Path(uri).expanduser().resolve()
        if path.is_dir():
            path = path / "mlflow.db"
        if not path.is_file():
            raise FileNotFoundError(f"MLflow store {path} not found (give --mlruns sqlite:///... or a directory)")
        uri = f"sqlite:///{path}"
    R.register(QlibRecorder(MLflowExpManager(uri=uri, default_exp_name="qlib_ext")))


def _sweep_entries(target: Path) -> tuple[list[dict], str | None, Path]:
    if target.is_dir() and (target / "sweep.json").is_file():
        target = target / "sweep.json"
    if target.is_file():
        spec = json.loads(target.read_text())
        cells = spec["cells"] if isinstance(spec, dict) else spec
        return list(cells), (spec.get("tracking_uri") if isinstance(spec, dict) else None), target.parent
    cells = [json.loads(p.read_text()) for p in sorted(target.glob("*/run.json"))]
    if not cells:
        raise FileNotFoundError(f"sweep {target}: no sweep.json and no */run.json")
    return cells, cells[0].get("tracking_uri"), target


def _resolve_uri(uri: str | None, base: Path) -> str | None:
    if uri and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{(base / uri[len('sqlite:///'):]).resolve()}"
    return uri


def resolve_runs(target: str, uri: str | None = None, all_runs: bool = False) -> list[tuple[str, Any]]:
    """``[(label, recorder)]`` of an experiment name, a recorder id or a sweep (module docstring)."""
    from qlib.workflow import R

    path = Path(target)
    if path.exists() and (path.is_dir() or path.suffix == ".json"):
        cells, file_uri, base = _sweep_entries(path)
        use_tracking_uri(uri or _resolve_uri(file_uri, base))
        out = []
        for c in cells:
            if "recorder_id" not in c:
                raise ValueError(f"sweep {target}: cell {c!r} has no recorder_id")
            out.append((str(c.get("cell", c["recorder_id"])), _recorder_by_id(c["recorder_id"], c.get("experiment"))))
        return out
    use_tracking_uri(uri)
    exps = R.list_experiments()
    if target in exps:
        recs = sorted(exps[target].list_recorders().values(), key=lambda r: str(r.info.get("start_time")))
        if not recs:
            raise ValueError(f"experiment {target!r} has no runs")
        chosen = recs if all_runs else recs[-1:]
        return [(f"{target}/{r.info.get('name') or r.id}", r) for r in chosen]
    try:
        rec = _recorder_by_id(target, None)
    except ValueError:
        raise ValueError(f"{target!r} is neither an experiment ({sorted(exps)}), a recorder id nor a sweep file/dir") from None
    return [(str(rec.info.get("name") or rec.id), rec)]


def _recorder_by_id(rid: str, experiment: str | None) -> Any:
    from qlib.workflow import R

    if experiment:
        return R.get_recorder(recorder_id=rid, experiment_name=experiment)
    try:
        run = R.exp_manager.client.get_run(rid)   # the MLflow run names its experiment
    except Exception as exc:  # MLflow raises its own error for an unknown run id
        raise ValueError(f"recorder {rid!r} not found in the tracking store") from exc
    return R.get_recorder(recorder_id=rid, experiment_id=run.info.experiment_id)


# ----------------------------------------------------------------------------- entry points
def build_report(target: str, out: str | Path, uri: str | None = None, all_runs: bool = False,
                 save_artifact: bool = False, title: str | None = None) -> Path:
    """Render ``target`` (see :func:`resolve_runs`) to ``out``; optionally log it into the run it shows."""
    runs = resolve_runs(target, uri, all_runs)
    html = render([collect_run(rec, label) for label, rec in runs], title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    if save_artifact:
        if len(runs) != 1:
            raise ValueError(f"--save-artifact needs exactly one run, got {len(runs)}")
        save_report(runs[0][1], html)
    return out


def save_report(recorder: Any, html: str) -> str:
    """Log ``html`` as ``report/report.html`` of ``recorder``; returns the artifact path."""
    with tempfile.TemporaryDirectory(prefix="qlib_ext_report_") as tmp:
        path = Path(tmp) / REPORT_FILE
        path.write_text(html, encoding="utf-8")
        recorder.log_artifact(str(path), artifact_path=ARTIFACTS.REPORT)
    return f"{ARTIFACTS.REPORT}/{REPORT_FILE}"
