"""Importers of real data: tushare-like CSV/Parquet files -> a validated Qlib dataset (SPEC 3.3).

``import_dataset(source, out)`` builds a new dataset atomically; ``import_dataset(source,
augment=QLIB_DIR)`` adds only the fields an existing Qlib directory lacks.  See ``build`` for the
field conventions, ``validate`` for the checks and ``units`` for unit detection.
"""

from .build import import_dataset
from .report import ImportReport, ImportValidationError, Issue

__all__ = ["import_dataset", "ImportReport", "ImportValidationError", "Issue"]
