"""A recorder added in one file (issue 20's extension test): the signal's daily cross-sectional
dispersion (standard deviation of the scores) and its count of names, as a table, a figure and a
headline number.  Registering it is the decorator below; nothing else in the package is touched.

Use from a qrun YAML: ``{class: DispersionRecord, module_path: extensions.demo_recorder}`` after the
``SignalRecord``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from qlib_ext.analysis.inputs import load_signal
from qlib_ext.analysis.plots import finish, new_figure, plot_lines
from qlib_ext.analysis.records.base import AnalysisRecord
from qlib_ext.analysis.registry import register

FOLDER = "demo_dispersion"
TITLE = "Demo: signal dispersion"


def dispersion(signal: pd.Series) -> pd.DataFrame:
    """Per day: the standard deviation of the scores (ddof 1) and the number of names."""
    by_day = signal.groupby(level="datetime")
    return pd.DataFrame({"std": by_day.std(), "names": by_day.size().astype(float)})


@register(title=TITLE, order=45, needs=("signal",), run="signal")
class DispersionRecord(AnalysisRecord):
    """The signal's daily dispersion (module docstring)."""

    artifact_path = FOLDER

    def __init__(self, recorder: Any, rolling: int = 5, **kwargs: Any) -> None:
        super().__init__(recorder=recorder, **kwargs)
        self.rolling = int(rolling)

    def list(self) -> list[str]:
        return ["dispersion.csv", "dispersion.png", "summary.json"]

    def generate(self, **kwargs: Any) -> dict:
        table = dispersion(load_signal(self))
        fig, ax = new_figure()
        plot_lines(ax, table[["std"]], "Signal dispersion", rolling=self.rolling, hline=None)
        self.save_artifacts(tables={"dispersion": table}, figures={"dispersion": finish(fig)},
                            metrics={"mean_std": float(table["std"].mean())})
        self.say(f"mean dispersion {table['std'].mean():.4f} over {len(table)} days")
        return {"table": table}
