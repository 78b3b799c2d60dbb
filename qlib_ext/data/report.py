"""One report for what an import or a dataset check found: findings that name file, row, key, instrument,
field, date and check.

Why one concept: ``import_dataset`` (source files -> dataset) and ``check_dataset`` (a dataset on disk)
both answer "what is wrong, where, and how often"; a caller (the CLI, the preflight) reads either the
same way: ``report.ok``, ``report.errors``, ``report.warnings``, ``report.render()``.  The old names
``ImportReport``/``Issue`` (:mod:`qlib_ext.data.importers.report`) and ``CheckReport``/``Finding``
(:mod:`qlib_ext.data.check`) are aliases of :class:`DataReport` and :class:`Finding`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from pathlib import Path

#: How many example rows one finding keeps (the count says how many rows failed in all).
MAX_EXAMPLES = 5


@dataclass
class Finding:
    """One failed check.  Import findings name ``file``, ``row`` (1-based data row, header not counted) and
    ``key`` (code and date); dataset findings name ``instrument``, ``field`` and first ``date``.  ``count`` is
    the number of offending rows/days, of which ``examples`` are the next few after the first."""

    level: str
    check: str
    message: str
    instrument: str | None = None
    field: str | None = None
    date: str | None = None
    count: int | None = None
    file: str | None = None
    row: int | None = None
    key: str | None = None
    examples: list[str] = dc_field(default_factory=list)

    def __str__(self) -> str:
        if self.file is None:
            where = " ".join(x for x in (self.instrument, self.field, self.date) if x) or "dataset"
        else:
            where = self.file + (f" row {self.row}" if self.row is not None else "") + (f" ({self.key})" if self.key else "")
        more = f" (and {self.count - 1} more)" if self.count and self.count > 1 else ""
        return f"{where}: {self.message} [check {self.check}]{more}"


@dataclass
class DataReport:
    """Everything an import or a check did and found; ``ok`` when no finding is an error.

    ``source``: the source directory of an import, the dataset of a check; ``out``: the dataset an import
    wrote; ``mode``: ``new``, ``augment`` or ``check``; ``guidance``: lines a check prints after the findings
    (what each use of the dataset still needs and the command that adds it); ``options``: the import's
    options (``units``, ``encoding``, ``accept_factor_jumps``, ``strict``), which the readers consult.
    """

    source: str
    out: str | None = None
    mode: str = "new"
    files: dict[str, str] = dc_field(default_factory=dict)        # role -> file name
    units: dict[str, str] = dc_field(default_factory=dict)        # file -> what was detected/assumed
    stats: dict[str, object] = dc_field(default_factory=dict)     # rows, stocks, fallbacks, ...
    findings: list[Finding] = dc_field(default_factory=list)
    seconds: float | None = None
    timings: dict[str, float] = dc_field(default_factory=dict)    # phase -> seconds
    guidance: list[str] = dc_field(default_factory=list)
    options: dict[str, object] = dc_field(default_factory=dict)   # how the import was asked: units, encoding, ...

    def __post_init__(self) -> None:
        self._t = time.perf_counter()

    @property
    def root(self) -> str:
        """The dataset: what an import wrote, or what a check read."""
        return self.out or self.source

    @property
    def issues(self) -> list[Finding]:
        """The findings (the import's name for them)."""
        return self.findings

    def lap(self, phase: str) -> None:
        """Record the seconds since the previous lap (or since the report was made) under ``phase``."""
        now = time.perf_counter()
        self.timings[phase] = round(now - self._t, 3)
        self._t = now

    # -- collecting --------------------------------------------------------------------------
    def add(self, level: str, check: str, message: str, instrument: str | None = None, field: str | None = None,
            date: str | None = None, count: int | None = None, *, file: str | None = None, row: int | None = None,
            key: str | None = None, examples: list[str] | None = None) -> Finding:
        """Add one finding (``level``: "error" = unusable as is, "warning" = suspicious)."""
        finding = Finding(level, check, message, instrument, field, date, None if count is None else int(count),
                          file, row, key, list(examples or [])[:MAX_EXAMPLES])
        self.findings.append(finding)
        return finding

    def error(self, check: str, file: str, message: str, count: int = 1, **kw) -> Finding:
        """An import error naming the source ``file`` (``row``, ``key``, ``field``, ``count``, ``examples``)."""
        return self.add("error", check, message, count=count, file=file, **kw)

    def warn(self, check: str, file: str, message: str, count: int = 1, **kw) -> Finding:
        """An import warning naming the source ``file``."""
        return self.add("warning", check, message, count=count, file=file, **kw)

    # -- reading -----------------------------------------------------------------------------
    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_failed(self, strict: bool = False) -> None:
        """Raise :class:`ImportValidationError` on errors; with ``strict`` warnings become errors first."""
        if strict:
            for f in self.warnings:
                f.level = "error"
                f.message += " (warning promoted by strict=True)"
        if self.errors:
            raise ImportValidationError(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_t", None)
        d["issues"] = d["findings"]                  # the key readers of meta/import_report.json know
        d["n_errors"], d["n_warnings"] = len(self.errors), len(self.warnings)
        return d

    def write(self, path: str | Path) -> None:
        """Save as JSON (an import's ``meta/import_report.json``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False, default=str))

    def render(self, max_lines: int | None = None) -> str:
        """An import: summary, units, counters, one line per finding.  A check: PASSED/FAILED with counts, what
        was checked, a table of findings, then the guidance."""
        return self._render_check(max_lines or 200) if self.mode == "check" else self._render_import(max_lines or 50)

    def _render_import(self, max_lines: int) -> str:
        status = "FAILED" if self.errors else "OK"
        out = [f"import {status}: {len(self.errors)} error(s), {len(self.warnings)} warning(s); "
               f"{self.source} -> {self.out} ({self.mode})"]
        out += [f"  units {k}: {v}" for k, v in self.units.items()]
        out += [f"  {k}: {_short(v)}" for k, v in self.stats.items()]
        if self.timings:
            out.append("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()))
        found = sorted(self.findings, key=lambda f: f.level != "error")
        out += [f"  {f.level.upper()} {f}" for f in found[:max_lines]]
        if len(found) > max_lines:
            out.append(f"  ... and {len(found) - max_lines} more (see meta/import_report.json)")
        return "\n".join(out)

    def _render_check(self, max_lines: int) -> str:
        ne, nw = len(self.errors), len(self.warnings)
        head = [f"{'PASSED' if self.ok else 'FAILED'}: {ne} error(s), {nw} warning(s) in {self.root}"]
        head += [f"  {k}: {v}" for k, v in self.stats.items()]
        tail = ["", "what each use needs:", *(f"  {g}" for g in self.guidance)] if self.guidance else []
        if not self.findings:
            return "\n".join(head + tail)
        rows = [(f.level.upper(), f.check, f.instrument or "-", f.field or "-", f.date or "-",
                 "-" if f.count is None else str(f.count), f.message)
                for f in sorted(self.findings, key=lambda f: f.level != "error")]
        cols = ("LEVEL", "CHECK", "INSTRUMENT", "FIELD", "FIRST DATE", "ROWS", "MESSAGE")
        width = [max(len(r[i]) for r in [cols, *rows]) for i in range(6)]
        fmt = "  ".join(f"{{:<{w}}}" for w in width) + "  {}"
        lines = [fmt.format(*cols)] + [fmt.format(*r) for r in rows[:max_lines]]
        if len(rows) > max_lines:
            lines.append(f"... and {len(rows) - max_lines} more finding(s)")
        return "\n".join(head + [""] + lines + tail)


def check_report(root: str) -> DataReport:
    """An empty report of a dataset check of ``root``."""
    return DataReport(str(root), mode="check")


class ImportValidationError(ValueError):
    """The import stopped on errors; ``report`` holds every finding (nothing was written)."""

    def __init__(self, report: DataReport, max_lines: int = 20):
        self.report = report
        errs = report.errors
        lines = [str(e) for e in errs[:max_lines]]
        if len(errs) > max_lines:
            lines.append(f"... and {len(errs) - max_lines} more error(s)")
        super().__init__(f"import of {report.source} failed with {len(errs)} error(s):\n  " + "\n  ".join(lines))


def _short(v: object, n: int = 6) -> str:
    """A long list as its length and first few items (the JSON report keeps all of them)."""
    if isinstance(v, (list, tuple)) and len(v) > n:
        return f"{len(v)}: {', '.join(map(str, v[:n]))}, ..."
    return str(v)
