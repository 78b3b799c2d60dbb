"""Analysis recorders (SPEC section 7), shaped as alphalens: compute | plot | record, and the report.

* :mod:`.metrics` -- pure functions per topic (no Qlib, no matplotlib, no file I/O);
* :mod:`.plots` -- figures: every ``plot_*`` takes an ``ax`` and returns it;
* :mod:`.records` -- the Qlib ``RecordTemp`` adapters, one per file, none importing another;
* :mod:`.inputs` -- what the recorders read through Qlib (signal, market panel, risk store, backtest);
* :mod:`.registry` -- one entry per recorder (class, artifact folder, section title and order, inputs);
* :mod:`.report` -- the HTML page of saved artifacts (recomputes nothing).

Artifacts are saved and loaded by :mod:`qlib_ext.artifacts`.  The portfolio performance functions
(report tables 11, 23, 30, 33, 35) are imported eagerly; recorder classes (every name the registry
knows: ``PerformanceRecord``, ``StyleProfileRecord``, ...) and plotting resolve on first use, so
``import qlib_ext.analysis`` loads neither Qlib's workflow nor matplotlib.  A built-in recorder is one
module of :mod:`.records`; no list here names it.
"""

from typing import Any

from ..lazy import lazy_exports
from .metrics.performance import (
    annual_turnover,
    annualized_return,
    calmar,
    drawdown,
    excess_nav,
    excess_returns,
    information_ratio,
    max_drawdown,
    nav_frame,
    performance_summary,
    period_return,
    yearly_returns,
)

_plots = lazy_exports(__name__, {"plot_excess_nav": ".plots.performance"})


def __getattr__(name: str) -> Any:
    """A recorder class by name from the registry (built-ins and registered extensions), or a plot."""
    if name.endswith("Record"):
        from .registry import get

        try:
            return get(name).cls
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return _plots(name)


__all__ = [
    "annual_turnover", "annualized_return", "calmar", "drawdown", "excess_nav", "excess_returns",
    "information_ratio", "max_drawdown", "nav_frame", "performance_summary", "period_return",
    "plot_excess_nav", "yearly_returns",
]


def __dir__() -> list[str]:
    """The eager names plus every registered recorder (``registry.recorders()``)."""
    from .registry import recorders

    return sorted({*globals(), *__all__, *(e.name for e in recorders())})
