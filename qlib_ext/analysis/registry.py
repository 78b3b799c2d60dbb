"""The recorder registry: one entry per recorder, written by the recorder itself.

A recorder class registers with the :func:`register` decorator beside its definition::

    @register(title="Crowding (figures 21-22)", order=60, needs=("signal",), run="signal")
    class CrowdingRecord(AnalysisRecord):
        artifact_path = ARTIFACTS.CROWDING

An entry holds the class, its artifact folder, the report section's title and order, the inputs it
needs (``signal``: ``pred.pkl``; ``backtest``: ``PortAnaRecord``'s report and positions; ``risk``: the
risk store) and those it uses when present (``optional``), the run the pipeline puts it in by default
(``signal`` or ``backtest``) and default kwargs (:data:`BENCHMARK` stands for the job's benchmark).

Readers: ``qlib_ext.analysis`` (its public recorder names), the HTML report (section titles and
order; :func:`sections`), the generated workflows and the pipeline's default records
(:func:`default_records`).  Built-in recorders are the modules of :mod:`qlib_ext.analysis.records`
(found by listing the package, so a new built-in is one file); other packages register on import,
or through the ``qlib_ext.recorders`` entry-point group (``name = "module:Class"``) so a separate
process (``qlib-ext report``) finds them too.  Artifact folders written by something other than a
recorder (the strategy's ``optim/``) are named with :func:`register_section`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schema import ARTIFACTS

#: what a recorder may need
INPUTS = ("signal", "backtest", "risk")
#: runs of the main job a recorder can belong to
RUNS = ("signal", "backtest")
#: placeholder in default kwargs for the job's benchmark (csi500 / csi1000 / csi300)
BENCHMARK = "<BENCHMARK>"
ENTRY_POINT_GROUP = "qlib_ext.recorders"
PUBLIC_MODULE = "qlib_ext.analysis"


@dataclass(frozen=True)
class RecorderEntry:
    """One recorder: class, artifact folder, report section (title, order) and inputs."""

    cls: type
    folder: str
    title: str
    order: float
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    run: str = "backtest"
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The class name (what a YAML's ``class:`` says)."""
        return self.cls.__name__

    @property
    def module_path(self) -> str:
        """The ``module_path`` a YAML gives: ``qlib_ext.analysis`` for built-ins, else the class's module."""
        return PUBLIC_MODULE if self.cls.__module__.startswith(f"{PUBLIC_MODULE}.records.") else self.cls.__module__

    def record_config(self, benchmark: str | None = None, **kwargs: Any) -> dict:
        """``{class, module_path[, kwargs]}`` for a qrun ``record:`` list; :data:`BENCHMARK` is replaced by
        ``benchmark`` (a default kwarg that needs it is left out when ``benchmark`` is None)."""
        kw = {k: (benchmark if v == BENCHMARK else v) for k, v in self.kwargs.items()
              if not (v == BENCHMARK and benchmark is None)}
        kw.update(kwargs)
        out: dict[str, Any] = {"class": self.name, "module_path": self.module_path}
        if kw:
            out["kwargs"] = kw
        return out


@dataclass(frozen=True)
class Section:
    """A report section of an artifact folder no recorder writes (e.g. the strategy's diagnostics)."""

    folder: str
    title: str
    order: float


_RECORDERS: dict[str, RecorderEntry] = {}
_SECTIONS: dict[str, Section] = {}
_LOADED = {"builtins": False, "entry_points": False}


