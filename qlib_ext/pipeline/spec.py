"""One place for each fact of a recorded backtest: :class:`BacktestSpec` and :func:`recorded_run`.

A :class:`BacktestSpec` holds what a backtest of the enhancement template depends on -- the template,
the dataset, the risk store, the backtest window (and the signal's segments when the template trains),
the performance window, the optimizer preset -- and owns:

* the ``QLIB_EXT_*`` Jinja context of the templates (:meth:`BacktestSpec.context`);
* the rendering (:meth:`BacktestSpec.render`) and the retargeting to a benchmark, taken from the one
  table :data:`qlib_ext.schema.BENCHMARKS` (strategy ``benchmark``, backtest index instrument,
  experiment name, ``PerformanceRecord`` label and window);
* the record list of a backtest (:meth:`BacktestSpec.records`): the template's records without the
  signal-only ones, the extra records (``<BENCHMARK>`` filled with the benchmark's name), and
  ``PortAnaRecord`` pointing at the backtest's own ``port_analysis_config``.

:func:`recorded_run` is the one "init Qlib -> ensure the experiment -> run the backtest" of the main
job's stages and of the sweep's cells.  ``job.py`` and ``sweep.py`` only build specs and sequence them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import IndexInfo, benchmark
from .workflow import apply_overrides, backtest_records, find_workflow, render_workflow

#: The placeholder a record's kwarg value is written as when it takes the benchmark's name.
BENCHMARK_PLACEHOLDER = "<BENCHMARK>"


def segment(dates: Sequence[str] | None) -> str | None:
    """``"start:end"`` of a ``[start, end]`` pair (the templates' date format), None when not given."""
    return None if not dates else f"{dates[0]}:{dates[1]}"


def with_benchmark(record: Mapping, name: str) -> dict:
    """A deep copy of a record config with each ``<BENCHMARK>`` kwarg replaced by the benchmark's name."""
    rec = copy.deepcopy(dict(record))
    kw = rec.get("kwargs") or {}
    if kw:
        rec["kwargs"] = {k: (name if v == BENCHMARK_PLACEHOLDER else v) for k, v in kw.items()}
    return rec


def benchmark_overrides(template: Mapping, info: IndexInfo | str) -> dict[str, Any]:
    """Override dict retargeting a rendered template to a benchmark (strategy, backtest index, label)."""
    info = info if isinstance(info, IndexInfo) else benchmark(info)
    out: dict[str, Any] = {"port_analysis_config.strategy.kwargs.benchmark": info.name,
                           "port_analysis_config.backtest.benchmark": info.instrument,
                           "experiment_name": f"enhance_{info.name}"}
    for i, rec in enumerate(template.get("task", {}).get("record", []) or []):
        if rec.get("class") == "PerformanceRecord":
            out[f"task.record.{i}.kwargs.label"] = f"{info.label} enhanced"
    return out


@dataclass(frozen=True)
class BacktestSpec:
    """What a recorded backtest of the enhancement template depends on (module docstring)."""

    template: str | Path
    data: Path
    backtest: tuple[str, str]
    tracking_uri: str
    risk_store: Path | None = None
    window: tuple[str, str] | None = None
    train: tuple[str, str] | None = None
    valid: tuple[str, str] | None = None
    pred: str | None = None
    extra: dict = field(default_factory=dict)  # further QLIB_EXT_* values (e.g. QLIB_EXT_OPTIM_PRESET)

    @property
    def store(self) -> Path:
        """The risk store the strategy and the recorders read (``<data>/risk`` unless given)."""
        return Path(self.risk_store) if self.risk_store is not None else Path(self.data) / "risk"

    def context(self) -> dict[str, str]:
        """The ``QLIB_EXT_*`` Jinja context of the templates (only what this spec sets)."""
        ctx = {"QLIB_EXT_PROVIDER_URI": str(self.data), "QLIB_EXT_MLFLOW_URI": self.tracking_uri,
               "QLIB_EXT_TRAIN": segment(self.train), "QLIB_EXT_VALID": segment(self.valid),
               "QLIB_EXT_TEST": segment(self.backtest), "QLIB_EXT_RISK_STORE": str(self.store),
               "QLIB_EXT_PRED": self.pred, **self.extra}
        return {k: str(v) for k, v in ctx.items() if v is not None}

    def render(self) -> dict:
        """The template rendered from :meth:`context` (``PerformanceRecord``'s window set when given)."""
        cfg = render_workflow(find_workflow(self.template), self.context())
        if self.window is not None:
            for rec in cfg.get("task", {}).get("record", []) or []:
                if rec.get("class") == "PerformanceRecord":
                    rec.setdefault("kwargs", {})["window"] = list(self.window)
        return cfg

    def config(self, bench: str | IndexInfo, overrides: Mapping[str, Any] | None = None,
               rendered: dict | None = None) -> dict:
        """The rendered template retargeted to ``bench``, then ``overrides`` (dotted paths) applied."""
        info = bench if isinstance(bench, IndexInfo) else benchmark(bench)
        base = rendered if rendered is not None else self.render()
        return apply_overrides(base, {**benchmark_overrides(base, info), **dict(overrides or {})})

    @staticmethod
    def records(cfg: Mapping, bench: str | IndexInfo, extra: Sequence[Mapping] = (),
                skip: Sequence[str] = ()) -> list[dict]:
        """A backtest's records: the template's without ``skip`` and SignalRecord, ``extra`` (benchmark
        filled) replacing those of the same class, PortAnaRecord on ``cfg``'s port_analysis_config."""
        info = bench if isinstance(bench, IndexInfo) else benchmark(bench)
        records = backtest_records(cfg, [with_benchmark(r, info.name) for r in extra], skip=skip)
        for rec in records:
            if rec.get("class") == "PortAnaRecord":
                rec["kwargs"]["config"] = cfg["port_analysis_config"]
        return records


def recorded_run(data: str | Path, tracking_uri: str, experiment: str, cfg: Mapping, pred: Any, label: Any,
                 records: Sequence[Mapping], recorder_name: str, artifacts: str | Path | None = None,
                 kernels: int | None = None, dataset_cache: str | Path | None = None,
                 params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None) -> dict:
    """Init Qlib on ``data`` -> ensure ``experiment`` (artifacts under ``artifacts``) -> one recorded backtest.

    Returns :func:`~.workflow.run_backtest`'s dict plus ``experiment_name``.
    """
    from .workflow import ensure_experiment, init_qlib, run_backtest

    init_qlib(data, tracking_uri, kernels=kernels, dataset_cache=dataset_cache)
    ensure_experiment(tracking_uri, experiment, artifacts)
    res = run_backtest(cfg, pred, label, experiment, recorder_name=recorder_name, records=records,
                       params=params, tags=tags)
    return {**res, "experiment_name": experiment}
