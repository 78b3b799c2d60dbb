"""FieldStager: staged, resumable addition of daily fields to an existing dataset."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from qlib_ext.data.bin_io import bin_path, read_bin
from qlib_ext.data.fields import FieldStager
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel


def test_stage_resume_commit(micro_market, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(micro_market, root)
    cal = read_calendar(root)
    insts = sorted(read_instruments(root)["instrument"].unique())
    close = read_panel(root, "close", insts)
    before = bin_path(root, insts[0], "close").read_bytes()

    st = FieldStager(root, "demo", ["x_double", "x_neg"])
    half = len(cal) // 2
    st.save("a", {"x_double": 2 * close.iloc[:half], "x_neg": -close.iloc[:half]})
    # an interrupted run: a new stager on the same job sees chunk "a" as done
    st2 = FieldStager(root, "demo", ["x_double", "x_neg"])
    assert st2.done("a") and not st2.done("b")
    st2.save("b", {"x_double": 2 * close.iloc[half:], "x_neg": -close.iloc[half:]})
    st2.commit(read_instruments(root))

    got = read_panel(root, "x_double", insts)
    assert np.allclose(got.to_numpy(), 2 * close.to_numpy(), equal_nan=True)
    start, _ = read_bin(bin_path(root, insts[-1], "x_neg"))
    assert start == read_bin(bin_path(root, insts[-1], "close"))[0]
    assert bin_path(root, insts[0], "close").read_bytes() == before
    assert not (root / ".staging").exists()


def test_rejects_dates_off_calendar(micro_market, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(micro_market, root)
    st = FieldStager(root, "bad", ["y"])
    frame = pd.DataFrame({"SH600000": [1.0]}, index=[pd.Timestamp("2023-01-01")])
    try:
        st.save("c", {"y": frame})
    except ValueError as exc:
        assert "2023-01-01" in str(exc)
    else:
        raise AssertionError("a date off the calendar must be refused")
    assert not bin_path(root, "SH600000", "y").exists()
