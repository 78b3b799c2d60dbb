"""Importer validation on small tushare-like CSV exports: each corrupted input fails with file/row/field/check
and writes nothing; a late failure leaves an existing dataset untouched; strict promotes warnings."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.importers import ImportValidationError, import_dataset
from qlib_ext.data.importers.export import export_tushare


@pytest.fixture(scope="module")
def csv_source(micro_market, tmp_path_factory) -> Path:
    """The micro market as tushare-unit CSV files (weights on every session, so a clean import has no warning)."""
    out = tmp_path_factory.mktemp("imp_val") / "src"
    export_tushare(micro_market, out, fmt="csv", weight_every=1, minute_stocks=1)
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "src"
    shutil.copytree(src, dst)
    return dst


def _edit(path: Path, fn) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"trade_date": str, "in_date": str, "out_date": str})
    df = fn(df)
    df.to_csv(path, index=False)
    return df


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_clean_csv_import_has_no_issue(csv_source, tmp_path):
    rep = import_dataset(csv_source, tmp_path / "out", progress=False)
    assert rep.ok and not rep.warnings, rep.render()
    assert "lots of 100 shares" in rep.units["daily.csv"]
    assert "10^4 shares" in rep.units["daily_basic.csv"]
    assert (tmp_path / "out" / "meta" / "import_report.json").exists()


def _set(df: pd.DataFrame, i: int, **vals) -> pd.DataFrame:
    for k, v in vals.items():
        df.loc[i, k] = v
    return df


# (file, edit, check, field, row) -- row None where the check names a key instead of a row
CASES = {
    "high_low": ("daily.csv", lambda d: _set(d, 5, high=d.loc[5, "low"] - 0.5), "high_low", "high", 6),
    "non_positive": ("daily.csv", lambda d: _set(d, 7, close=0.0), "positive_price", "close", 8),
    "close_outside": ("daily.csv", lambda d: _set(d, 9, close=d.loc[9, "high"] + 1), "close_range", "close", 10),
    "negative_volume": ("daily.csv", lambda d: _set(d, 11, vol=-5.0), "vol_negative", "vol", 12),
    "duplicate": ("daily.csv", lambda d: pd.concat([d.iloc[:3], d.iloc[[1]], d.iloc[3:]], ignore_index=True),
                  "duplicate", None, 4),
    "weekend": ("daily.csv", lambda d: _set(d, 2, trade_date="20230506"), "calendar", "trade_date", 3),
    "bad_date": ("daily.csv", lambda d: _set(d, 4, trade_date="2023x506"), "date_format", "trade_date", 5),
    "bad_code": ("daily.csv", lambda d: _set(d, 4, ts_code="60000X.SH"), "code", "ts_code", 5),
    "text_in_number": ("daily.csv", lambda d: d.astype({"open": object}).pipe(_set, 6, open="abc"), "type", "open", 7),
    "missing_column": ("daily.csv", lambda d: d.drop(columns=["low"]), "missing_column", "low", None),
    "whole_day_missing": ("daily.csv", lambda d: d[d["trade_date"] != "20230605"], "gaps", None, None),
    "mixed_units": ("daily.csv", lambda d: d.assign(vol=np.where(d.index == 20, d["vol"] * 100, d["vol"]),
                                                    amount=np.where(d.index == 20, d["amount"] * 1000, d["amount"])),
                    "mixed_units", "amount", 21),
    "factor_not_positive": ("adj_factor.csv", lambda d: _set(d, 3, adj_factor=-1.0), "positive_factor", "adj_factor", None),
    "factor_duplicate": ("adj_factor.csv", lambda d: pd.concat([d, d.iloc[[0]]], ignore_index=True), "duplicate", None,
                         None),
    "shares_negative": ("daily_basic.csv", lambda d: _set(d, 2, float_share=-3.0), "positive_shares", "float_share", None),
    "industry_overlap": ("industry.csv", lambda d: pd.concat([d, d.iloc[[0]].assign(l1_code=220000)], ignore_index=True),
                         "span_overlap", "in_date", None),
    "industry_reversed": ("industry.csv", lambda d: _set(d, 0, out_date="20200101"), "span", "out_date", 1),
    "index_high_low": ("index_daily.csv", lambda d: _set(d, 3, high=1.0, low=2.0), "high_low", "high", 4),
    "member_reversed": ("index_member.csv", lambda d: _set(d, 1, out_date="20000101"), "span", "out_date", 2),
    "weights_sum": ("index_weight.csv", lambda d: _set(d, 0, weight=d.loc[0, "weight"] + 5), "weight_sum", "weight", None),
    "minute_time": ("minute_600000.csv", lambda d: _set(d, 0, trade_time="2024-03-25 12:00:00"), "minute_time",
                    "trade_time", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupted_input_fails_naming_file_row_field_check(csv_source, tmp_path, case):
    fname, edit, check, field, row = CASES[case]
    src = _copy(csv_source, tmp_path)
    _edit(src / fname, edit)
    out = tmp_path / "out"
    with pytest.raises(ImportValidationError) as err:
        import_dataset(src, out, progress=False)
    issue = next(i for i in err.value.report.errors if i.check == check)
    assert issue.file == fname
    assert f"[check {check}]" in str(err.value) and fname in str(err.value)
    if field is not None:
        assert issue.field == field
    if row is not None:
        assert issue.row == row and f"row {row}" in str(issue)
    assert not out.exists(), "a failed import must not leave an output"
    assert not list(tmp_path.glob(".out.tmp-*")), "the writer's temp dir must be removed"


def test_high_low_message_is_exact(csv_source, tmp_path):
    src = _copy(csv_source, tmp_path)
    df = _edit(src / "daily.csv", lambda d: _set(d, 5, high=1.25, low=1.5))
    with pytest.raises(ImportValidationError) as err:
        import_dataset(src, tmp_path / "out", progress=False)
    want = f"daily.csv row 6 ({df.loc[5, 'ts_code']} {df.loc[5, 'trade_date']}): high 1.25 < low 1.5 [check high_low]"
    assert want in str(err.value)


def test_malformed_csv_is_a_read_error(csv_source, tmp_path):
    src = _copy(csv_source, tmp_path)
    lines = (src / "daily_basic.csv").read_text().splitlines()
    lines[4] += ",1,2,3"
    (src / "daily_basic.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportValidationError, match=r"daily_basic.csv row 4: cannot read.*\[check read\]"):
        import_dataset(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_late_failure_leaves_previous_dataset_intact(csv_source, tmp_path):
    """A corrupt minute file (read inside the writer, after every stock bin is written) aborts the whole import."""
    out = tmp_path / "out"
    import_dataset(csv_source, out, progress=False)
    before = _tree_digest(out)
    src = _copy(csv_source, tmp_path)
    minute = src / "minute_600000.csv"
    pd.read_csv(minute).to_parquet(minute.with_suffix(".parquet"))
    minute.unlink()
    raw = minute.with_suffix(".parquet").read_bytes()
    minute.with_suffix(".parquet").write_bytes(raw[: len(raw) // 2] + b"\x00garbage" + raw[len(raw) // 2:])
    with pytest.raises(ImportValidationError, match=r"minute_600000.parquet.*\[check read\]"):
        import_dataset(src, out, progress=False)
    assert _tree_digest(out) == before
    assert not list(tmp_path.glob(".out.*")), "no temp or old dir may be left beside the dataset"


def test_strict_turns_a_warning_into_an_error(csv_source, tmp_path):
    src = _copy(csv_source, tmp_path)
    _edit(src / "index_member.csv", lambda d: pd.concat(
        [d, pd.DataFrame({"index_code": ["000300.SH"], "con_code": ["688999.SH"], "in_date": ["20230504"],
                          "out_date": [None]})], ignore_index=True))
    rep = import_dataset(src, tmp_path / "lenient", progress=False)
    assert [w.check for w in rep.warnings] == ["unknown_code"] and rep.warnings[0].key == "688999.SH"
    with pytest.raises(ImportValidationError, match=r"688999.SH.*\[check unknown_code\].*") as err:
        import_dataset(src, tmp_path / "strict", strict=True, progress=False)
    assert "promoted by strict" in str(err.value)
    assert not (tmp_path / "strict").exists()


def test_explicit_units_contradicting_the_data_fail(csv_source, tmp_path):
    with pytest.raises(ImportValidationError, match=r"daily.csv row 1 .*fits vol in lots.*\[check units\]"):
        import_dataset(csv_source, tmp_path / "out", units="fixture", progress=False)
