"""Which day fields an expression reads, and whether the Qlib dataset in use has them.

Why: on a dataset without ``$vwap`` or ``$mcap`` (plain Qlib data, SPEC 3.3) Qlib evaluates an
expression to all-NaN without a word; the handler then ends in "Empty data from dataset", or a
processor fills the feature with 0.  Our handlers and ``Neutralize`` call :func:`missing_field_uses`
at construction (a directory listing of a few feature folders, no data read) and raise
:class:`MissingFieldsError` naming every missing field, what reads it and how to go on.

Qlib reads ``features/<instrument lower>/<field lower>.<freq>.bin``: a folder or a file whose name is
not lower case is invisible to it on Linux, so it is not counted here either (the error then names
the case fix of :func:`qlib_ext.data.requirements.case_problem`).  The commands that add a field are
:func:`qlib_ext.data.requirements.fix_for`'s (the one table of what adds what).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["MissingFieldsError", "dataset_root", "expression_fields", "missing_field_uses", "missing_fields_error"]

_FIELD = re.compile(r"\$(\w+)")


class MissingFieldsError(ValueError):
    """Day fields that a handler or processor reads are absent from the dataset (the message names them and the fix)."""


def expression_fields(expression: str) -> list[str]:
    """The day fields a Qlib expression reads, lower case, in order of appearance: ``$close/$vwap`` -> close, vwap."""
    return list(dict.fromkeys(m.lower() for m in _FIELD.findall(str(expression))))


def dataset_root(freq: str = "day") -> Path | None:
    """The local Qlib dataset that ``qlib.init`` points at (None for a client/NFS provider or before init)."""
    try:
        from qlib.config import C

        root = Path(C.dpm.get_data_uri(freq))
    except Exception:  # noqa: BLE001 - not initialised or not a local provider: Qlib itself reports
        return None
    return root if (root / "features").is_dir() else None


def _stock_folders(root: Path) -> list[str]:
    from ..schema import INDEX_INSTRUMENTS

    indexes = {c.lower() for c in INDEX_INSTRUMENTS.values()}
    with os.scandir(root / "features") as it:
        names = sorted(e.name for e in it if e.is_dir())
    return [n for n in names if n == n.lower() and n not in indexes]


def _fields_in(folder: Path, suffix: str) -> set[str]:
    with os.scandir(folder) as it:
        return {e.name[: -len(suffix)] for e in it if e.name.endswith(suffix) and e.name == e.name.lower()}


def missing_field_uses(uses: Mapping[str, str], freq: str = "day",
                       root: Path | None = None) -> tuple[Path, dict[str, list[str]]] | None:
    """``(root, {field: [uses reading it]})`` for the fields of ``uses`` (use -> expression) no stock has.

    A field counts as present when one stock folder (as Qlib finds them: lower-case names) holds its
    ``<field>.<freq>.bin``; folders are listed until every field is found (one folder on a complete
    dataset, all of them when a field is missing).  None when the dataset cannot be looked at.
    """
    root = dataset_root(freq) if root is None else Path(root)
    if root is None:
        return None
    need: dict[str, list[str]] = {}
    for use, expr in uses.items():
        for f in expression_fields(expr):
            need.setdefault(f, []).append(use)
    if not need:
        return root, {}
    suffix = f".{freq}.bin"
    folders = _stock_folders(root)
    have: set[str] = set()
    for name in folders:
        have |= _fields_in(root / "features" / name, suffix)
        if need.keys() <= have:
            break
    return root, {f: u for f, u in need.items() if f not in have}


def missing_fields_error(who: str, root: Path, missing: Mapping[str, Sequence[str]],
                         remedies: Sequence[str] = ()) -> MissingFieldsError:
    """The error for ``missing`` (field -> uses): every field with its uses, the import command, the keywords."""
    from ..data.requirements import case_problem, fix_for

    items = "; ".join(f"${f} (read by {', '.join(u)})" for f, u in missing.items())
    commands: dict[str, list[str]] = {}
    for f in missing:
        commands.setdefault(fix_for(f, root), []).append(f"${f}")
    adds = " and ".join(f"`{cmd}` ({', '.join(fs)})" for cmd, fs in commands.items())
    fixes = [f"add them with {adds}", *remedies]
    case = case_problem(root)
    first = f"first the folder names: {case}; then, for what is still missing, " if case else ""
    return MissingFieldsError(
        f"{who}: the dataset {root} has no day field(s) {items} (no features/<stock>/<field>.day.bin), so Qlib "
        f"would compute them as all NaN. Fix: {first}{'; or '.join(fixes)}")
