"""Bad input to the importer (``qlib-ext data import``): tiny hand-made tushare-like CSV/Parquet files.

Every failing import must raise :class:`ImportValidationError` whose message names the file, the row
(1-based data row), the key (code and date) and the field or check; the target directory must hold
the previous dataset byte for byte, with no temp dir left beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.cli import main
from qlib_ext.data import bin_io
from qlib_ext.data.bin_io import DatasetWriter, read_bin
from qlib_ext.data.check import CORE_FIELDS, check_dataset
from qlib_ext.data.importers import ImportValidationError, import_dataset
from qlib_ext.data.importers import augment as augment_mod
from qlib_ext.data.importers import build as build_mod
from qlib_ext.data.panel import read_panel

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


# -- found on real data (issue 17 item 5) -------------------------------------------------------
@pytest.mark.parametrize("pre_close", [True, False], ids=["with_pre_close", "without_pre_close"])
def test_import_adj_factor_jump_is_an_error_naming_stock_and_date(src, target, tmp_path, pre_close):
    """A 10x adj_factor step with no price gap imported clean (adjusted close x10, change +900%)."""
    edit_csv(src, "adj_factor.csv", lambda df: df.assign(adj_factor=df["adj_factor"].where(
        (df["ts_code"] != "600000.SH") | (df["trade_date"] < "20240110"), "10")))
    if not pre_close:
        edit_csv(src, "daily.csv", lambda df: df.drop(columns=["pre_close"]))
    fails(src, target, "adj_factor.csv (600000.SH 20240110)", "adj_factor jumps 1 -> 10 (x10)", "+9",
          "[check adj_factor_jump]", "--accept-factor-jumps")
    # accepted explicitly: imported, listed as a warning and in meta, and data check agrees
    out = tmp_path / "accepted"
    report = import_dataset(src, out, accept_factor_jumps=True, progress=False)
    assert [w.check for w in report.warnings] == ["adj_factor_jump"]
    meta = json.loads((out / "meta" / "dataset.json").read_text())
    assert meta["accepted_factor_jumps"] == ["600000.SH 20240110"]
    check = check_dataset(out)
    assert check.ok and [(f.instrument, f.date) for f in check.warnings if f.check == "factor_jump"] == [
        ("SH600000", "2024-01-10")]
    # the same dataset without the acceptance fails data check, naming stock and date
    meta["accepted_factor_jumps"] = []
    (out / "meta" / "dataset.json").write_text(json.dumps(meta))
    check = check_dataset(out)
    assert [(f.check, f.instrument, f.field, f.date) for f in check.errors] == [
        ("factor_jump", "SH600000", "factor", "2024-01-10")]
    assert "--accept-factor-jumps" in check.render()


def test_import_vol_without_amount_needs_units(src, target, tmp_path):
    """vol in lots with no amount column was silently read as shares (volume and turnover 100x too small)."""
    edit_csv(src, "daily.csv", lambda df: df.drop(columns=["amount"]))
    fails(src, target, "daily.csv", "vol units cannot be detected", "--units fixture", "--units tushare",
          "[check units_ambiguous]")
    lots = import_dataset(src, tmp_path / "lots", units="tushare", progress=False)
    shares = import_dataset(src, tmp_path / "shares", units="fixture", progress=False)
    assert "(given)" in lots.units["daily.csv"] and lots.ok and shares.ok
    v_lots = read_bin(tmp_path / "lots" / "features" / "sh600000" / "volume.day.bin")[1]
    v_shares = read_bin(tmp_path / "shares" / "features" / "sh600000" / "volume.day.bin")[1]
    np.testing.assert_allclose(v_lots, 100 * v_shares, rtol=1e-6)


def test_import_nullable_int64_date_columns(tmp_path):
    """Int64 dates (pandas' nullable integers, <NA> for an open span) crashed in importers/indexes.py."""
    src = tmp_path / "pq"
    make_source(src, fmt="parquet")
    for name in ("daily", "adj_factor", "shares", "index_weight"):
        df = pd.read_parquet(src / f"{name}.parquet")
        df.assign(trade_date=df["trade_date"].astype(int).astype("Int64")).to_parquet(src / f"{name}.parquet")
    pd.DataFrame({"index_code": "000300.SH", "con_code": ["600000.SH", "000001.SZ", "300750.SZ"],
                  "in_date": pd.array([20240102] * 3, dtype="Int64"),
                  "out_date": pd.array([None, None, 20240110], dtype="Int64")}).to_parquet(src / "index_member.parquet")
    report = import_dataset(src, tmp_path / "out", progress=False)
    assert report.ok, report.render()
    spans = (tmp_path / "out" / "instruments" / "csi300.txt").read_text().split("\n")
    assert "SZ300750\t2024-01-02\t2024-01-10" in spans and "SH600000\t2024-01-02\t2024-01-17" in spans


def _plain_target(src: Path, out: Path) -> None:
    """The clean import as a plain Qlib dataset that holds 2 of the 3 stocks: no weights, paused, meta; the
    suspended day's volume NaN (Qlib's own datasets leave suspended days NaN)."""
    import_dataset(src, out, progress=False)
    shutil.rmtree(out / "features" / "sz300750")
    shutil.rmtree(out / "meta")
    for market in ("all", "csiall", "csi300"):
        path = out / "instruments" / f"{market}.txt"
        path.write_text("".join(ln for ln in path.read_text().splitlines(True) if not ln.startswith("SZ300750")))
    for p in [*out.glob("features/*/w_*.day.bin"), *out.glob("features/*/paused.day.bin")]:
        p.unlink()
    vol = out / "features" / "sz000001" / "volume.day.bin"
    x = np.fromfile(vol, dtype="<f4")
    assert x[5] == 0                       # data row 4 of SZ000001 (20240108) is the suspended day
    x[5] = np.nan
    x.tofile(vol)


def test_augmented_dataset_passes_our_own_check(src, tmp_path):
    """Weights renormalised after members are skipped (w_csi500 summed to 0.9974 on the real fixture) and
    suspended days with NaN volume accepted (147 errors before)."""
    edit_csv(src, "daily.csv", lambda df: df[(df["ts_code"] != "000001.SZ") | (df["trade_date"] != "20240108")])
    out = tmp_path / "plain"
    _plain_target(src, out)
    report = import_dataset(src, augment=out, progress=False)
    renorm = [w for w in report.warnings if w.check == "weight_renormalised"]
    assert len(renorm) == 1 and renorm[0].key == "SZ300750" and "w_csi300" in renorm[0].message
    w = read_panel(out, "w_csi300", ["SH600000", "SZ000001"])
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w.iloc[0], [0.625, 0.375], rtol=1e-6)              # 50 : 30 of the 80 held
    assert read_panel(out, "paused", ["SZ000001"]).loc["2024-01-08"].item() == 1
    check = check_dataset(out, required_fields=(*CORE_FIELDS, "paused", "w_csi300"))
    assert check.ok, check.render()
    assert not [f for f in check.findings if f.check in ("weights", "paused")], check.render()


