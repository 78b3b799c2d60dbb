"""The Qlib binary writer: layout, atomicity, and read-back through qlib.data.D."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.bin_io import DatasetWriter, bin_path, read_bin
from qlib_ext.data.calendar import minute_calendar, trading_days

N_DAYS = len(trading_days("2023-01-03", "2023-01-31"))  # 16 sessions: Spring Festival


def _write_small(target, close: np.ndarray):
    days = trading_days("2023-01-03", "2023-01-31")
    with DatasetWriter(target) as w:
        w.write_calendar(days)
        w.write_calendar(minute_calendar(days[-2:]), "1min")
        w.write_instruments("all", [("SH600000", days[0], days[-1]), ("SZ000001", days[3], days[-1])])
        w.write_feature("SH600000", "close", 0, close)
        w.write_feature("SZ000001", "close", 3, close[3:])
        w.append_feature("SH600000", "close", 0, np.arange(240, dtype=float), "1min")
        w.append_feature("SH600000", "close", 240, np.arange(240, 480, dtype=float), "1min")
    return days


def test_layout_and_header(tmp_path):
    days = _write_small(tmp_path / "ds", np.linspace(10, 11, N_DAYS))
    root = tmp_path / "ds"
    assert (root / "calendars" / "day.txt").read_text().splitlines()[0] == str(days[0].date())
    assert (root / "calendars" / "1min.txt").read_text().splitlines()[0].endswith("09:31:00")
    start, vals = read_bin(bin_path(root, "SZ000001", "close"))
    assert start == 3 and vals.dtype == np.float32 and vals.size == len(days) - 3
    raw = np.fromfile(bin_path(root, "SZ000001", "close"), dtype="<f4")
    assert raw[0] == 3.0
    assert read_bin(bin_path(root, "SH600000", "close", "1min"))[1].size == 480


def test_qlib_reads_what_we_wrote(tmp_path):
    from qlib.data import D

    import qlib_ext

    close = np.linspace(10, 11, N_DAYS)
    days = _write_small(tmp_path / "ds", close)
    qlib_ext.init(tmp_path / "ds", mlruns=tmp_path / "mlruns")
    df = D.features(["SH600000", "SZ000001"], ["$close"], start_time=days[0], end_time=days[-1])
    got = df.xs("SH600000", level="instrument")["$close"].to_numpy()
    assert np.allclose(got, close.astype(np.float32))
    assert df.xs("SZ000001", level="instrument").index[0] == days[3]
    mins = D.features(["SH600000"], ["$close"], freq="1min")
    assert len(mins) == 480 and mins.iloc[-1, 0] == 479


def test_failure_leaves_previous_dataset_untouched(tmp_path):
    target = tmp_path / "ds"
    _write_small(target, np.linspace(10, 11, N_DAYS))
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(target) as w:
            w.write_calendar(trading_days("2023-01-03", "2023-01-10"))
            w.write_feature("SH600000", "close", 0, np.ones(6))
            raise RuntimeError("boom")
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert before == after
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]   # temp dir removed


def test_verify_rejects_bins_longer_than_the_calendar(tmp_path):
    target = tmp_path / "ds"
    with pytest.raises(ValueError, match="calendar"):
        with DatasetWriter(target) as w:
            w.write_calendar(trading_days("2023-01-03", "2023-01-10"))
            w.write_feature("SH600000", "close", 2, np.ones(10))
    assert not target.exists()


def test_non_contiguous_append_is_refused(tmp_path):
    w = DatasetWriter(tmp_path / "ds")
    w.append_feature("SH600000", "close", 0, np.ones(5))
    with pytest.raises(ValueError, match="expected 5"):
        w.append_feature("SH600000", "close", 6, np.ones(5))
    w.abort()


def test_read_bin_rejects_garbage_header(tmp_path):
    p = tmp_path / "x.day.bin"
    np.array([1.5, 1.0, 2.0], dtype="<f4").tofile(p)
    with pytest.raises(ValueError, match="not a calendar index"):
        read_bin(p)
    assert pd.Timestamp("2023-01-03") in trading_days("2023-01-03", "2023-01-04")


# ---------------------------------------------------------------------------------------------- ownership
def test_writer_marks_its_datasets_and_rewrites_only_those(tmp_path):
    import json

    from qlib_ext.data.bin_io import MARKER, has_dataset, is_our_dataset

    target = tmp_path / "ds"
    _write_small(target, np.linspace(10, 11, N_DAYS))
    marker = json.loads((target / MARKER).read_text())
    assert marker["writer"].endswith("DatasetWriter") and has_dataset(target) and is_our_dataset(target)
    _write_small(target, np.linspace(20, 21, N_DAYS))               # our dataset: replaced
    assert read_bin(bin_path(target, "SH600000", "close"))[1][0] == pytest.approx(20)
    assert json.loads((target / MARKER).read_text())["build"] != marker["build"]


def test_writer_recognises_a_dataset_of_an_earlier_version(tmp_path):
    """Datasets written before the marker carry calendars/day.txt and meta/dataset.json (synth and import)."""
    from qlib_ext.data.bin_io import MARKER

    target = tmp_path / "old"
    _write_small(target, np.linspace(10, 11, N_DAYS))
    (target / MARKER).unlink()
    (target / "meta" / "dataset.json").write_text("{}")
    _write_small(target, np.linspace(30, 31, N_DAYS))
    assert (target / MARKER).is_file()


@pytest.mark.parametrize("content", ["csv", "dataset_without_meta", "file"])
def test_writer_refuses_what_it_did_not_write(tmp_path, content):
    target = tmp_path / "user"
    if content == "file":
        target.write_text("my file")
    else:
        target.mkdir()
        (target / "a.csv").write_text("1,2\n")
        if content == "dataset_without_meta":                     # a plain Qlib dataset of the user's
            (target / "calendars").mkdir()
            (target / "calendars" / "day.txt").write_text("2023-01-03\n")
    with pytest.raises(FileExistsError, match="refusing to replace it") as err:
        _write_small(target, np.linspace(10, 11, N_DAYS))
    assert str(target) in str(err.value)
    assert (target.read_text() == "my file") if content == "file" else (target / "a.csv").read_text() == "1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user"]   # no temp, backup or lock left


def test_one_writer_per_target(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "ds"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom qlib_ext.files import PidLock\n"
        f"PidLock({str(tmp_path)!r}, what='dataset build', name='.ds.lock').acquire()\n"
        "print('held', flush=True)\ntime.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        from qlib_ext.files import LockHeld

        with pytest.raises(LockHeld, match=f"pid {holder.pid}"):
            DatasetWriter(target)
    finally:
        holder.kill()
        holder.wait()
    _write_small(target, np.linspace(10, 11, N_DAYS))              # the dead holder's lock is taken over
    assert not (tmp_path / ".ds.lock").exists()
