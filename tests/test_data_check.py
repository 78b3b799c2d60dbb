"""The dataset checker passes clean synthetic markets and names the problem in corrupted copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.cli import main
from qlib_ext.data.bin_io import bin_path, read_bin
from qlib_ext.data.check import CORE_FIELDS, CheckReport, check_dataset
from qlib_ext.data.panel import read_calendar, read_panel


# -- helpers -----------------------------------------------------------------------------------
def read_value(root: Path, inst: str, field: str, date: str) -> float:
    """Value of one stock field on one date, read straight from its bin."""
    start, vals = read_bin(bin_path(root, inst, field))
    return float(vals[read_calendar(root).get_loc(pd.Timestamp(date)) - start])


def write_value(root: Path, inst: str, field: str, date: str, value: float) -> None:
    """Overwrite one stock field's value on one date, keeping the bin's header."""
    path = bin_path(root, inst, field)
    start, vals = read_bin(path)
    vals = vals.copy()
    vals[read_calendar(root).get_loc(pd.Timestamp(date)) - start] = value
    np.concatenate([np.array([start], dtype="<f4"), vals.astype("<f4")]).tofile(path)


def trading_cell(root: Path) -> tuple[str, str]:
    """A (stock, date) in the middle of the calendar on which the stock traded (finite close)."""
    close = read_panel(root, "close")
    date = close.index[len(close) // 2]
    inst = close.columns[np.isfinite(close.loc[date].to_numpy())][0]
    return inst, date.strftime("%Y-%m-%d")


def find(report: CheckReport, check: str, inst: str | None = None, field: str | None = None,
         date: str | None = None, level: str = "error") -> list:
    """Findings of a check matching every given attribute."""
    return [f for f in report.findings if f.level == level and f.check == check
            and (inst is None or f.instrument == inst) and (field is None or f.field == field)
            and (date is None or f.date == date)]


def assert_named(report: CheckReport, *parts: str) -> str:
    """The report failed and its rendered text names every part (instrument, field, date...)."""
    text = report.render()
    assert not report.ok, text
    assert text.startswith("FAILED"), text
    for part in parts:
        assert part in text, f"{part!r} not in report:\n{text}"
    return text


@pytest.fixture()
def ds(micro_market, tmp_path) -> Path:
    """A fresh copy of the micro market to corrupt."""
    return Path(shutil.copytree(micro_market, tmp_path / "qlib_data"))


# -- clean datasets pass -----------------------------------------------------------------------
def test_micro_market_passes(micro_market, capsys):
    report = check_dataset(micro_market)
    assert report.ok, report.render()
    assert report.render().startswith("PASSED")
    assert main(["data", "check", str(micro_market)]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_tiny_market_passes(tiny_market):
    report = check_dataset(tiny_market)
    assert report.ok, report.render()
    assert not report.warnings, report.render()
    assert main(["data", "check", str(tiny_market)]) == 0


def test_max_instruments_limits_stock_checks(ds):
    stocks = sorted(pd.read_csv(ds / "instruments" / "all.txt", sep="\t", header=None)[0])
    bin_path(ds, stocks[-1], "volume").unlink()
    assert check_dataset(ds, max_instruments=5).ok
    assert not check_dataset(ds).ok


# -- corruptions are caught and named ----------------------------------------------------------
def test_truncated_bin(ds, capsys):
    inst, _ = trading_cell(ds)
    path = bin_path(ds, inst, "close")
    path.write_bytes(path.read_bytes()[:-2])
    report = check_dataset(ds)
    assert find(report, "bins", inst, "close")
    assert_named(report, inst, "close", "multiple of 4")
    assert main(["data", "check", str(ds)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_bin_missing_whole_values(ds):
    inst, _ = trading_cell(ds)
    path = bin_path(ds, inst, "close")
    path.write_bytes(path.read_bytes()[:-8])  # still a multiple of 4: two sessions shorter
    last = read_calendar(ds)[-2].strftime("%Y-%m-%d")
    report = check_dataset(ds)
    assert find(report, "bins", inst, "close", last)
    assert_named(report, inst, "close", last)


@pytest.mark.parametrize("header", [0.5, -3.0, np.nan])
def test_garbage_header(ds, header):
    inst, _ = trading_cell(ds)
    path = bin_path(ds, inst, "close")
    raw = np.fromfile(path, dtype="<f4")
    raw[0] = header
    raw.tofile(path)
    report = check_dataset(ds)
    assert find(report, "bins", inst, "close")
    assert_named(report, inst, "close", "header")


def test_missing_field(ds):
    inst, _ = trading_cell(ds)
    bin_path(ds, inst, "volume").unlink()
    report = check_dataset(ds)
    assert find(report, "fields", inst, "volume")
    assert_named(report, inst, "volume", "missing")


def test_required_fields_override(ds):
    inst, _ = trading_cell(ds)
    bin_path(ds, inst, "vwap").unlink()
    assert not check_dataset(ds).ok
    relaxed = check_dataset(ds, required_fields=CORE_FIELDS)
    assert relaxed.ok, relaxed.render()
    assert find(relaxed, "fields", inst, "vwap", level="warning")
    bin_path(ds, inst, "close").unlink()
    assert find(check_dataset(ds, required_fields=CORE_FIELDS), "fields", inst, "close")


def test_weights_not_summing_to_one(ds):
    w = read_panel(ds, "w_csi500")
    date = w.index[len(w) // 2]
    inst = w.columns[(w.loc[date] > 0).to_numpy()][0]
    day = date.strftime("%Y-%m-%d")
    write_value(ds, inst, "w_csi500", day, read_value(ds, inst, "w_csi500", day) * 1.5)
    report = check_dataset(ds)
    hits = find(report, "weights", field="w_csi500", date=day)
    assert hits and hits[0].count == 1
    assert_named(report, "w_csi500", day, "sums to")


def test_member_without_weight_warns(ds):
    w = read_panel(ds, "w_csi300")
    date = w.index[len(w) // 2]
    inst = w.columns[(w.loc[date] > 0).to_numpy()][0]
    day = date.strftime("%Y-%m-%d")
    write_value(ds, inst, "w_csi300", day, 0.0)
    report = check_dataset(ds)
    assert find(report, "weights", inst, "w_csi300", day, level="warning")
    assert find(report, "weights", field="w_csi300", date=day)  # and the sum is off


def test_day_without_any_weight_warns(ds):
    w = read_panel(ds, "w_csi500")
    date = w.index[len(w) // 2]
    day = date.strftime("%Y-%m-%d")
    for inst in w.columns[(w.loc[date] > 0).to_numpy()]:
        write_value(ds, inst, "w_csi500", day, 0.0)
    report = check_dataset(ds)
    assert find(report, "weights", field="w_csi500", date=day, level="warning")
    assert "no stock has w_csi500 > 0" in report.render()


def test_high_below_low(ds):
    inst, day = trading_cell(ds)
    write_value(ds, inst, "high", day, read_value(ds, inst, "low", day) * 0.9)
    report = check_dataset(ds)
    assert find(report, "ohlc", inst, "high", day)
    assert_named(report, inst, "high", day, "low")


def test_close_outside_limits(ds):
    inst, day = trading_cell(ds)
    up = read_value(ds, inst, "up_limit", day)
    write_value(ds, inst, "close", day, up + 0.5)
    write_value(ds, inst, "high", day, up + 0.5)  # keep the bar itself consistent
    report = check_dataset(ds)
    assert find(report, "limits", inst, "close", day)
    assert not find(report, "ohlc")
    assert_named(report, inst, "close", day, "up_limit")


def test_suspended_day_with_volume(ds):
    inst, day = trading_cell(ds)
    write_value(ds, inst, "paused", day, 1.0)
    report = check_dataset(ds)
    assert find(report, "paused", inst, "volume", day)
    assert find(report, "paused", inst, "close", day, level="warning")
    assert_named(report, inst, "volume", day)


def test_duplicated_calendar_date(ds):
    path = ds / "calendars" / "day.txt"
    lines = path.read_text().splitlines()
    k = len(lines) // 2
    path.write_text("\n".join(lines[: k + 1] + [lines[k]] + lines[k + 1 :]) + "\n")
    report = check_dataset(ds)
    assert find(report, "calendar", date=lines[k])
    assert_named(report, lines[k], "duplicated")


def test_missing_day_calendar(ds):
    (ds / "calendars" / "day.txt").unlink()
    assert_named(check_dataset(ds), "calendars/day.txt")


def test_bad_minute_calendar(ds):
    path = ds / "calendars" / "1min.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")  # last session loses its 15:00 bar
    report = check_dataset(ds)
    assert find(report, "calendar", date=lines[-1][:10])
    assert_named(report, "1min", lines[-1][:10], "239 bars")


def test_no_minute_data_is_only_a_warning(ds):
    (ds / "calendars" / "1min.txt").unlink()
    for path in (ds / "features").glob("*/*.1min.bin"):
        path.unlink()
    report = check_dataset(ds)
    assert report.ok, report.render()
    assert find(report, "calendar", level="warning")


def test_instrument_problems(ds):
    inst, _ = trading_cell(ds)
    shutil.rmtree(ds / "features" / inst.lower())
    with open(ds / "instruments" / "csi300.txt", "a") as fh:
        fh.write("SH699999\t2023-06-01\t2023-07-03\n")
    report = check_dataset(ds)
    assert find(report, "instruments", inst)
    assert find(report, "instruments", "SH699999")
    assert_named(report, inst, "SH699999")


def test_index_close_not_positive(ds):
    days = read_calendar(ds)
    day = days[len(days) // 2].strftime("%Y-%m-%d")
    write_value(ds, "SH000905", "close", day, 0.0)
    report = check_dataset(ds)
    assert find(report, "index", "SH000905", "close", day)
    assert_named(report, "SH000905", "close", day)


# -- one report for imports and checks; the field-requirements table ------------------------------
def test_check_and_import_reports_are_one_concept():
    from qlib_ext.data.check import Finding
    from qlib_ext.data.importers import ImportReport, Issue
    from qlib_ext.data.report import DataReport

    assert CheckReport is ImportReport is DataReport and Issue is Finding
    rep = DataReport("src", out="ds")
    rep.error("high_low", "daily.csv", "high 1 < low 2", row=4, key="600000.SH 20240105", field="high")
    rep.add("warning", "weights", "w_csi300 sums to 0.9", "SH600000", "w_csi300", "2024-01-05", 3)
    assert str(rep.errors[0]) == "daily.csv row 4 (600000.SH 20240105): high 1 < low 2 [check high_low]"
    assert str(rep.warnings[0]) == "SH600000 w_csi300 2024-01-05: w_csi300 sums to 0.9 [check weights] (and 2 more)"
    assert rep.issues is rep.findings and rep.root == "ds" and not rep.ok
    d = rep.to_dict()
    assert d["issues"] == d["findings"] and (d["n_errors"], d["n_warnings"]) == (1, 1)


def test_requirements_table_is_the_one_behind_require(micro_market):
    from qlib_ext.data.requirements import ANY_WEIGHT, MINUTE_BARS, USES, fix_for, missing_fields

    assert set(USES) == {"qlib", "handlers", "label", "strategy", "risk", "minute"}
    for use, fields in USES.items():
        report = check_dataset(micro_market, require=[use])
        assert report.ok, report.render()
        day = [f for f in fields if f not in (ANY_WEIGHT, MINUTE_BARS)]
        assert report.stats["required fields"].startswith(", ".join(day))
    assert missing_fields(micro_market) == []
    assert fix_for("mf_rskew", "/d") == "qlib-ext factors minute --data /d"
    with pytest.raises(ValueError, match=r"uses: unknown \['lable'\]"):
        missing_fields(micro_market, ["lable"])