def _check_inputs(what: str, values: Iterable[str], allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    values = tuple(values)
    if allowed is not None:
        bad = [v for v in values if v not in tuple(allowed)]
        if bad:
            raise ValueError(f"{what}: unknown input(s) {bad}; choose from {list(allowed)}")
    return values


def register(title: str, order: float, needs: Iterable[str] = (), optional: Iterable[str] = (),
             run: str = "backtest", kwargs: Mapping[str, Any] | None = None,
             folder: str | None = None) -> Callable[[type], type]:
    """Class decorator: add the recorder to the registry (module docstring).

    folder: the artifact folder (default the class's ``artifact_path``).  Raises ``ValueError`` naming
    the class when its folder or name is taken by another recorder, or an input or run is unknown.
    """
    needs = _check_inputs("register(needs=...)", needs, INPUTS)
    optional = tuple(optional)
    if run not in RUNS:
        raise ValueError(f"register(run={run!r}): choose from {list(RUNS)}")

    def deco(cls: type) -> type:
        where = folder or getattr(cls, "artifact_path", None)
        if not where:
            raise ValueError(f"recorder {cls.__name__}: no artifact folder (set artifact_path or folder=)")
        entry = RecorderEntry(cls, where, title, float(order), needs, optional, run, dict(kwargs or {}))
        for other in list(_RECORDERS.values()):
            same = f"{other.cls.__module__}.{other.name}" == f"{cls.__module__}.{cls.__name__}"
            if same:     # a module re-imported (reload, importlib in tests): the newest class wins
                del _RECORDERS[other.name]
            elif other.name == entry.name or other.folder == entry.folder:
                raise ValueError(f"recorder {cls.__module__}.{cls.__name__}: name {entry.name!r} or folder "
                                 f"{entry.folder!r} already registered by {other.cls.__module__}.{other.name}")
        _RECORDERS[entry.name] = entry
        return cls

    return deco


def register_section(folder: str, title: str, order: float) -> None:
    """Name a report section for an artifact folder that no recorder writes."""
    _SECTIONS[folder] = Section(folder, title, float(order))


def unregister(name: str) -> None:
    """Remove recorder ``name`` (for tests of extensions)."""
    _RECORDERS.pop(name, None)


def load_builtins() -> None:
    """Import every module of :mod:`qlib_ext.analysis.records` (each registers its recorder)."""
    if _LOADED["builtins"]:
        return
    from . import records

    for info in pkgutil.iter_modules(records.__path__):
        if info.name != "base":
            importlib.import_module(f"{records.__name__}.{info.name}")
    _LOADED["builtins"] = True


def load_entry_points() -> None:
    """Import the recorders other packages declare in the ``qlib_ext.recorders`` entry-point group."""
    if _LOADED["entry_points"]:
        return
    _LOADED["entry_points"] = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def recorders() -> list[RecorderEntry]:
    """Every registered recorder (built-ins, entry points, modules imported so far), in report order."""
    load_builtins()
    load_entry_points()
    return sorted(_RECORDERS.values(), key=lambda e: (e.order, e.name))


def get(name: str) -> RecorderEntry:
    """The entry of recorder class ``name``; ``KeyError`` listing the known ones."""
    if name not in _RECORDERS:
        load_builtins()
    if name not in _RECORDERS:
        load_entry_points()
    if name not in _RECORDERS:
        raise KeyError(f"no recorder {name!r} registered; known: {sorted(_RECORDERS)}")
    return _RECORDERS[name]


def sections() -> dict[str, str]:
    """Report sections in page order: artifact folder -> title (recorders and :func:`register_section`)."""
    items = [(e.order, e.folder, e.title) for e in recorders()] + [(s.order, s.folder, s.title) for s in _SECTIONS.values()]
    return {folder: title for _, folder, title in sorted(items)}


def default_records(run: str | None = None, needs: Iterable[str] | None = None, benchmark: str | None = None,
                    exclude: Iterable[str] = ()) -> list[dict]:
    """``{class, module_path[, kwargs]}`` of the registered recorders, in report order, for a qrun ``record:`` list.

    run: only those the pipeline puts in that run (``signal`` or ``backtest``; None: all).
    needs: the inputs the run has (e.g. ``("signal", "risk")``); a recorder needing anything else is
    left out (None: no filter).  benchmark: fills :data:`BENCHMARK` kwargs.  exclude: class names.
    """
    if run is not None and run not in RUNS:
        raise ValueError(f"default_records(run={run!r}): choose from {list(RUNS)}")
    have = None if needs is None else set(_check_inputs("default_records(needs=...)", needs, INPUTS))
    skip = set(exclude)
    return [e.record_config(benchmark) for e in recorders()
            if (run is None or e.run == run) and (have is None or set(e.needs) <= have) and e.name not in skip]


register_section(ARTIFACTS.OPTIM, "Optimizer diagnostics", 90)
