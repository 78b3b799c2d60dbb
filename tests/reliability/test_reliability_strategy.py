"""Bad configuration of the index-enhancement strategy (``qlib_ext.strategy``): optimizer presets,
signal files and day fields; each error names the file, key or field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qlib_ext.data.bin_io import bin_path
from qlib_ext.data.panel import read_instruments
from qlib_ext.strategy import IndexEnhancementStrategy, load_preset, make_optimizer
from qlib_ext.strategy.market import DayFields


def test_strategy_preset_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: figure10\nturnvoer: 0.3\n")
    with pytest.raises(ValueError, match=r"mine\.yaml: unknown keys \['turnvoer'\]"):
        load_preset(path)


def test_strategy_preset_circular_base_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(ValueError, match="circular 'base' chain"):
        load_preset(tmp_path / "a.yaml")


def test_strategy_unknown_preset_lists_the_presets():
    with pytest.raises(FileNotFoundError, match=r"optimizer preset 'figure11' not found.*'figure10'"):
        make_optimizer("figure11")


def test_strategy_penalty_for_a_constraint_not_in_the_set_is_named():
    with pytest.raises(ValueError, match=r"penalties given for constraints not in the set: \['SizeMoment2'\]"):
        make_optimizer(None, penalties={"SizeMoment2": 5.0})


def test_strategy_missing_signal_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"signal file .*pred\.pkl not found"):
        IndexEnhancementStrategy(signal=str(tmp_path / "pred.pkl"))


def test_strategy_unfilled_signal_placeholder_is_named():
    with pytest.raises(ValueError, match=r"signal '<PRED>' is an unfilled placeholder"):
        IndexEnhancementStrategy(signal="<PRED>")


def test_strategy_day_field_missing_everywhere_is_named(micro_market, tmp_path):
    root = Path(shutil.copytree(micro_market, tmp_path / "ds", ignore=shutil.ignore_patterns("*.1min.bin")))
    for inst in read_instruments(root, "csiall")["instrument"].unique():
        bin_path(root, inst, "w_csi500").unlink()
    with pytest.raises(ValueError, match=r"field 'w_csi500' has no data for the instruments of 'csiall'"):
        DayFields(root, ["w_csi500", "industry"])
