"""Reading one run for the page: its artifacts (figures, tables, ``summary.json``, ``missing.csv``),
metrics, params and Qlib's ``config`` artifact.  Nothing is recomputed.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...artifacts import MISSING_TABLE
from ...data.provenance import describe_dataset
from ...schema import ARTIFACTS
from ..registry import sections as section_titles

SHOWN = (".png", ".csv", ".json")
MAX_ROWS = 30


@dataclass
class Section:
    """One artifact folder of one run as the page shows it."""

    folder: str
    title: str
    figures: dict[str, str] = field(default_factory=dict)      # name -> data URI
    tables: dict[str, dict] = field(default_factory=dict)      # name -> {html, rows, cols, full}
    summary: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)      # optional input -> what was left out


@dataclass
class RunView:
    """One run as the page shows it: header, params, metrics and sections."""

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


def fmt(v: Any) -> str:
    """A cell as the page shows it: 4 significant digits, thousands separated above 1e5, NaN blank."""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def table_html(df: pd.DataFrame, max_rows: int = MAX_ROWS) -> dict:
    """``{html, rows, cols, full}``: the table, or its first and last rows when it is longer than ``max_rows``."""
    full = len(df) <= max_rows
    shown = df if full else pd.concat([df.head(max_rows // 2), df.tail(max_rows // 2)])
    html = shown.to_html(classes="tbl", border=0, na_rep="", float_format=fmt, escape=True)
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


def dataset_caption(config: dict) -> str:
    """What the run's data are (:func:`qlib_ext.data.provenance.describe_dataset` of its provider_uri), or ""."""
    uri = (config.get("qlib_init") or {}).get("provider_uri")
    if isinstance(uri, dict):       # Qlib allows {freq: path}
        uri = uri.get("day") or next(iter(uri.values()), None)
    if not uri or not Path(str(uri)).expanduser().is_dir():
        return ""
    return describe_dataset(str(uri))


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
        "data": dataset_caption(config),
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
    titles = section_titles()
    folders = [f for f in titles if any(p.startswith(f + "/") for p in files)]
    folders += sorted({p.split("/", 1)[0] for p in files} - set(folders))
    sections: dict[str, Section] = {}
    with tempfile.TemporaryDirectory(prefix="qlib_ext_report_") as tmp:
        for folder in folders:
            sec = Section(folder, titles.get(folder, folder.replace("_", " ").capitalize()))
            for path in sorted(p for p in files if p.startswith(folder + "/")):
                local = Path(recorder.download_artifact(path, dst_path=tmp))
                name = path[len(folder) + 1:].rsplit(".", 1)[0]
                if path.endswith(".png"):
                    sec.figures[name] = _data_uri(local)
                elif path.endswith(".csv") and name == MISSING_TABLE:
                    sec.missing = {str(k): str(v) for k, v in pd.read_csv(local, index_col=0)["effect"].items()}
                elif path.endswith(".csv"):
                    sec.tables[name] = table_html(pd.read_csv(local, index_col=0), max_rows)
                elif name == "summary":
                    sec.summary = json.loads(local.read_text())
            sections[folder] = sec
    metrics = {k: float(v) for k, v in sorted(recorder.list_metrics().items())}
    params = {k: str(v) for k, v in sorted(recorder.list_params().items())}
    return RunView(label, _header(recorder, _config(recorder), label), params, metrics, sections)


