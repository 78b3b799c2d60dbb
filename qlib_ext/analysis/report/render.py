"""Rendering the page: one self-contained HTML document (inline CSS, figures as ``data:`` URIs)."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Sequence
from importlib import resources

from . import templates
from .collect import RunView, Section, fmt

TEMPLATE = "report.html.j2"
VERSIONS = ("qlib-ext", "pyqlib", "mlflow", "pandas", "numpy", "matplotlib", "cvxpy", "clarabel", "lightgbm", "torch")


def versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on (rendering environment)."""
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


def render(runs: Sequence[RunView], title: str | None = None, decisions: Sequence[str] = (),
           data: str | None = None) -> str:
    """The page (HTML text) of one or several runs; sections, figures and tables are unions over the runs.

    The title (default ``qlib-ext report: <runs>``) is followed by what the data are (each run's
    dataset, :func:`qlib_ext.data.provenance.describe_dataset`).  decisions: lines of the "What this
    run could not do" block (the pipeline's degrade decisions); the block is left out when empty.
    data: a description of the data for runs whose config names no dataset (shown when none does).
    """
    import jinja2

    if not runs:
        raise ValueError("report: no run to render")
    source = resources.files(templates).joinpath(TEMPLATE).read_text(encoding="utf-8")
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
        summary = [(k, [fmt(s.summary.get(k)) if s.summary.get(k) is not None else "" for s in secs])
                   for k in keys]
        missing = list(dict.fromkeys((k, v) for s in secs for k, v in s.missing.items()))
        layout.append({"folder": f, "title": secs[0].title, "summary": summary, "runs": have, "missing": missing,
                       "figures": [(n, [s.figures.get(n) if s else None for s in secs]) for n in _names(secs, "figures")],
                       "tables": [(n, [s.tables.get(n) if s else None for s in secs]) for n in _names(secs, "tables")]})
    keys = list(dict.fromkeys(k for r in runs for k in r.metrics))
    metrics = [(k, [fmt(r.metrics.get(k, float("nan"))) for r in runs]) for k in keys]
    title = title or ("qlib-ext report: " + ", ".join(r.label for r in runs))
    captions = list(dict.fromkeys(r.header["data"] for r in runs if r.header.get("data")))
    captions = captions or ([data] if data else [])
    return env.from_string(source).render(
        title=title, runs=runs, layout=layout, metrics=metrics, versions=versions(), data=captions,
        decisions=[str(d) for d in decisions],
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"), markup=jinja2.utils.markupsafe.Markup)