# -- source files (issue 19 item 3) -------------------------------------------------------------
def _clean_fields(src: Path, tmp_path: Path) -> dict[str, str]:
    import_dataset(src, tmp_path / "clean_ref", progress=False)
    return digest(tmp_path / "clean_ref", "features")


def test_import_padded_header_names_are_stripped_and_said_once(src, tmp_path):
    """' ts_code' and 'close ' gave "required column 'ts_code' is missing (found:  ts_code, ...)"."""
    want = _clean_fields(src, tmp_path)
    edit_csv(src, "daily.csv", lambda df: df.rename(columns={"ts_code": " ts_code", "close": "close "}))
    report = import_dataset(src, tmp_path / "out", progress=False)
    assert report.ok and report.stats["daily.csv: header names stripped"] == ["' ts_code'", "'close '"]
    assert report.render().count("header names stripped") == 1
    assert digest(tmp_path / "out", "features") == want


@pytest.mark.parametrize("encoding, label", [("utf-16", "UTF-16 LE (BOM)"), ("utf-8-sig", "UTF-8 with BOM"),
                                             ("utf-16-le", "UTF-16 LE without BOM")])
def test_import_utf16_and_bom_files_are_detected(src, tmp_path, encoding, label):
    """A UTF-16 file gave a bare UnicodeDecodeError."""
    want = _clean_fields(src, tmp_path)
    for name in ("daily.csv", "shares.csv"):
        (src / name).write_bytes((src / name).read_text().encode(encoding))
    report = import_dataset(src, tmp_path / "out", progress=False)
    assert report.ok and report.units["daily.csv encoding"] == f"{label} (detected)"
    assert digest(tmp_path / "out", "features") == want


def test_import_non_utf8_file_names_the_encoding_fix(src, target, tmp_path):
    edit_csv(src, "shares.csv", lambda df: df.assign(name="浦发银行"))
    (src / "shares.csv").write_bytes((src / "shares.csv").read_text().encode("gbk"))
    fails(src, target, "shares.csv", "the file is not UTF-8: byte 0x", "--encoding gbk", "[check encoding]")
    report = import_dataset(src, tmp_path / "gbk", encoding="gbk", progress=False)
    assert report.ok and report.options["encoding"] == "gbk"


@pytest.mark.parametrize("sep, what", [(";", "';'"), ("\t", "a tab")])
def test_import_other_separator_is_named_with_its_fix(src, target, tmp_path, sep, what):
    """A ';'-separated file with decimal commas gave seven "missing column" errors and no hint."""
    want = _clean_fields(src, tmp_path)
    df = pd.read_csv(src / "daily.csv", dtype=str)
    if sep == ";":
        df = df.apply(lambda c: c.str.replace(".", ",", regex=False) if c.name not in ("ts_code",) else c)
    df.to_csv(src / "daily.csv", index=False, sep=sep)
    msg = fails(src, target, "daily.csv", f"the file is separated by {what}, not by commas", "[check separator]")
    assert msg.count("missing") == 0
    fix = msg.split("e.g. ")[1].split(" [check")[0]
    subprocess.run(["bash", "-c", fix], cwd=src, check=True)                # the fix the message gives works
    import_dataset(src, tmp_path / "fixed", progress=False)
    assert digest(tmp_path / "fixed", "features") == want
