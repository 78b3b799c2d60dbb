"""What an import found: the one report of :mod:`qlib_ext.data.report` under the importer's names.

Why: a user importing their own data must learn exactly which row of which file failed which check,
and must be able to read every warning after a successful import (``meta/import_report.json``).
An error stops the import before anything is written; ``strict=True`` promotes warnings to errors.
``ImportReport`` is :class:`~qlib_ext.data.report.DataReport` (the same class as ``data check``'s
``CheckReport``) and ``Issue`` is its :class:`~qlib_ext.data.report.Finding`.
"""

from __future__ import annotations

from ..report import MAX_EXAMPLES, DataReport, Finding, ImportValidationError

ImportReport = DataReport
Issue = Finding

__all__ = ["MAX_EXAMPLES", "ImportReport", "ImportValidationError", "Issue"]
