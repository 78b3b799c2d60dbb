"""The report's tables from our performance rows, with the report's own numbers in labelled columns.

Layout of report table 11 (and of tables 23/30/33/35): annualised excess return, information ratio,
excess max drawdown, Calmar, excess 2022, excess 2023, excess 2024Q1, excess max drawdown in 2024Q1
(our conventions: :mod:`qlib_ext.analysis.performance`, geometric, 252 sessions a year).  The
reference numbers live in ``configs/sweeps/report.yaml`` (``reference:``); they are the report's
real-market results and are always shown in columns named ``report (real market): ...``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Our metric keys (PerformanceRecord's table) -> column titles of report table 11.
PERF_COLUMNS: dict[str, str] = {
    "annualized_excess": "annualised excess",
    "information_ratio": "IR",
    "excess_max_drawdown": "excess max DD",
    "calmar": "Calmar",
    "excess_2022": "2022 excess",
    "excess_2023": "2023 excess",
    "window_excess": "2024Q1 excess",
    "window_max_drawdown": "2024Q1 excess max DD",
}
HOLDINGS_COLUMNS: dict[str, str] = {
    "constituent_weight": "constituent weight",
    "small_10": "weight in smallest 10%",
    "small_20": "weight in smallest 20%",
    "small_30": "weight in smallest 30%",
}
REFERENCE_PREFIX = "report (real market): "
RATIO_KEYS = ("information_ratio", "calmar")


def reference_frame(rows: Mapping[str, Sequence[Any]] | None, columns: Sequence[str]) -> pd.DataFrame:
    """The report's rows ``{label: [values in `columns` order]}`` as a frame (NaN where null)."""
    if not rows:
        return pd.DataFrame(columns=list(columns), dtype=float)
    data = {}
    for label, values in rows.items():
        if len(values) != len(columns):
            raise ValueError(f"reference row {label!r}: {len(values)} values for {len(columns)} columns {list(columns)}")
        data[str(label)] = [np.nan if v is None else float(v) for v in values]
    return pd.DataFrame.from_dict(data, orient="index", columns=list(columns))


def side_by_side(ours: pd.DataFrame, reference: pd.DataFrame | None = None,
                 columns: Mapping[str, str] = PERF_COLUMNS) -> pd.DataFrame:
    """Our rows (metric keys as columns) beside the report's (same row labels) in prefixed columns.

    Only the metrics in ``columns`` are kept, renamed to the report's titles; a metric we lack stays NaN.
    """
    keys = list(columns)
    out = ours.reindex(columns=keys).rename(columns=dict(columns))
    if reference is not None and not reference.empty:
        ref = reference.reindex(index=out.index, columns=keys).rename(
            columns={k: REFERENCE_PREFIX + v for k, v in columns.items()})
        ref = ref.dropna(axis=1, how="all")
        out = pd.concat([out, ref], axis=1)
    return out


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Percent strings for returns and drawdowns, two decimals for ratios (as printed in the report)."""
    ratio_titles = {t for k, t in {**PERF_COLUMNS, **HOLDINGS_COLUMNS}.items() if k in RATIO_KEYS}
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        base = col[len(REFERENCE_PREFIX):] if col.startswith(REFERENCE_PREFIX) else col
        fmt = "{:.2f}" if base in ratio_titles else "{:.1%}"
        out[col] = [("" if not np.isfinite(v) else fmt.format(v)) if isinstance(v, (int, float)) else str(v)
                    for v in table[col]]
    return out


def to_markdown(table: pd.DataFrame, title: str = "") -> str:
    """A GitHub-markdown rendering of :func:`format_table` (no extra dependency)."""
    f = format_table(table)
    head = [f.index.name or "", *map(str, f.columns)]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in zip(f.index, f.to_numpy())]
    return "\n".join(lines)


def headline(perf: Mapping[str, Mapping[str, float]], reference: Mapping | None = None) -> pd.DataFrame:
    """Table 11: one row per benchmark label (``{"CSI500": {metric: value}}``), with the report's rows beside."""
    ours = pd.DataFrame.from_dict({k: dict(v) for k, v in perf.items()}, orient="index")
    ours.index.name = "benchmark"
    ref = None
    if reference:
        cols = reference["columns"]
        rows = {k.upper(): v for k, v in reference.get("table11", {}).items()}
        ref = reference_frame(rows, cols)
    return side_by_side(ours, ref)
