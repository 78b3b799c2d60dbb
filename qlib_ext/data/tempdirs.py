"""Temp and backup entries of the atomic writers, named by their owning process, and the sweep of stale ones.

Every atomic writer (the dataset writer, :class:`~qlib_ext.data.fields.FieldStager`, the risk store,
the importer) writes beside or inside its target under a name that carries the writer's process id::

    <parent>/<prefix><pid>-<token>        e.g.  data/.risk.tmp-4711-9f3a2c1b

A run killed with ``kill -9`` leaves such an entry behind.  :func:`sweep` (called by each writer when
it starts) removes the entries of its own kind whose owner is gone (``os.kill(pid, 0)`` fails) and
logs each one; entries of a live process (another run writing right now) and entries whose name
carries no pid (written by an older version) are left alone, the latter with a log line naming them.
A backup of the previous target (``.<name>.old-<pid>-...``) whose owner died between the two renames
of a swap is the only copy left when the target is missing: it is renamed back instead of removed.

The pid is only meaningful on the machine that wrote the entry: do not share one target folder
between hosts that write at the same time.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from pathlib import Path

log = logging.getLogger("qlib_ext.tempdirs")


def temp_path(parent: str | Path, prefix: str) -> Path:
    """A fresh owned name ``<parent>/<prefix><pid>-<token>`` (nothing is created)."""
    return Path(parent) / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """Create and return an owned temp directory under ``parent`` (e.g. prefix ``.risk.tmp-``)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    while True:
        path = temp_path(parent, prefix)
        try:
            path.mkdir()
            return path
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


def owner_pid(name: str, prefix: str) -> int | None:
    """The pid in an owned name (``<prefix><pid>`` or ``<prefix><pid>-...``), None when it carries none."""
    m = re.match(rf"{re.escape(prefix)}(\d+)(?:[-.]|$)", name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process we may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(parent: str | Path, prefix: str, what: str, restore_to: str | Path | None = None) -> list[Path]:
    """Remove the entries ``<parent>/<prefix>*`` whose owning process is gone; returns those handled.

    ``what`` names the writer in the log line ("risk store temp folder").  With ``restore_to``
    (the target of a swap) a stale entry is renamed back onto the target when the target is missing
    (the previous copy of a swap that was killed midway), and removed otherwise.
    """
    parent = Path(parent)
    if not parent.is_dir():
        return []
    handled: list[Path] = []
    for path in sorted(parent.glob(f"{glob_escape(prefix)}*")):
        pid = owner_pid(path.name, prefix)
        if pid is None:
            log.info("left %s %s in place: its name carries no owner pid (an older run's?); "
                     "remove it by hand if no run is writing there", what, path)
            continue
        if pid_alive(pid):
            continue
        if restore_to is not None and not Path(restore_to).exists():
            os.replace(path, restore_to)
            log.warning("restored %s from the stale %s %s (process %d died during the swap)",
                        restore_to, what, path, pid)
        else:
            _remove(path)
            log.warning("removed the stale %s %s (its process %d is gone)", what, path, pid)
        handled.append(path)
    return handled


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)
