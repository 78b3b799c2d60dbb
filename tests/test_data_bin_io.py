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
