"""What an import found: issues that name file, row, key, field and check, gathered in one report.

Why: a user importing their own data must learn exactly which row of which file failed which check,
and must be able to read every warning after a successful import (``meta/import_report.json``).
An error stops the import before anything is written; ``strict=True`` promotes warnings to errors.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from pathlib import Path

#: How many example rows one issue keeps (the count says how many rows failed in all).
MAX_EXAMPLES = 5


@dataclass
class Issue:
    """One failed check: ``daily.parquet row 1234 (600519.SH 20240102): high 10.1 < low 10.3 [check high_low]``.

    ``row`` is the 1-based data row of the file (header not counted); ``key`` names the record (code and
    date) when there is one; ``count`` is the number of offending rows, of which ``examples`` are the
    next few after the first.
    """

    level: str
    check: str
    file: str
    message: str
    row: int | None = None
    key: str | None = None
    field: str | None = None
    count: int = 1
    examples: list[str] = dc_field(default_factory=list)

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.key:
            where += f" ({self.key})"
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        return f"{where}: {self.message} [check {self.check}]{more}"


class ImportValidationError(ValueError):
    """The import stopped on errors; ``report`` holds every issue found (nothing was written)."""

    def __init__(self, report: ImportReport, max_lines: int = 20):
        self.report = report
        errs = report.errors
        lines = [str(e) for e in errs[:max_lines]]
        if len(errs) > max_lines:
            lines.append(f"... and {len(errs) - max_lines} more error(s)")
        super().__init__(f"import of {report.source} failed with {len(errs)} error(s):\n  " + "\n  ".join(lines))


@dataclass
class ImportReport:
    """Everything an import did and found; ``ok`` when no error (warnings allowed unless strict)."""

    source: str
    out: str | None = None
    mode: str = "new"
    files: dict[str, str] = dc_field(default_factory=dict)        # role -> file name
    units: dict[str, str] = dc_field(default_factory=dict)        # file -> what was detected/assumed
    stats: dict[str, object] = dc_field(default_factory=dict)     # rows, stocks, fallbacks, ...
    issues: list[Issue] = dc_field(default_factory=list)
    seconds: float | None = None
    timings: dict[str, float] = dc_field(default_factory=dict)   # phase -> seconds

    def lap(self, phase: str) -> None:
        """Record the seconds since the previous lap (or since the report was made) under ``phase``."""
        now = time.perf_counter()
        self.timings[phase] = round(now - getattr(self, "_t", now), 3)
        self._t = now

    def __post_init__(self) -> None:
        self._t = time.perf_counter()

    # -- collecting --------------------------------------------------------------------------
    def add(self, level: str, check: str, file: str, message: str, row: int | None = None,
            key: str | None = None, field: str | None = None, count: int = 1,
            examples: list[str] | None = None) -> Issue:
        issue = Issue(level, check, file, message, row, key, field, int(count), list(examples or [])[:MAX_EXAMPLES])
        self.issues.append(issue)
        return issue

    def error(self, check: str, file: str, message: str, **kw) -> Issue:
        return self.add("error", check, file, message, **kw)

    def warn(self, check: str, file: str, message: str, **kw) -> Issue:
        return self.add("warning", check, file, message, **kw)

    # -- reading -----------------------------------------------------------------------------
    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_failed(self, strict: bool = False) -> None:
        """Raise :class:`ImportValidationError` on errors; with ``strict`` warnings become errors first."""
        if strict:
            for issue in self.warnings:
                issue.level = "error"
                issue.message += " (warning promoted by strict=True)"
        if self.errors:
            raise ImportValidationError(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_t", None)
        d["n_errors"], d["n_warnings"] = len(self.errors), len(self.warnings)
        return d

    def write(self, path: str | Path) -> None:
        """Save as JSON (the dataset's ``meta/import_report.json``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False, default=str))

    def render(self, max_lines: int = 50) -> str:
        """Summary, the detected units, the counters, then one line per issue (errors first)."""
        status = "FAILED" if self.errors else "OK"
        out = [f"import {status}: {len(self.errors)} error(s), {len(self.warnings)} warning(s); "
               f"{self.source} -> {self.out} ({self.mode})"]
        out += [f"  units {k}: {v}" for k, v in self.units.items()]
        out += [f"  {k}: {_short(v)}" for k, v in self.stats.items()]
        if self.timings:
            out.append("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()))
        issues = sorted(self.issues, key=lambda i: i.level != "error")
        out += [f"  {i.level.upper()} {i}" for i in issues[:max_lines]]
        if len(issues) > max_lines:
            out.append(f"  ... and {len(issues) - max_lines} more (see meta/import_report.json)")
        return "\n".join(out)


def _short(v: object, n: int = 6) -> str:
    """A long list as its length and first few items (the JSON report keeps all of them)."""
    if isinstance(v, (list, tuple)) and len(v) > n:
        return f"{len(v)}: {', '.join(map(str, v[:n]))}, ..."
    return str(v)
