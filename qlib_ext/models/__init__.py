"""Models on Qlib's ``Model`` contract (``fit(dataset)``, ``predict(dataset, segment)``): SPEC section 5.

Use them from any qrun YAML with ``module_path: qlib_ext.models``.  Names resolve lazily (torch is
imported only when a torch model is used).
"""

from __future__ import annotations

from ..lazy import lazy_exports

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "GRUModel": ".gru",
    "Ensemble": ".ensemble",
    "Rolling": ".rolling",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
