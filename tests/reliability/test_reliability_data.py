"""Bad input to the dataset layer: the Qlib bin writer, ``data check``, FieldStager and the synthetic
market's config.  Each case asserts the error names the file/field/date/constraint and that nothing
was written or corrupted (target absent or byte-identical, no temp dirs left)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from qlib_ext.cli import main
from qlib_ext.config import find_config
from qlib_ext.data import bin_io
from qlib_ext.data.bin_io import DatasetWriter, bin_path, read_bin
from qlib_ext.data.calendar import minute_calendar
from qlib_ext.data.check import check_dataset
from qlib_ext.data.fields import FieldStager
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel
from qlib_ext.data.synth import build_market, load_market_config

from .helpers import digest, disk_full, leftovers
from conftest import micro_config

DAYS = pd.bdate_range("2024-01-02", periods=5)


def small_dataset(target: Path, value: float = 1.0) -> Path:
    """A 2-stock, 5-day dataset written through the writer (the 'previous' dataset of a target)."""
    with DatasetWriter(target) as w:
        w.write_calendar(DAYS)
        w.write_instruments("all", [("SH600000", DAYS[0], DAYS[-1]), ("SZ000001", DAYS[0], DAYS[-1])])
        for inst in ("SH600000", "SZ000001"):
            w.write_feature(inst, "close", 0, np.full(5, value))
    return target


@pytest.fixture()
def previous(tmp_path) -> tuple[Path, dict]:
    target = small_dataset(tmp_path / "qlib_data")
    return target, digest(target)


@pytest.fixture()
def ds(micro_market, tmp_path) -> Path:
    return Path(shutil.copytree(micro_market, tmp_path / "micro"))


def assert_untouched(target: Path, before: dict) -> None:
    assert digest(target) == before, "the previous dataset was modified"
    assert leftovers(target.parent, target.name) == []


# -- the writer ---------------------------------------------------------------------------------
def test_writer_crash_mid_write_keeps_previous_dataset(previous):
    target, before = previous
    with pytest.raises(RuntimeError, match="simulated crash"):
        with DatasetWriter(target) as w:
            w.write_calendar(DAYS)
            w.write_feature("SH600000", "close", 0, np.full(5, 2.0))
            raise RuntimeError("simulated crash")
    assert_untouched(target, before)


def test_writer_calendar_not_increasing_names_the_calendar(tmp_path):
    target = tmp_path / "qlib_data"
    with pytest.raises(ValueError, match=r"calendar day: timestamps must be strictly increasing"):
        with DatasetWriter(target) as w:
            w.write_calendar(DAYS[::-1])
    assert not target.exists() and leftovers(tmp_path, "qlib_data") == []


def test_writer_non_contiguous_append_names_instrument_field_and_index(previous):
    target, before = previous
    with pytest.raises(ValueError, match=r"SZ000001/close\.day: block starts at calendar index 4, expected 2"):
        with DatasetWriter(target) as w:
            w.write_calendar(DAYS)
            w.append_feature("SZ000001", "close", 0, np.ones(2))
            w.append_feature("SZ000001", "close", 4, np.ones(1))
    assert_untouched(target, before)


def test_writer_bin_longer_than_calendar_refused_at_commit(previous):
    target, before = previous
    with pytest.raises(ValueError, match=r"close\.day\.bin: covers calendar indices 3\.\.7 but calendars/day\.txt has 5"):
        with DatasetWriter(target) as w:
            w.write_calendar(DAYS)
            w.write_feature("SH600000", "close", 3, np.ones(5))
    assert_untouched(target, before)


def test_writer_disk_full_while_writing_keeps_previous_dataset(previous, monkeypatch):
    target, before = previous
    monkeypatch.setattr(DatasetWriter, "_write", disk_full(1, DatasetWriter._write))
    with pytest.raises(OSError, match="No space left"):
        small_dataset(target, value=3.0)
    assert_untouched(target, before)


@pytest.mark.parametrize("failing_rename", [1, 2], ids=["target_to_backup", "temp_to_target"])
def test_writer_disk_full_at_commit_keeps_previous_dataset(previous, monkeypatch, failing_rename):
    target, before = previous
    monkeypatch.setattr(bin_io.os, "replace", disk_full(failing_rename - 1, bin_io.os.replace, once=True))
    with pytest.raises(OSError, match="No space left"):
        small_dataset(target, value=3.0)
    monkeypatch.undo()
    assert_untouched(target, before)


def test_read_bin_truncated_file_names_path(tmp_path):
    target = small_dataset(tmp_path / "qlib_data")
    path = bin_path(target, "SH600000", "close")
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match="close.day.bin"):
        read_bin(path)


# -- qlib-ext data check ------------------------------------------------------------------------
def checked(ds: Path, capsys) -> str:
    """Run the check (API and CLI), assert it failed and changed no file; return the rendered report."""
    before = digest(ds)
    report = check_dataset(ds)
    assert not report.ok
    assert main(["data", "check", str(ds)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert digest(ds) == before, "data check modified the dataset"
    return report.render()


def test_check_truncated_bin_names_instrument_and_field(ds, capsys):
    inst = sorted(read_instruments(ds)["instrument"])[0]
    path = bin_path(ds, inst, "close")
    path.write_bytes(path.read_bytes()[:-2])
    text = checked(ds, capsys)
    assert inst in text and "close.day.bin" in text and "not a multiple of 4" in text


def test_check_bin_longer_than_calendar_names_instrument_and_extent(ds, capsys):
    inst = sorted(read_instruments(ds)["instrument"])[0]
    path = bin_path(ds, inst, "volume")
    with open(path, "ab") as fh:
        fh.write(np.ones(3, dtype="<f4").tobytes())
    text = checked(ds, capsys)
    n = len(read_calendar(ds))
    assert inst in text and "volume.day.bin" in text and f"beyond the {n}-entry calendar" in text


def test_check_calendar_shorter_than_data_is_flagged(ds, capsys):
    cal = ds / "calendars" / "day.txt"
    lines = cal.read_text().splitlines()
    cal.write_text("\n".join(lines[:-1]) + "\n")
    text = checked(ds, capsys)
    assert f"beyond the {len(lines) - 1}-entry calendar" in text


def test_check_missing_field_names_instrument_and_field(ds, capsys):
    inst = sorted(read_instruments(ds)["instrument"])[1]
    bin_path(ds, inst, "paused").unlink()
    text = checked(ds, capsys)
    assert inst in text and "paused.day.bin is missing" in text


def test_check_weights_not_summing_to_one_names_field_and_date(ds, capsys):
    w = read_panel(ds, "w_csi300")
    date = w.index[len(w) // 2]
    inst = w.columns[(w.loc[date] > 0).to_numpy()][0]
    path = bin_path(ds, inst, "w_csi300")
    start, vals = read_bin(path)
    vals = vals.copy()
    vals[w.index.get_loc(date) - start] += 0.05
    np.concatenate([[np.float32(start)], vals]).astype("<f4").tofile(path)
    text = checked(ds, capsys)
    assert "w_csi300" in text and str(date.date()) in text and "expected 1" in text


def _set(ds: Path, inst: str, field: str, t: int, value: float) -> None:
    path = bin_path(ds, inst, field)
    start, vals = read_bin(path)
    vals = vals.copy()
    vals[t - start] = value
    np.concatenate([[np.float32(start)], vals]).astype("<f4").tofile(path)


def test_check_ohlc_order_has_a_float32_tolerance(ds, capsys):
    """'high 161.906 < max(open, close) 161.906': prices stored as float32 after another tool adjusted them."""
    close, open_ = read_panel(ds, "close"), read_panel(ds, "open")
    t = len(close) // 2
    inst = close.columns[np.isfinite(close.iloc[t].to_numpy())][0]
    top = max(float(close[inst].iloc[t]), float(open_[inst].iloc[t]))
    _set(ds, inst, "high", t, top * (1 - 1e-5))            # storage rounding: not an error
    report = check_dataset(ds)
    assert not [f for f in report.findings if f.check == "ohlc"], report.render()
    _set(ds, inst, "high", t, top * (1 - 1e-3))            # a real inversion still is
    text = checked(ds, capsys)
    assert inst in text and f"high {top * (1 - 1e-3):.6g} < max(open, close)" in text
    assert str(close.index[t].date()) in text


def test_check_index_instruments_are_not_counted_as_stocks(ds, capsys):
    """SH000300 / SH000001 listed in all.txt (as Qlib's own datasets do) were checked as stocks lacking fields."""
    shutil.copytree(ds / "features" / "sh000300", ds / "features" / "sh000001")
    days = read_calendar(ds)
    with open(ds / "instruments" / "all.txt", "a") as fh:
        for code in ("SH000300", "SH000001"):
            fh.write(f"{code}\t{days[0].date()}\t{days[-1].date()}\n")
    n = read_instruments(ds)["instrument"].nunique() - 2
    report = check_dataset(ds)
    assert report.ok, report.render()
    assert report.stats["instruments"].startswith(f"{n} of {n} stocks checked") and "SH000001" not in [
        f.instrument for f in report.findings]
    assert main(["data", "check", str(ds)]) == 0


def test_check_require_minute_looks_at_every_stock(tmp_path):
    """Minute bars for stock 230 of 250 failed '--require minute' (only the first 200 were looked at)."""
    days = DAYS[:3]
    stocks = [f"SZ{k:06d}" for k in range(1, 251)]
    with DatasetWriter(tmp_path / "qlib_data") as w:
        w.write_calendar(days)
        w.write_calendar(minute_calendar(days), "1min")
        w.write_instruments("all", [(s, days[0], days[-1]) for s in stocks])
        for s in stocks:
            for f in ("open", "high", "low", "close", "volume", "factor"):
                w.write_feature(s, f, 0, np.ones(3))
        for f in ("open", "high", "low", "close", "volume"):
            w.write_feature(stocks[229], f, 0, np.ones(3 * 240), "1min")
    report = check_dataset(tmp_path / "qlib_data", require=["minute"])
    assert report.ok, report.render()
    assert report.stats["stocks with 1-minute bars"] == "1 of 250"
    assert [f.message for f in report.warnings if f.check == "require"] == [
        "--require minute: only 1 of 250 stocks have 1-minute bars; the minute factors are NaN for the others"]


# -- FieldStager --------------------------------------------------------------------------------
def _double_close(root: Path) -> pd.DataFrame:
    return 2 * read_panel(root, "close")


def test_stager_interrupted_build_resumes_from_chunk_markers(ds):
    full = _double_close(ds)
    halves = {"a": full.iloc[: len(full) // 2], "b": full.iloc[len(full) // 2:]}
    first = FieldStager(ds, "rel", ["x2"])
    first.save("a", {"x2": halves["a"]})             # ... then the process dies before chunk b
    assert not any(ds.glob("features/*/x2.day.bin"))
    again = FieldStager(ds, "rel", ["x2"])
    todo = [k for k in halves if not again.done(k)]
    assert todo == ["b"]
    for k in todo:
        again.save(k, {"x2": halves[k]})
    again.commit(read_instruments(ds))
    got = read_panel(ds, "x2", list(full.columns))
    np.testing.assert_array_equal(got.to_numpy(), full.to_numpy())
    assert not (ds / ".staging").exists()


def test_stager_date_off_calendar_names_chunk_and_date(ds):
    before = digest(ds, "features")
    st = FieldStager(ds, "rel", ["x2"])
    bad = pd.DataFrame({"SH600000": [1.0]}, index=[pd.Timestamp("2023-05-06")])   # a Saturday
    with pytest.raises(ValueError, match=r"chunk c7: date 2023-05-06 is not in calendars/day\.txt"):
        st.save("c7", {"x2": bad})
    assert not st.done("c7") and not list(st.stage.glob("c7*"))
    assert digest(ds, "features") == before


def test_stager_commit_interrupted_by_disk_full_completes_on_rerun(ds, monkeypatch):
    from qlib_ext.data import fields as fields_mod

    full = _double_close(ds)
    before = digest(ds, "features")
    st = FieldStager(ds, "rel", ["x2", "x3"])
    st.save("all", {"x2": full, "x3": full + 1})
    monkeypatch.setattr(fields_mod.os, "replace", disk_full(5, fields_mod.os.replace))
    with pytest.raises(OSError, match="No space left"):
        st.commit(read_instruments(ds))
    monkeypatch.undo()
    now = digest(ds, "features")
    assert all(now[k] == v for k, v in before.items()), "an existing field was modified"
    FieldStager(ds, "rel", ["x2", "x3"]).commit(read_instruments(ds))   # the staged chunk is still there
    np.testing.assert_array_equal(read_panel(ds, "x3", list(full.columns)).to_numpy(), (full + 1).to_numpy())
    assert not list(ds.glob("features/*/*.tmp")) and not (ds / ".staging").exists()


# -- synthetic market config --------------------------------------------------------------------
def test_synth_unknown_preset_names_known_presets(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"market preset 'tinny' not found.*known: \[.*'tiny'"):
        build_market("tinny", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_synth_bands_larger_than_universe_names_counts():
    with pytest.raises(ValueError, match=r"index bands need 44 stocks but only 22 are listed at the start"):
        load_market_config("tiny", n_stocks=30)


def test_synth_board_shares_not_summing_to_one_names_file():
    with pytest.raises(ValueError, match=r"tiny\.yaml: boards shares must sum to 1"):
        load_market_config("tiny", boards={"sh_main": 0.5})


def test_synth_missing_keys_names_file_and_keys(tmp_path):
    cfg = yaml.safe_load(find_config("market", "tiny").read_text())
    del cfg["alpha"], cfg["returns"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"broken\.yaml: missing keys \['returns', 'alpha'\]"):
        build_market(path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_synth_bad_config_leaves_existing_target_intact(previous):
    target, before = previous
    with pytest.raises(FileNotFoundError):
        build_market("no_such_preset", target, progress=False)
    assert_untouched(target, before)


@pytest.mark.parametrize("bad", [{"n_stocks": 10}, {"boards": {"sh_main": 0.5, "sz_main": 0.3, "chinext": 0.1,
                                                                "star": 0.05}}, {"alpha": None}],
                         ids=["bands_larger_than_universe", "boards_not_summing_to_one", "missing_alpha"])
def test_synth_dict_config_is_validated_like_a_preset(tmp_path, bad):
    cfg = micro_config(**{k: v for k, v in bad.items() if v is not None})
    for k in [k for k, v in bad.items() if v is None]:
        del cfg[k]
    with pytest.raises(ValueError, match="|".join(["index bands", "boards", "missing keys"])):
        build_market(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_synth_start_after_end_names_both_dates():
    with pytest.raises(ValueError, match=r"2024-03-01.*2023-01-01"):
        load_market_config("tiny", start="2024-03-01", end="2023-01-01")
