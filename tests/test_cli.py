"""The qlib-ext command line on a micro market."""

from __future__ import annotations

import yaml

from qlib_ext.cli import main
from qlib_ext.data.panel import read_calendar

from conftest import micro_config


def test_synth_from_yaml_then_check(tmp_path, capsys):
    cfg = micro_config(n_stocks=30, start="2023-09-01", index_bands={"csi300": 3, "csi500": 4, "csi1000": 6})
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "ds"
    assert main(["data", "synth", "--preset", str(path), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert str(out) in text and "qlib_ext.init" in text
    assert read_calendar(out)[0].strftime("%Y-%m-%d") == "2023-09-01"
    assert main(["data", "check", str(out)]) == 0


def test_unknown_preset_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "synth", "--preset", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "market preset 'nope' not found" in err and "tiny" in err
    assert not (tmp_path / "x").exists()


def test_risk_build_without_qlib_export(tiny_market, tmp_path, capsys):
    import shutil

    from qlib_ext.risk import load_exposures

    root = tmp_path / "ds"
    shutil.copytree(tiny_market, root, ignore=shutil.ignore_patterns("*.1min.bin"))
    assert main(["risk", "build", "--data", str(root), "--qlib-every", "0", "--quiet"]) == 0
    assert "wrote the risk model" in capsys.readouterr().out
    assert not (root / "risk" / "qlib").exists()
    assert len(load_exposures(root)) > 0


def test_import_flags_are_the_ones_its_errors_name(tmp_path, capsys):
    """`data import` follows its own advice: a GBK file names `--encoding gbk`, an unexplained adj_factor
    jump names `--accept-factor-jumps`; passing them imports, the accepted jump listed in meta."""
    import json

    from reliability.helpers import edit_csv, make_source

    src = tmp_path / "src"
    make_source(src)
    edit_csv(src, "shares.csv", lambda df: df.assign(name="浦发银行"))
    (src / "shares.csv").write_bytes((src / "shares.csv").read_text().encode("gbk"))
    edit_csv(src, "adj_factor.csv", lambda df: df.assign(adj_factor=df["adj_factor"].where(
        (df["ts_code"] != "600000.SH") | (df["trade_date"] < "20240110"), "10")))
    out = tmp_path / "ds"
    args = ["data", "import", "--source", str(src), "--out", str(out), "--quiet"]
    assert main(args) == 2
    assert "--encoding gbk" in capsys.readouterr().err
    assert main([*args, "--encoding", "gbk"]) == 2
    assert "--accept-factor-jumps" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--encoding", "gbk", "--accept-factor-jumps"]) == 0
    meta = json.loads((out / "meta" / "dataset.json").read_text())
    assert meta["accepted_factor_jumps"] == ["600000.SH 20240110"]
