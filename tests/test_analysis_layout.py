"""The shape of ``analysis/`` (issue 20): pure metrics, one plotting convention, records that import no
other record, the registry as the one list of recorders, and nothing below ``analysis/`` importing it."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import qlib_ext
from qlib_ext.analysis import metrics, plots, records, registry

PKG = Path(qlib_ext.__file__).parent
ANALYSIS = PKG / "analysis"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in a file (level 0: absolute)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def test_metrics_import_neither_qlib_nor_matplotlib_and_do_no_file_io():
    mods = [f"qlib_ext.analysis.metrics.{m.name}" for m in pkgutil.iter_modules(metrics.__path__)]
    assert len(mods) >= 9
    code = (f"import sys, json\nfor m in {mods!r}: __import__(m)\n"
            "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('qlib', 'matplotlib'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    for path in (ANALYSIS / "metrics").glob("*.py"):
        for level, mod in _imports(path):
            assert not (level == 0 and mod.split(".")[0] in ("qlib", "matplotlib", "mlflow")), (path.name, mod)
            assert level in (0, 1), f"{path.name} imports outside metrics/: {'.' * level}{mod}"
        io = _calls(path) & {"open", "read_csv", "read_parquet", "read_pickle", "to_csv", "to_parquet",
                             "to_pickle", "read_text", "write_text"}
        assert not io, f"{path.name} does file I/O: {io}"


def test_every_plot_takes_and_returns_an_ax():
    from matplotlib.figure import Figure

    fns = {n: f for n, f in vars(plots).items() if n.startswith("plot_")}
    assert len(fns) == 11
    for name, fn in fns.items():
        assert next(iter(inspect.signature(fn).parameters)) == "ax", name
    ax = Figure().subplots()
    import pandas as pd

    navs = pd.DataFrame({"excess": [1.0, 1.01, 0.99]}, index=pd.bdate_range("2024-01-02", periods=3))
    assert plots.plot_excess_nav(ax, navs) is ax
    for path in (ANALYSIS / "records").glob("*.py"):    # the old figure-returning helper is gone
        assert "performance_plot" not in path.read_text()


def test_records_import_no_other_record_and_never_print():
    assert {m.name for m in pkgutil.iter_modules(records.__path__)} >= {"base", "performance", "market_review"}
    for path in (ANALYSIS / "records").glob("*.py"):
        for level, mod in _imports(path):
            if level == 1:
                assert mod in ("base", ""), f"records/{path.name} imports records.{mod}"
            assert not mod.startswith("qlib_ext.analysis.records.") or mod.endswith(".base"), (path.name, mod)
    for path in ANALYSIS.rglob("*.py"):
        assert "print" not in _calls(path), f"{path.relative_to(PKG)} prints (log instead)"


def test_strategy_and_artifacts_sit_below_analysis():
    for path in [*(PKG / "strategy").glob("*.py"), PKG / "artifacts.py", PKG / "data" / "provenance.py"]:
        for _level, mod in _imports(path):
            assert "analysis" not in mod, f"{path.relative_to(PKG)} imports {mod}"


def test_registry_lists_every_builtin_and_the_public_paths_resolve():
    import qlib_ext.analysis as analysis

    entries = {e.name: e for e in registry.recorders()}
    modules = {e.cls.__module__.rsplit(".", 1)[1] for e in entries.values()
               if e.cls.__module__.startswith("qlib_ext.analysis.records.")}
    assert modules == {m.name for m in pkgutil.iter_modules(records.__path__)} - {"base"}   # one recorder a module
    builtin = {"PerformanceRecord", "StyleProfileRecord", "QuantileRecord", "CrowdingRecord", "HoldingsProfileRecord",
               "AttributionRecord", "StyleTimingRecord", "MarketReviewRecord"}
    assert builtin <= set(entries) and builtin <= set(dir(analysis))
    for name in builtin:                                     # qrun: {class: X, module_path: qlib_ext.analysis}
        cls = getattr(importlib.import_module("qlib_ext.analysis"), name)
        assert entries[name].cls is cls and entries[name].folder == cls.artifact_path
    folders = list(registry.sections())
    assert folders[:3] == ["market_review", "performance", "holdings"] and folders[-1] == "optim"
    with pytest.raises(AttributeError, match="NoSuchRecord"):
        analysis.NoSuchRecord  # noqa: B018
    # old module paths other code imports
    from qlib_ext.analysis.base import load_artifact, save_artifacts
    from qlib_ext.analysis.holdings_record import HEADLINE
    from qlib_ext.artifacts import load_artifact as one_loader

    assert load_artifact is one_loader and callable(save_artifacts) and HEADLINE


def test_default_records_for_the_pipeline():
    sig = registry.default_records(run="signal")
    assert [r["class"] for r in sig] == ["StyleProfileRecord", "QuantileRecord", "CrowdingRecord"]
    bt = registry.default_records(run="backtest", benchmark="csi1000", exclude=("PerformanceRecord",))
    assert bt == [{"class": "MarketReviewRecord", "module_path": "qlib_ext.analysis"},
                  {"class": "HoldingsProfileRecord", "module_path": "qlib_ext.analysis"},
                  {"class": "AttributionRecord", "module_path": "qlib_ext.analysis", "kwargs": {"benchmark": "csi1000"}},
                  {"class": "StyleTimingRecord", "module_path": "qlib_ext.analysis", "kwargs": {"benchmark": "csi1000"}}]
    no_risk = registry.default_records(needs=("signal", "backtest"))
    assert {r["class"] for r in no_risk} == {"MarketReviewRecord", "PerformanceRecord", "QuantileRecord", "CrowdingRecord"}
    with pytest.raises(ValueError, match="unknown input"):
        registry.default_records(needs=("futures_tick",))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(title="clash", order=1)(type("Clash", (), {"artifact_path": "crowding"}))
