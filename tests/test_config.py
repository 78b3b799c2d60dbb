"""The one preset loader (qlib_ext.config): lookup order, base chains, deep merge and key checks."""

from __future__ import annotations

import pytest
import yaml

from qlib_ext.cli import main
from qlib_ext.config import ENV_VAR, deep_merge, find_config, list_configs, load_config, locate, package_dir
from qlib_ext.data.synth import load_market_config


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory without configs/ and no QLIB_EXT_CONFIG_PATH."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_packaged_copy_is_the_repo_configs_folder(elsewhere):
    src = locate("optimizer", "figure10")
    assert src.origin == "package" and src.path == package_dir() / "optimizer" / "figure10.yaml"
    raw = yaml.safe_load(src.path.read_text())
    assert load_config("optimizer", "figure10") == raw
    assert {s.name for s in list_configs("market")} >= {"tiny", "default", "full"}


def test_lookup_order_explicit_cwd_env_package(elsewhere, monkeypatch):
    env1, env2 = elsewhere / "env1", elsewhere / "env2"
    write(env2 / "optimizer" / "floor0.yaml", "turnover: 0.9\n")
    write(env1 / "optimizer" / "floor0.yaml", "turnover: 0.7\n")
    monkeypatch.setenv(ENV_VAR, f"{env1}:{env2}")
    assert locate("optimizer", "floor0").origin == "env" and load_config("optimizer", "floor0") == {"turnover": 0.7}
    write(elsewhere / "configs" / "optimizer" / "floor0.yaml", "turnover: 0.5\n")
    assert locate("optimizer", "floor0").origin == "cwd" and load_config("optimizer", "floor0") == {"turnover": 0.5}
    mine = write(elsewhere / "x" / "floor0.yaml", "turnover: 0.1\n")
    assert locate("optimizer", mine).origin == "explicit" and load_config("optimizer", mine) == {"turnover": 0.1}
    rows = [(s.name, s.origin) for s in list_configs("optimizer", shadowed=True) if s.name == "floor0"]
    assert rows == [("floor0", "cwd"), ("floor0", "env"), ("floor0", "env"), ("floor0", "package")]
    assert [s.origin for s in list_configs("optimizer") if s.name == "floor0"] == ["cwd"]


def test_base_chain_deep_merges_and_overrides(elsewhere):
    write(elsewhere / "configs" / "models" / "parent.yaml", "a: 1\nnested: {x: 1, y: {p: 1, q: 2}}\nlist: [1, 2]\n")
    child = write(elsewhere / "configs" / "models" / "child.yaml",
                  "base: parent\nnested: {y: {q: 3}, z: 4}\nlist: [9]\n")
    want = {"a": 1, "nested": {"x": 1, "y": {"p": 1, "q": 3}, "z": 4}, "list": [9]}
    assert load_config("models", "child") == want
    assert load_config("models", child, nested={"x": 5}) == deep_merge(want, {"nested": {"x": 5}})
    assert want["nested"]["x"] == 1  # no aliasing into the caller's dicts
    # a relative base path is taken from the file's folder
    write(elsewhere / "elsewhere" / "sweep.yaml", "base: ../configs/models/child.yaml\nb: 2\n")
    assert load_config("models", elsewhere / "elsewhere" / "sweep.yaml") == {**want, "b": 2}


def test_base_cycle_names_the_files(elsewhere):
    write(elsewhere / "configs" / "sweeps" / "a.yaml", "base: b\n")
    write(elsewhere / "configs" / "sweeps" / "b.yaml", "base: c\n")
    write(elsewhere / "configs" / "sweeps" / "c.yaml", "base: a\n")
    with pytest.raises(ValueError, match=r"a\.yaml: circular 'base' chain .*a\.yaml.*b\.yaml.*c\.yaml.*a\.yaml"):
        load_config("sweeps", "a")


def test_unknown_key_names_the_file_and_the_key(elsewhere):
    write(elsewhere / "configs" / "optimizer" / "base1.yaml", "turnvoer: 0.2\n")
    write(elsewhere / "configs" / "optimizer" / "top.yaml", "base: base1\nturnover: 0.3\n")
    with pytest.raises(ValueError, match=r"base1\.yaml: unknown keys \['turnvoer'\]"):
        load_config("optimizer", "top", allowed=["turnover"])
    with pytest.raises(ValueError, match=r"overrides of optimizer config 'top': unknown keys \['floor'\]"):
        load_config("optimizer", "top", allowed=["turnover", "turnvoer"], floor=1)
    with pytest.raises(ValueError, match=r"overrides of market config 'tiny': unknown keys \['n_stock'\]"):
        load_market_config("tiny", n_stock=3)
    write(elsewhere / "configs" / "market" / "mine.yaml", "base: tiny\nseeed: 3\n")
    with pytest.raises(ValueError, match=r"mine\.yaml: unknown keys \['seeed'\]"):
        load_market_config("mine")


def test_errors_name_family_and_known_presets(elsewhere):
    with pytest.raises(FileNotFoundError, match=r"optimizer preset 'figure11' not found.*known: \[.*'figure10'"):
        find_config("optimizer", "figure11")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_config("market", elsewhere / "nope" / "x.yaml")
    with pytest.raises(ValueError, match="unknown config family 'model'"):
        find_config("model", "x")
    write(elsewhere / "configs" / "models" / "list.yaml", "- 1\n")
    with pytest.raises(ValueError, match=r"list\.yaml: expected a mapping"):
        load_config("models", "list")


def test_cli_configs_list_and_show(elsewhere, capsys):
    write(elsewhere / "configs" / "optimizer" / "floor0.yaml", "base: figure10\nturnover: 0.4\n")
    assert main(["configs", "list", "optimizer"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["optimizer", "floor0", "cwd", str(elsewhere / "configs" / "optimizer" / "floor0.yaml")] in rows
    assert ["optimizer", "floor0", "package", str(package_dir() / "optimizer" / "floor0.yaml"), "(shadowed)"] in rows
    assert main(["configs", "show", "floor0"]) == 0
    out = capsys.readouterr().out
    assert "# optimizer/figure10: package" in out and "# optimizer/floor0: cwd" in out
    shown = yaml.safe_load(out)
    assert shown["turnover"] == 0.4 and shown["constituent_floor"] == 0.8
    assert main(["configs", "show", "nope"]) == 2
