"""A private system temp folder for a stage or a sweep cell, removed afterwards.

Qlib's ``Recorder.load_object`` (and MLflow's artifact downloads) leave a copy of each artifact in
the system temp folder.  Inside :func:`private_tmpdir` both ``$TMPDIR`` and :data:`tempfile.tempdir`
point at a fresh folder (under ``parent``, or the system temp folder), which is removed on exit
together with whatever was left in it, so a run or a cell leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def private_tmpdir(parent: str | Path | None = None, prefix: str = "qlib_ext_cell_") -> Iterator[Path]:
    """Point ``$TMPDIR`` / ``tempfile.tempdir`` at a fresh folder for the block; remove it afterwards."""
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))
    old_env, old_mod = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = old_mod
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        shutil.rmtree(path, ignore_errors=True)
