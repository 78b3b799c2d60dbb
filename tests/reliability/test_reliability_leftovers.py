"""Leftovers of killed runs: every atomic writer removes the temp entries a dead run of its own kind left,
keeps those of a live process, restores a backup whose swap was cut short, and logs what it did.

The risk-build case really ``kill -9``\\ s a build in a subprocess while it writes its temp store."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.bin_io import DatasetWriter
from qlib_ext.data.fields import CHUNK_TMP, FieldStager
from qlib_ext.data.importers import import_dataset
from qlib_ext.data.tempdirs import owner_pid, pid_alive
from qlib_ext.risk import build_risk, load_exposures

from .helpers import digest, leftovers, make_source

DAY_ONLY = shutil.ignore_patterns("*.1min.bin", "1min.txt")
LOGGER = "qlib_ext.tempdirs"


def dead_pid() -> int:
    """The pid of a process that has exited (reaped), so no process owns it now."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(proc.stdout)
    assert not pid_alive(pid)
    return pid


def kill9_when_ready(argv: list[str], ready: Path, timeout: float) -> subprocess.Popen:
    """Start ``argv + [ready]``, wait until it writes ``ready`` (its point of no return), then ``kill -9`` it."""
    proc = subprocess.Popen([*argv, str(ready)])
    try:
        t0 = time.time()
        while not ready.exists():
            assert proc.poll() is None, f"{argv[-1]} exited before it was killed"
            assert time.time() - t0 < timeout, f"{argv[-1]} never reached the point where it is killed"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc


@pytest.fixture()
def data(micro_market, tmp_path) -> Path:
    return Path(shutil.copytree(micro_market, tmp_path / "qlib_data", ignore=DAY_ONLY))


KILLED_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from qlib_ext.risk import build as rb
    real = rb.write_table
    def slow(table, path):
        real(table, path)
        if path.name == "exposures.parquet":          # mid-build: the temp store holds one file
            Path(sys.argv[2]).write_text("ready")
            time.sleep(600)
    rb.write_table = slow
    rb.build_risk(sys.argv[1], progress=False, export_qlib=False)
""")


def test_risk_build_killed_then_rerun_leaves_no_temp_folder(data, tmp_path, caplog):
    """kill -9 during ``risk build`` leaves ``.risk.tmp-<pid>-*``; the next build removes it and says so."""
    proc = kill9_when_ready([sys.executable, "-c", KILLED_BUILD, str(data)], tmp_path / "ready", 50)
    left = leftovers(data, "risk")
    assert len(left) == 1 and left[0].startswith(".risk.tmp-") and owner_pid(left[0], ".risk.tmp-") == proc.pid
    assert (data / left[0] / "exposures.parquet").exists() and not (data / "risk").exists()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = build_risk(data, progress=False, export_qlib=False)
    assert leftovers(data, "risk") == []
    assert len(load_exposures(store)) > 0
    assert any(f"removed the stale risk store temp folder {data / left[0]}" in r.message
               and f"process {proc.pid} is gone" in r.message for r in caplog.records)


def test_risk_store_backup_of_a_killed_swap_is_restored(data, caplog):
    """Killed between the two renames of the swap: the store is missing, its backup is the only copy."""
    store = build_risk(data, progress=False, export_qlib=False)
    before = digest(store)
    backup = data / f".risk.old-{dead_pid()}-0badc0de"
    os.replace(store, backup)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        from qlib_ext.risk.store import sweep_stale
        sweep_stale(store)
    assert digest(store) == before and leftovers(data, "risk") == []
    assert any("restored" in r.message and str(backup) in r.message for r in caplog.records)


def test_dataset_writer_removes_a_dead_runs_temp_dir_but_keeps_a_live_ones(tmp_path, caplog):
    target = tmp_path / "qlib_data"
    dead = tmp_path / f".qlib_data.tmp-{dead_pid()}-deadbeef"
    live = tmp_path / f".qlib_data.tmp-{os.getppid()}-c0ffee00"       # the test runner's parent is alive
    legacy = tmp_path / ".qlib_data.tmp-k3j4h5"                       # an older version's name: no pid
    for p in (dead, live, legacy):
        (p / "features").mkdir(parents=True)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        with DatasetWriter(target) as w:
            w.write_calendar(pd.bdate_range("2024-01-02", periods=3))
            w.write_instruments("all", [("SH600000", "2024-01-02", "2024-01-04")])
            w.write_feature("SH600000", "close", 0, np.ones(3))
    assert not dead.exists() and live.exists() and legacy.exists()
    assert sorted(leftovers(tmp_path, "qlib_data")) == sorted([live.name, legacy.name])
    msgs = " | ".join(r.message for r in caplog.records)
    assert f"removed the stale dataset temp folder {dead}" in msgs
    assert f"left dataset temp folder {legacy} in place: its name carries no owner pid" in msgs


def test_field_stager_removes_a_dead_runs_half_saved_chunk(micro_market, tmp_path, caplog):
    root = Path(shutil.copytree(micro_market, tmp_path / "d", ignore=DAY_ONLY))
    st = FieldStager(root, "job", ["x"])
    days = st.calendar[:3]
    st.save("c0", {"x": pd.DataFrame(1.0, index=days, columns=["SH600000"])})
    half = st.stage / f"{CHUNK_TMP}{dead_pid()}-12345678"
    half.write_bytes(b"PK\x03")                                        # a chunk file cut short by kill -9
    bin_tmp = root / "features" / "sh600000" / f".tmp-{dead_pid()}-abcdef01"
    bin_tmp.write_bytes(b"\x00\x00")                                  # a bin a killed commit was writing
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        st = FieldStager(root, "job", ["x"])                           # the rerun resumes ...
        assert st.done("c0") and not half.exists()                     # ... keeps the finished chunk, drops the half one
        st.commit()
    assert not bin_tmp.exists() and (root / "features" / "sh600000" / "x.day.bin").exists()
    msgs = " | ".join(r.message for r in caplog.records)
    assert "staged chunk temp file" in msgs and "field temp file" in msgs


def test_import_augment_removes_a_dead_imports_staging(micro_market, tmp_path, caplog):
    root = Path(shutil.copytree(micro_market, tmp_path / "d", ignore=DAY_ONLY))
    stale = root / ".staging" / f"import-{dead_pid()}"
    (stale / "features" / "sh600000").mkdir(parents=True)
    src = tmp_path / "src"
    make_source(src)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        try:
            import_dataset(src, augment=root, progress=False)
        except ValueError:
            pass                                   # the 3-stock source need not fit the micro market: the sweep ran first
    assert not stale.exists() and not (root / ".staging").exists()
    assert any("import staging folder" in r.message for r in caplog.records)
