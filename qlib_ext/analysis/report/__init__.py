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

The page says what the data are (each run's dataset through
:func:`qlib_ext.data.provenance.describe_dataset`; never "synthetic" for data without our synthetic
``meta/``), lists under each section the optional inputs its recorder had to leave out (the section's
``missing.csv``), and opens with a "What this run could not do" block when given decision lines:
``build_report(..., decisions=[...])`` or a ``decisions.json`` beside the sweep/runs file
(:func:`~.runs.read_decisions`; both are shown).  Section titles and order come from the recorder
registry (:func:`qlib_ext.analysis.registry.sections`).

Package versions in the header are those of the rendering environment (runs do not record them).
Modules: :mod:`.collect` (reading a run), :mod:`.render` (the page), :mod:`.runs` (finding runs).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...data.provenance import describe_dataset
from ...schema import ARTIFACTS
from .collect import MAX_ROWS, SHOWN, RunView, Section, collect_run, dataset_caption, table_html
from .render import TEMPLATE, render, versions
from .runs import DECISIONS_FILE, DEFAULT_URI, read_decisions, resolve_runs, use_tracking_uri

REPORT_FILE = "report.html"

__all__ = ["DECISIONS_FILE", "DEFAULT_URI", "MAX_ROWS", "REPORT_FILE", "SHOWN", "TEMPLATE", "RunView", "Section",
           "build_report", "collect_run", "dataset_caption", "read_decisions", "render", "resolve_runs",
           "save_report", "table_html", "use_tracking_uri", "versions"]


def build_report(target: str, out: str | Path, uri: str | None = None, all_runs: bool = False,
                 save_artifact: bool = False, title: str | None = None,
                 decisions: Sequence[str] | None = None, data: str | Path | None = None) -> Path:
    """Render ``target`` (see :func:`resolve_runs`) to ``out``; optionally log it into the run it shows.

    decisions: lines of the "What this run could not do" block, after those of a ``decisions.json``
    beside ``target`` (module docstring).  data: the dataset directory, described under the title
    (:func:`~qlib_ext.data.provenance.describe_dataset`) when the runs' own configs name none.
    """
    runs = resolve_runs(target, uri, all_runs)
    lines = list(dict.fromkeys([*read_decisions(target), *(decisions or ())]))
    html = render([collect_run(rec, label) for label, rec in runs], title, decisions=lines,
                  data=describe_dataset(data) if data is not None else None)
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
