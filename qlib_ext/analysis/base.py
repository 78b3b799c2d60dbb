"""Old import path, kept for callers outside ``analysis/``: the artifact helpers live in
:mod:`qlib_ext.artifacts` and the recorders' base in :mod:`qlib_ext.analysis.records.base`."""

from ..artifacts import (
           SUMMARY_FILE,
           artifact_name,
           has_artifact,
           load_artifact,
           log_metrics_now,
           save_artifacts,
)
from .records.base import AnalysisRecord

__all__ = ["SUMMARY_FILE", "AnalysisRecord", "artifact_name", "has_artifact", "load_artifact", "log_metrics_now",
           "save_artifacts"]
