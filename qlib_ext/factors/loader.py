"""A ready ``QlibDataLoader`` config: the named factors as features, the vwap forward return as label."""

from __future__ import annotations

from collections.abc import Sequence

from .labels import forward_return_label
from .price_volume import factor_expressions

__all__ = ["loader_config"]


def loader_config(factors: Sequence[str] | None = None, horizon: int = 10,
                  label_name: str = "LABEL0") -> dict[str, tuple[list[str], list[str]]]:
    """``QlibDataLoader(config=...)``: group ``feature`` = the named factors, group ``label`` = the label.

    e.g. ``{"class": "QlibDataLoader", "kwargs": {"config": loader_config(["ret_10", "std_10d"])}}``.
    """
    return {"feature": factor_expressions(factors), "label": ([forward_return_label(horizon)], [label_name])}
