"""Datasets that lack what a handler reads: each case names the field (or processor) and the fix.

Before these checks, each case ended silently (a column of NaN that ``Fillna`` turns into 0s) or late
with a message that does not say why (Qlib's "Empty data from dataset", "the train segment has no
labelled samples").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import qlib_ext
from qlib_ext.factors.requirements import MissingFieldsError
from qlib_ext.handlers import PriceVolume, SequenceDataset

START, END = "2023-09-01", "2024-02-29"
DAY_ONLY = shutil.ignore_patterns("*.1min.bin", "1min.txt")


def copy_market(micro_market: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(micro_market, root, ignore=DAY_ONLY)
    qlib_ext.init(root, mlruns=tmp_path / "mlruns")
    return root


def test_missing_turnover_is_named_not_filled(micro_market, tmp_path):
    root = copy_market(micro_market, tmp_path)
    for f in root.glob("features/*/turnover.day.bin"):
        f.unlink()
    with pytest.raises(MissingFieldsError, match=r"(?s)\$turnover \(read by feature turn_10d, feature turn_20d\)"
                                                 r".*--augment.*on_missing='drop'"):
        PriceVolume(start_time=START, end_time=END, neutralize=None)


def test_empty_turnover_field_is_an_error_after_loading(micro_market, tmp_path):
    root = copy_market(micro_market, tmp_path)
    for f in root.glob("features/*/turnover.day.bin"):
        head = np.fromfile(f, dtype="<f4")[:1]
        np.concatenate([head, np.full(f.stat().st_size // 4 - 1, np.nan, dtype="<f4")]).tofile(f)
    with pytest.raises(ValueError, match=r"no finite value in feature turn_10d = Mean\(\$turnover, 10\)"):
        PriceVolume(start_time=START, end_time=END, neutralize=None, factors=["ret_10", "turn_10d"])


def test_missing_industry_is_named_by_neutralize(micro_market, tmp_path):
    root = copy_market(micro_market, tmp_path)
    for f in root.glob("features/*/industry.day.bin"):
        f.unlink()
    with pytest.raises(MissingFieldsError, match=r"(?s)\$industry \(read by Neutralize\(preset='industry_size'\) "
                                                 r"exposure industry\).*neutralize=\['size'\]"):
        PriceVolume(start_time=START, end_time=END, factors=["ret_10"])


def test_neutralize_leaving_no_label_is_named_not_empty_data(micro_market, tmp_path):
    copy_market(micro_market, tmp_path)
    stocks = ["SH600000", "SH600001", "SH600002", "SH600003", "SH600004"]
    with pytest.raises(ValueError, match=r"learn processors \[\"Neutralize\(preset='industry_size'\)\", "
                                         r"'DropnaLabel'\] left no labelled row"):
        PriceVolume(instruments=stocks, start_time=START, end_time=END, factors=["ret_10"])


def test_gru_train_segment_past_the_labels_says_why(micro_market, tmp_path):
    from qlib_ext.models import GRUModel

    copy_market(micro_market, tmp_path)
    handler = {"class": "DailyKline", "module_path": "qlib_ext.handlers",
               "kwargs": {"start_time": "2024-01-02", "end_time": "2024-03-29", "window": 5, "neutralize": None}}
    ds = SequenceDataset(handler=handler, segments={"train": ("2024-03-20", "2024-03-29")})
    with pytest.raises(ValueError, match=r"train segment 2024-03-20..2024-03-29 has no labelled samples: its label "
                                         r"Ref\(\$vwap, -11\).*looks 11 sessions ahead"):
        GRUModel(n_epochs=1, hidden_size=4, num_layers=1, num_threads=1, progress=False).fit(ds)


def test_empty_mcap_is_named_by_neutralize_not_a_nan_label(micro_market, tmp_path):
    root = copy_market(micro_market, tmp_path)
    for f in root.glob("features/*/mcap.day.bin"):
        head = np.fromfile(f, dtype="<f4")[:1]
        np.concatenate([head, np.full(f.stat().st_size // 4 - 1, np.nan, dtype="<f4")]).tofile(f)
    with pytest.raises(ValueError, match=r"Neutralize\(preset='industry_size'\): exposure 'size' \(Log\(\$mcap\)\) "
                                         r"has no finite value"):
        PriceVolume(start_time=START, end_time=END, factors=["ret_10"])
