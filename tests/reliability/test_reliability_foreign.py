"""Foreign Qlib datasets (made by other tools, e.g. Qlib's own ``cn_data``): upper-case feature folders,
no vwap/amount/shares/industries/index weights.  ``data check`` names the case problem once with its fix,
groups missing fields by field, and ``--require`` says what each use still needs; ``risk build`` lists
every missing field at once with the import command that adds it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from qlib_ext.cli import main
from qlib_ext.data.check import CORE_FIELDS, REQUIREMENTS, check_dataset, missing_fields
from qlib_ext.data.importers import import_dataset
from qlib_ext.data.importers.export import export_tushare
from qlib_ext.data.requirements import ANY_WEIGHT, CASE_FIELD, MINUTE_BARS, stock_symbols
from qlib_ext.risk import build_risk

from .helpers import digest, leftovers

PLAIN = (*CORE_FIELDS, "change")          # what Qlib's cn_data has (no vwap, amount, shares, industry, weights)


@pytest.fixture()
def cn_data(micro_market, tmp_path) -> Path:
    """The micro market as a plain Qlib dataset: day fields of cn_data only, no meta/, no 1-minute bars."""
    keep = {f"{f}.day.bin" for f in PLAIN}

    def ignore(folder, names):
        return [n for n in names if n.endswith(".bin") and n not in keep] + [n for n in names if n in ("meta", "1min.txt")]

    return Path(shutil.copytree(micro_market, tmp_path / "cn_data", ignore=ignore))


def upper_case(root: Path) -> None:
    for d in sorted((root / "features").iterdir()):
        d.rename(d.with_name(d.name.upper()))


def fields_findings(report) -> dict[str, int]:
    return {f.field: f.count for f in report.findings if f.check == "fields"}


def test_plain_qlib_dataset_passes_as_qlib_and_says_what_strategy_and_risk_need(cn_data, capsys):
    before = digest(cn_data)
    report = check_dataset(cn_data, require=["qlib"])
    assert report.ok, report.render()
    n = len(list((cn_data / "features").glob("s[hz]6*"))) + len(list((cn_data / "features").glob("sz0*"))) \
        + len(list((cn_data / "features").glob("sz3*")))
    missing = fields_findings(report)
    assert set(missing) == {"vwap", "amount", "turnover", "total_shares", "float_shares", "mcap", "float_mcap",
                            "industry", "up_limit", "down_limit", "paused", "w_csi300", "w_csi500", "w_csi1000"}
    assert len(set(missing.values())) == 1 and next(iter(missing.values())) == n      # one line per field, counted
    assert all(f.level == "warning" for f in report.findings if f.check == "fields")
    for use in ("strategy", "risk"):
        need = report.stats[f"{use} still needs"]
        assert all(f in need for f in REQUIREMENTS[use] if f not in PLAIN), need
        assert "qlib-ext data import --source <dir with daily" in need and f"--augment {cn_data}" in need
    assert "a benchmark weight" in report.stats["strategy still needs"]
    assert main(["data", "check", str(cn_data), "--require", "qlib"]) == 0
    out = capsys.readouterr().out
    assert out.count("vwap.day.bin is missing") == 1 and "risk still needs: change" not in out
    # asked as a strategy dataset it fails, naming each field once and the missing benchmark weights
    assert main(["data", "check", str(cn_data), "--require", "qlib,strategy"]) == 1
    out = capsys.readouterr().out
    assert out.count("industry.day.bin is missing for") == 1 and "no benchmark weight field" in out
    assert digest(cn_data) == before


def test_upper_case_feature_folders_get_one_line_with_the_fix(cn_data, capsys):
    upper_case(cn_data)
    report = check_dataset(cn_data, require=["qlib"])
    case = [f for f in report.findings if f.check == "case"]
    assert len(case) == 1 and not report.ok
    assert case[0].message.startswith(f"{len(list((cn_data / 'features').iterdir()))} of ")
    assert "features/ folders are upper case (e.g. features/SH" in case[0].message
    assert "Qlib on Linux reads features/<symbol lower>/" in case[0].message and "tr A-Z a-z" in case[0].message
    assert [f for f in report.errors if f.check != "case"] == []        # not one "missing" line per instrument
    assert main(["data", "check", str(cn_data), "--require", "qlib"]) == 1
    assert capsys.readouterr().out.count("folders are upper case") == 1
    fix = case[0].message.split("rename them to lower case: ")[1].split(" (and the same")[0]
    subprocess.run(["bash", "-c", fix], check=True)                    # the fix the message gives works
    assert check_dataset(cn_data, require=["qlib"]).ok


def test_risk_build_on_a_foreign_dataset_lists_every_missing_field_once(cn_data):
    with pytest.raises(FileNotFoundError) as err:
        build_risk(cn_data, progress=False)
    msg = str(err.value)
    assert "the risk model needs day fields that the dataset lacks: 'mcap' (size, regression weights), " \
           "'turnover' (liquidity), 'industry' (industry factors)" in msg
    assert f"qlib-ext data import --source <tushare-like files> --augment {cn_data}" in msg
    assert not (cn_data / "risk").exists() and leftovers(cn_data, "risk") == []
    upper_case(cn_data)
    with pytest.raises(FileNotFoundError, match=r"'change' \(daily returns\), 'mcap'.*note: \d+ of \d+ features/ "
                                                r"folders are upper case"):
        build_risk(cn_data, progress=False)


def test_require_minute_and_unknown_uses_are_named(cn_data, capsys):
    report = check_dataset(cn_data, require=["minute"])
    assert [f.message for f in report.errors] == ["--require minute: calendars/1min.txt is missing (no 1-minute bars)"]
    with pytest.raises(ValueError, match=r"require: unknown uses \['strategi'\]"):
        check_dataset(cn_data, require=["strategi"])
    assert main(["data", "check", str(cn_data), "--require", "strategi"]) == 2
    assert "unknown uses ['strategi']" in capsys.readouterr().err


# -- a plain-Qlib-shaped dataset (issue 17): adjusted float32 prices with a stepping factor ------------
@pytest.fixture()
def plain(micro_market, tmp_path) -> Path:
    from plain_qlib import make_plain_qlib_dataset

    return make_plain_qlib_dataset(micro_market, tmp_path / "plain", upper_case=True)


def test_plain_qlib_dataset_gets_the_documented_guidance(plain, micro_market, tmp_path, capsys):
    """Which fields each use needs, which are missing (with the stock count) and the command that adds each."""
    n = len(stock_symbols(plain))
    gone = {m.field: m for m in missing_fields(plain)}
    assert set(gone) == {CASE_FIELD, "vwap", "turnover", "mcap", "industry", "paused", "up_limit", "down_limit",
                         ANY_WEIGHT, MINUTE_BARS}
    assert all((m.stocks_missing, m.stocks_total) == (n, n) for m in gone.values())
    assert "tr A-Z a-z" in gone[CASE_FIELD].fix
    assert gone["vwap"].uses == ("handlers", "label", "strategy")
    assert gone["vwap"].fix == f"qlib-ext data import --source <dir with daily (with amount)> --augment {plain}"
    assert gone["mcap"].fix == f"qlib-ext data import --source <dir with daily, daily_basic (or shares)> --augment {plain}"
    assert gone["industry"].fix == f"qlib-ext data import --source <dir with daily, industry> --augment {plain}"
    assert "--out <new dir>" in gone[MINUTE_BARS].fix and "does not add minute bars" in gone[MINUTE_BARS].fix
    assert [m.field for m in missing_fields(plain, ["label"])] == [CASE_FIELD, "vwap"]
    # data check prints it, per use
    assert main(["data", "check", str(plain)]) == 1
    out = capsys.readouterr().out
    assert "what each use needs:" in out and "qlib needs open, high, low, close, volume, factor: all present" in out
    assert f"vwap: missing for {n} of {n} stocks (the vwap forward-return label); add with `qlib-ext data import" in out
    assert "label needs vwap: 1 missing" in out and "risk needs change, mcap, turnover, industry: 3 missing" in out
    assert out.count("folders are upper case") == 1 and "all uses: cd " in out
    # the commands work: lower-case the folders, then augment from tushare-like files
    subprocess.run(["bash", "-c", gone[CASE_FIELD].fix.split(" (and the same")[0]], check=True)
    assert CASE_FIELD not in {m.field for m in missing_fields(plain)}
    export_tushare(micro_market, tmp_path / "src", weight_every=1, weight_indexes=("csi300", "csi500", "csi1000"))
    import_dataset(tmp_path / "src", augment=plain, progress=False)
    assert [m.field for m in missing_fields(plain)] == [MINUTE_BARS]


def test_missing_fields_takes_seconds_on_5000_stocks(tmp_path):
    """The preflight calls it before any stage: directory listings only, no bin opened."""
    root = tmp_path / "big"
    (root / "instruments").mkdir(parents=True)
    stocks = [f"SH{600000 + k}" for k in range(5000)]
    (root / "instruments" / "all.txt").write_text("".join(f"{s}\t2020-01-02\t2024-12-31\n" for s in stocks))
    for s in stocks:
        folder = root / "features" / s.lower()
        folder.mkdir(parents=True)
        for f in PLAIN:
            (folder / f"{f}.day.bin").touch()
    t0 = time.perf_counter()
    gone = missing_fields(root)
    seconds = time.perf_counter() - t0
    assert {m.field for m in gone} >= {"vwap", "mcap", "industry"} and gone[0].stocks_total == 5000
    assert seconds < 5, f"missing_fields took {seconds:.1f} s on 5,000 stocks"
