"""One base for the analysis recorders, in the manner of Qlib's ``ACRecordTemp`` (SPEC section 7).

A recorder names its folder (``artifact_path``, an :data:`qlib_ext.schema.ARTIFACTS` constant) and
the record it needs (``depend_cls``); it reads its inputs with :meth:`AnalysisRecord.load` and writes
everything with :meth:`AnalysisRecord.save_artifacts` -- the one loader and saver of
:mod:`qlib_ext.artifacts`.  An optional input that is absent is reported with :meth:`skip` (logged,
and listed in the section's ``missing.csv`` when the recorder passes ``missing=`` to the saver).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from qlib.log import get_module_logger
from qlib.workflow.record_temp import RecordTemp

from ...artifacts import MISSING_TABLE, has_artifact, load_artifact, save_artifacts

logger = get_module_logger("qlib_ext.analysis", logging.INFO)


class AnalysisRecord(RecordTemp):
    """Base of our recorders: ``artifact_path`` (an ``ARTIFACTS.*`` folder), ``depend_cls``, one loader.

    Subclasses implement ``generate()``: load inputs with :meth:`load`, compute with a pure function,
    draw, and end with :meth:`save_artifacts`.  ``list()`` returns the artifact names (without folder).
    """

    artifact_path: str | None = None
    depend_cls = None

    def __init__(self, recorder: Any, **kwargs: Any) -> None:
        super().__init__(recorder=recorder, **kwargs)
        self.missing: dict[str, str] = {}

    def load(self, name: str, artifact_path: str | None = None, hint: str = "") -> Any:  # type: ignore[override]
        """Artifact ``<artifact_path>/<name>`` of this run (None: ``name`` is the full path), see :func:`load_artifact`."""
        hint = hint or (f"run {self.depend_cls.__name__} before {type(self).__name__}" if self.depend_cls else "")
        return load_artifact(self.recorder, name, artifact_path, hint=hint)

    def has(self, name: str, artifact_path: str | None = None) -> bool:
        """Whether the artifact exists (see :func:`has_artifact`)."""
        return has_artifact(self.recorder, name, artifact_path)

    def save_artifacts(self, tables=None, figures=None, objects=None, metrics=None) -> list[str]:
        """:func:`qlib_ext.artifacts.save_artifacts` into this recorder under ``artifact_path``; the optional
        inputs recorded by :meth:`missing_input` are added as the table ``missing.csv``."""
        tables = dict(tables or {})
        if getattr(self, "missing", None):
            tables[MISSING_TABLE] = pd.DataFrame({"effect": list(self.missing.values())},
                                                 index=pd.Index(list(self.missing), name="input"))
        return save_artifacts(self.recorder, self.artifact_path, tables=tables, figures=figures,
                              objects=objects, metrics=metrics)

    def skip(self, reason: str) -> None:
        """Log why an optional part is left out (the recorder goes on)."""
        logger.info(f"{type(self).__name__}: {reason}")

    def missing_input(self, name: str, effect: str) -> None:
        """An optional input ``name`` is absent: log it and name it in the section (``missing.csv``)."""
        self.missing[name] = effect
        logger.warning(f"{type(self).__name__}: optional input {name} is missing: {effect}")

    def say(self, text: str) -> None:
        """A recorder's result summary, logged (recorders never print)."""
        logger.info(f"{type(self).__name__}: {text}")
