"""File-system primitives every writer shares: atomic files, directory swaps, pid locks, dead-pid temp sweeps.

* :func:`write_json_atomic` / :func:`write_bytes_atomic` / :func:`atomic_path`: a file appears whole
  or not at all (written to ``.<name>.tmp-<pid>-<token>`` in the same folder, then ``os.replace``).
* :func:`swap_dir`: a finished directory replaces ``dest`` in two renames; if the second fails the
  previous ``dest`` is put back, and a backup left by a killed swap is restored by
  :func:`qlib_ext.data.tempdirs.sweep` (``restore_to``).
* :class:`PidLock`: one holder per folder (``<dir>/.lock``, ``O_EXCL``); the file names the holder's
  pid, start time and command, so a second run says who holds it and a lock whose process is gone
  (or whose pid was reused by another process) is taken over with a log line.

Temp names carry the writer's pid (:mod:`qlib_ext.data.tempdirs`), so the next writer removes what a
``kill -9`` left.  Pids are only meaningful on the host that wrote them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .data.tempdirs import pid_alive, sweep, temp_path

log = logging.getLogger("qlib_ext.files")

__all__ = ["write_json_atomic", "write_bytes_atomic", "write_text_atomic", "atomic_path", "swap_dir",
           "PidLock", "LockHeld", "process_start_time", "process_cmdline", "sweep"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; after the block it is renamed onto ``path`` (removed on error)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path.parent, f".{path.name}.tmp-")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file and a rename (never half-written)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_bytes_atomic` of UTF-8 text."""
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, obj: Any, **dumps: Any) -> Path:
    """Write ``obj`` as JSON (indent 1, sorted keys, ``str`` for the rest) to ``path`` atomically."""
    kw = {"indent": 1, "sort_keys": True, "default": str, **dumps}
    return write_text_atomic(path, json.dumps(obj, **kw))


def swap_dir(tmp: str | Path, dest: str | Path) -> Path:
    """Move the finished directory ``tmp`` onto ``dest``; the previous ``dest`` is removed only after.

    If the second rename fails the previous ``dest`` is renamed back before the error propagates.
    """
    tmp, dest = Path(tmp), Path(dest)
    old = None
    if dest.exists():
        old = temp_path(dest.parent, f".{dest.name}.old-")
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        if old is not None and old.exists() and not dest.exists():
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------------- processes
def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), None if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(text[text.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def process_cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid`` (``/proc/<pid>/cmdline``), None if unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is alive and (when the recorded ``start`` is known) is the process that recorded it."""
    if not pid_alive(pid):
        return False
    now = process_start_time(pid)
    return start is None or now is None or now == start


class LockHeld(RuntimeError):
    """Another live process holds the lock (the message names its pid and command)."""


class PidLock:
    """``with PidLock(folder, what="run"):`` at most one process works in ``folder`` at a time.

    The lock is ``<folder>/.lock`` created with ``O_EXCL``; it holds ``{"pid", "start", "cmd"}``.  A
    lock whose process is gone (or whose pid now names a process started later) is taken over and
    logged; a live holder raises :class:`LockHeld` naming its pid.
    """

    NAME = ".lock"

    def __init__(self, folder: str | Path, what: str = "run", name: str | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / (name or self.NAME)
        self.what = what
        self.held = False

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def acquire(self) -> PidLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "start": process_start_time(os.getpid()), "cmd": " ".join(sys.argv)[:300]}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:
                    continue  # released meanwhile
                pid = int(holder.get("pid") or 0)
                if pid == os.getpid():
                    raise LockHeld(f"{self.what} lock {self.path} is already held by this process ({pid})") from None
                if pid > 0 and same_process(pid, holder.get("start")):
                    raise LockHeld(f"another {self.what} (pid {pid}: {holder.get('cmd', '?')}) is using "
                                   f"{self.folder}; wait for it to finish or stop it (lock {self.path})") from None
                log.warning("took over the stale %s lock %s of process %s (gone)", self.what, self.path,
                            pid or "unknown")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return self
        raise LockHeld(f"could not take the {self.what} lock {self.path} (contended)")

    def release(self) -> None:
        if self.held:
            holder = self._read()
            if holder and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> PidLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
