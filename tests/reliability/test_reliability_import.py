"""Bad input to the importer (``qlib-ext data import``): tiny hand-made tushare-like CSV/Parquet files.

Every failing import must raise :class:`ImportValidationError` whose message names the file, the row
(1-based data row), the key (code and date) and the field or check; the target directory must hold
the previous dataset byte for byte, with no temp dir left beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from qlib_ext.cli import main
from qlib_ext.data import bin_io
from qlib_ext.data.bin_io import DatasetWriter
from qlib_ext.data.importers import ImportValidationError, import_dataset
from qlib_ext.data.importers import augment as augment_mod
from qlib_ext.data.importers import build as build_mod

from .helpers import digest, disk_full, edit_csv, leftovers, make_source, set_cell


@pytest.fixture()
def src(tmp_path) -> Path:
    make_source(tmp_path / "src")
    return tmp_path / "src"


@pytest.fixture()
def target(tmp_path) -> tuple[Path, dict]:
    """A dataset imported from a clean source: the one a failed import must leave alone."""
    make_source(tmp_path / "clean")
    out = tmp_path / "qlib_data"
    import_dataset(tmp_path / "clean", out, progress=False)
    return out, digest(out)


def fails(src: Path, target: tuple[Path, dict], *parts: str, strict: bool = False) -> str:
    """Import ``src`` over the target: must fail naming every part and leave the target as it was."""
    out, before = target
    with pytest.raises(ImportValidationError) as err:
        import_dataset(src, out, strict=strict, progress=False)
    msg = str(err.value)
    for part in parts:
        assert part in msg, f"{part!r} not in:\n{msg}"
    assert digest(out) == before, "the previous dataset was modified"
    assert leftovers(out.parent, out.name) == []
    return msg


# -- malformed files ----------------------------------------------------------------------------
def test_import_ragged_csv_row_names_file_and_row(src, target):
    path = src / "daily.csv"
    lines = path.read_text().splitlines()
    lines[5] += ",1.5,7"                             # data row 5 has two fields more than the header
    path.write_text("\n".join(lines) + "\n")
    fails(src, target, "daily.csv row 5", "Expected 9 fields", "saw 11")


def test_import_short_csv_row_names_file_row_and_fields(src, target):
    path = src / "daily.csv"
    lines = path.read_text().splitlines()
    lines[5] = ",".join(lines[5].split(",")[:4])     # data row 5 stops after `high`
    path.write_text("\n".join(lines) + "\n")
    fails(src, target, "daily.csv row 5", "600000.SH", "low is missing", "vol is missing")


def test_import_price_column_of_strings_names_file_row_and_field(src, target):
    edit_csv(src, "daily.csv", lambda df: set_cell(df, 4, "close", "abc"))
    fails(src, target, "daily.csv row 5", "close 'abc' is not a number", "[check type]")


def test_import_parquet_price_of_strings_names_file_row_and_field(tmp_path, target):
    make_source(tmp_path / "pq", fmt="parquet")
    df = pd.read_parquet(tmp_path / "pq" / "daily.parquet")
    df["high"] = df["high"].astype(str)
    df.loc[7, "high"] = "n/a"
    df.to_parquet(tmp_path / "pq" / "daily.parquet", index=False)
    fails(tmp_path / "pq", target, "daily.parquet row 8", "high 'n/a' is not a number")


def test_import_corrupt_parquet_names_file(tmp_path, target):
    make_source(tmp_path / "pq", fmt="parquet")
    (tmp_path / "pq" / "shares.parquet").write_bytes(b"PAR1 not really a parquet file")
    fails(tmp_path / "pq", target, "shares.parquet", "cannot read the file", "[check read]")


def test_import_missing_column_names_file_and_column(src, target):
    edit_csv(src, "daily.csv", lambda df: df.drop(columns=["high"]))
    fails(src, target, "daily.csv", "required column 'high' is missing", "found: ts_code, trade_date")


def test_import_missing_daily_file_names_source(src, target):
    (src / "daily.csv").unlink()
    fails(src, target, "no daily file", str(src))


# -- bad values ---------------------------------------------------------------------------------
def test_import_duplicate_keys_name_both_rows(src, target):
    edit_csv(src, "daily.csv", lambda df: pd.concat([df, df.iloc[[7]]]))
    fails(src, target, "daily.csv row 37", "600000.SH 20240111", "duplicate key, also on row 8")


def test_import_non_positive_price_names_row_key_and_field(src, target):
    edit_csv(src, "daily.csv", lambda df: set_cell(df, 3, "low", "0"))
    fails(src, target, "daily.csv row 4 (600000.SH 20240105)", "low 0 is not positive", "positive_price")


def test_import_high_below_low_names_row_and_both_prices(src, target):
    edit_csv(src, "daily.csv", lambda df: set_cell(df, 14, "high", "1.0"))
    fails(src, target, "daily.csv row 15 (000001.SZ", "high 1 < low", "[check high_low]")


def test_import_negative_volume_names_row_and_field(src, target):
    edit_csv(src, "daily.csv", lambda df: set_cell(df, 2, "vol", "-100"))
    fails(src, target, "daily.csv row 3", "vol -100 < 0", "vol_negative")


def test_import_date_off_calendar_names_row_and_date(src, target):
    edit_csv(src, "daily.csv", lambda df: set_cell(df, 3, "trade_date", "20240106"))   # a Saturday
    fails(src, target, "daily.csv row 4", "2024-01-06 is not an XSHG trading session", "[check calendar]")


def test_import_whole_session_missing_names_the_date(src, target):
    edit_csv(src, "daily.csv", lambda df: df[df["trade_date"] != "20240108"])
    fails(src, target, "daily.csv", "trading day 2024-01-08 has no stock row at all", "[check gaps]")


def test_import_unparseable_code_names_row_and_code(src, target):
    edit_csv(src, "adj_factor.csv", lambda df: set_cell(df, 5, "ts_code", "ABC123"))
    fails(src, target, "adj_factor.csv row 6", "code 'ABC123' is not like 600519.SH")


def test_import_benchmark_weights_not_summing_names_index_date_and_sum(src, target):
    edit_csv(src, "index_weight.csv", lambda df: set_cell(df, 0, "weight", "40"))
    fails(src, target, "index_weight.csv", "weights of 000300.SH on 20240102 sum to 90%", "expected 100% ± 0.5%")


def test_import_unknown_constituent_is_a_warning_then_an_error_under_strict(src, target, tmp_path):
    edit_csv(src, "index_weight.csv", lambda df: pd.concat([set_cell(df, 0, "weight", "45"), pd.DataFrame(
        [["000300.SH", "688999.SH", "20240102", "5"]], columns=df.columns)]))
    fails(src, target, "index_weight.csv", "688999.SH", "unknown_code", "promoted by strict=True", strict=True)
    report = import_dataset(src, tmp_path / "lenient", progress=False)      # not strict: imported, reported
    saved = json.loads((tmp_path / "lenient" / "meta" / "import_report.json").read_text())
    assert [i["key"] for i in saved["issues"] if i["check"] == "unknown_code"] == ["688999.SH"]
    assert report.ok and len(report.warnings) == 1


def test_import_unknown_code_in_shares_fails_under_strict(src, target):
    edit_csv(src, "shares.csv", lambda df: pd.concat([df, pd.DataFrame(
        [["688999.SH", "20240102", "1e9", "8e8"]], columns=df.columns)]))
    fails(src, target, "shares.csv", "688999.SH", strict=True)


# -- crashes, disk full, unwritable output ------------------------------------------------------
def test_import_crash_late_keeps_previous_dataset(src, target, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing meta")

    monkeypatch.setattr(build_mod, "_write_meta", crash)
    out, before = target
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_dataset(src, out, progress=False)
    assert digest(out) == before and leftovers(out.parent, out.name) == []


def test_import_disk_full_while_writing_keeps_previous_dataset(src, target, monkeypatch):
    out, before = target
    monkeypatch.setattr(DatasetWriter, "write_feature", disk_full(10, DatasetWriter.write_feature))
    with pytest.raises(OSError, match="No space left"):
        import_dataset(src, out, progress=False)
    assert digest(out) == before and leftovers(out.parent, out.name) == []


def test_import_disk_full_at_commit_keeps_previous_dataset(src, target, monkeypatch):
    out, before = target
    monkeypatch.setattr(bin_io.os, "replace", disk_full(1, bin_io.os.replace, once=True))
    with pytest.raises(OSError, match="No space left"):
        import_dataset(src, out, progress=False)
    monkeypatch.undo()
    assert digest(out) == before and leftovers(out.parent, out.name) == []


def test_import_into_path_under_a_file_names_the_path(src, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the output's parent should be")
    with pytest.raises(OSError, match="not_a_dir"):
        import_dataset(src, blocker / "qlib_data", progress=False)
    assert blocker.read_text().startswith("a file") and sorted(p.name for p in tmp_path.iterdir()) == [
        "not_a_dir", "src"]


def test_cli_import_into_unwritable_output_exits_2_naming_the_path(src, tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    assert main(["data", "import", "--source", str(src), "--out", str(blocker / "out"), "--quiet"]) == 2
    assert "not_a_dir" in capsys.readouterr().err


def test_cli_import_bad_input_exits_2_naming_file_and_row(src, tmp_path, capsys):
    edit_csv(src, "daily.csv", lambda df: set_cell(df, 3, "low", "-1"))
    assert main(["data", "import", "--source", str(src), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "daily.csv row 4" in err and "low -1 is not positive" in err and not (tmp_path / "out").exists()


# -- augment mode -------------------------------------------------------------------------------
def _drop(out: Path, *fields: str) -> None:
    for f in fields:
        for p in out.glob(f"features/*/{f}.day.bin"):
            p.unlink()


def test_augment_interrupted_by_disk_full_resumes_to_the_same_bytes(src, target, monkeypatch):
    out, full = target
    _drop(out, "turnover", "mcap")
    before = digest(out)
    monkeypatch.setattr(augment_mod.os, "replace", disk_full(2, augment_mod.os.replace))
    with pytest.raises(OSError, match="No space left"):
        import_dataset(src, augment=out, progress=False)
    monkeypatch.undo()
    mid = digest(out)
    assert {k: mid[k] for k in before} == before, "augment modified an existing file"
    assert not (out / ".staging").exists()
    import_dataset(src, augment=out, progress=False)       # the rerun adds what is still missing
    assert digest(out, "features") == {k: v for k, v in full.items() if k.startswith("features")}


def test_augment_failing_strict_check_leaves_target_untouched(src, target):
    out, _ = target
    _drop(out, "turnover")
    before = digest(out)
    edit_csv(src, "index_weight.csv", lambda df: pd.concat([set_cell(df, 0, "weight", "45"), pd.DataFrame(
        [["000300.SH", "688999.SH", "20240102", "5"]], columns=df.columns)]))
    with pytest.raises(ImportValidationError, match="688999.SH"):
        import_dataset(src, augment=out, strict=True, progress=False)
    assert digest(out) == before and not (out / ".staging").exists()


def test_import_rerun_gives_identical_fields(src, tmp_path):
    a = import_dataset(src, tmp_path / "a", progress=False)
    b = import_dataset(src, tmp_path / "b", progress=False)
    assert a.ok and b.ok
    assert digest(tmp_path / "a", "features") == digest(tmp_path / "b", "features")


# -- empty and partial files (issue 12) ---------------------------------------------------------
def header_only(src: Path, name: str) -> None:
    edit_csv(src, name, lambda df: df.iloc[:0])


@pytest.mark.parametrize("name", ["shares.csv", "adj_factor.csv", "index_weight.csv", "daily.csv"])
def test_import_header_only_file_is_an_error(src, target, name):
    """A present but empty source file was "0 errors" with mcap/turnover (or factor) silently NaN/1."""
    header_only(src, name)
    fails(src, target, name, "the file has no data rows", "[check empty]")
    fails(src, target, name, "the file has no data rows", strict=True)


def test_import_empty_parquet_file_is_an_error(tmp_path, target):
    make_source(tmp_path / "pq", fmt="parquet")
    pd.read_parquet(tmp_path / "pq" / "shares.parquet").iloc[:0].to_parquet(tmp_path / "pq" / "shares.parquet")
    fails(tmp_path / "pq", target, "shares.parquet: the file has no data rows", "[check empty]")


def test_import_zero_byte_file_is_an_error(src, target):
    (src / "adj_factor.csv").write_bytes(b"")
    fails(src, target, "adj_factor.csv: the file has no data rows", "[check empty]")


@pytest.mark.parametrize("name, check, field", [("shares.csv", "no_shares", "float_share"),
                                                ("adj_factor.csv", "no_adj_factor", "adj_factor")])
def test_import_stock_without_adj_factor_or_shares_is_counted_and_strict_fails(src, target, tmp_path, name, check,
                                                                              field):
    edit_csv(src, name, lambda df: df[df["ts_code"] != "300750.SZ"])       # one of the 3 stocks has no row
    report = import_dataset(src, tmp_path / "lenient", progress=False)
    issue = next(i for i in report.warnings if i.check == check)
    assert (issue.file, issue.key, issue.count, issue.field) == (name, "300750.SZ", 1, field)
    assert f"1 of 3 stocks with daily rows have no {field} row" in issue.message
    assert report.stats[f"{name}: stocks without a row"] == 1
    saved = json.loads((tmp_path / "lenient" / "meta" / "import_report.json").read_text())
    assert any(i["check"] == check and i["key"] == "300750.SZ" for i in saved["issues"])
    fails(src, target, name, "300750.SZ", "promoted by strict=True", strict=True)


def test_import_derived_field_mostly_nan_fails_the_readback_check(src, target):
    """Shares for 1 of 3 stocks: mcap/turnover NaN on 2/3 of the stock-days -> the read-back check fails."""
    edit_csv(src, "shares.csv", lambda df: df[df["ts_code"] == "600000.SH"])
    msg = fails(src, target, "derived field turnover is NaN on 66.7% of the 36 listed stock-days", "[check readback]")
    assert "derived field mcap is NaN" in msg


def test_import_output_passes_data_check_for_what_it_claims(src, tmp_path, capsys):
    """With all files and without a shares file: `data check` (default: the claimed fields) passes."""
    out = tmp_path / "full"
    import_dataset(src, out, progress=False)
    assert main(["data", "check", str(out)]) == 0, capsys.readouterr().out
    (src / "shares.csv").unlink()
    bare = tmp_path / "bare"
    import_dataset(src, bare, progress=False)
    claimed = json.loads((bare / "meta" / "dataset.json").read_text())["fields"]
    assert "mcap" not in claimed and not list(bare.glob("features/*/mcap.day.bin"))
    assert main(["data", "check", str(bare)]) == 0, capsys.readouterr().out
    assert main(["data", "check", str(bare), "--require", "risk"]) == 1
    out_text = capsys.readouterr().out
    assert "mcap.day.bin is missing for 3 of 3 stocks" in out_text and "turnover.day.bin is missing" in out_text
