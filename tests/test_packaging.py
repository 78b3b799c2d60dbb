"""A non-editable install works outside the checkout: the wheel carries the presets and package data.

The wheel is built once per session from a copy of the sources (``pip wheel --no-deps
--no-build-isolation``), installed with ``pip install --no-deps --target DIR`` and used with
``PYTHONPATH=DIR`` from a temporary directory that has no ``configs/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("qlib_ext", "configs", "workflows", "setup.cfg", "pyproject.toml", "README.md")
DATA_SUFFIXES = (".csv", ".json", ".parquet", ".j2", ".html")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel of the current working tree (built from a copy, so parallel builds do not collide)."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (whl,) = out.glob("qlib_ext-*.whl")
    return whl


@pytest.fixture(scope="session")
def site(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return target


def run_installed(site: Path, cwd: Path, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` with the installed copy first on the path, from ``cwd``."""
    environ = {k: v for k, v in os.environ.items() if k != "QLIB_EXT_CONFIG_PATH"}
    environ.update({"PYTHONPATH": str(site), **(env or {})})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=240)


def test_wheel_carries_every_preset_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {f"qlib_ext/configs/{p.relative_to(ROOT / 'configs').as_posix()}"
               for p in (ROOT / "configs").glob("*/*.y*ml")}
    presets |= {f"qlib_ext/workflows/{p.name}" for p in (ROOT / "workflows").glob("*.yaml")}
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "qlib_ext").rglob("*")
            if p.suffix in DATA_SUFFIXES and "configs" not in p.relative_to(ROOT).parts}
    assert presets and presets <= names, sorted(presets - names)
    assert data <= names, sorted(data - names)


def test_installed_copy_builds_the_market_and_the_strategy_outside_the_checkout(site, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = run_installed(site, work, f"""
        import json, qlib_ext
        from qlib_ext.config import find_config, locate
        from qlib_ext.data.synth import build_market, load_market_config
        from qlib_ext.strategy import make_optimizer
        assert qlib_ext.__file__.startswith({str(site)!r}), qlib_ext.__file__
        cfg = load_market_config("tiny", name="micro", n_stocks=40, start="2023-05-04", end="2024-03-29",
                                 minute_window=2, index_bands={{"csi300": 4, "csi500": 6, "csi1000": 10}})
        out = build_market(cfg, "qlib_data", progress=False)
        from qlib_ext.risk import build_risk
        build_risk(out, progress=False, export_qlib=False)
        qlib_ext.init(str(out), mlruns="mlruns")
        from qlib_ext.strategy import IndexEnhancementStrategy
        from qlib.data import D
        close = D.features(D.instruments("csiall"), ["$close"], start_time="2024-03-01")
        signal = close.swaplevel().sort_index().set_axis(["score"], axis=1)
        strat = IndexEnhancementStrategy(preset="figure10", signal=signal)
        opt = make_optimizer("size_moment2")
        print(json.dumps({{"tiny": [str(find_config("market", "tiny")), locate("market", "tiny").origin],
                          "floor": [c.floor for c in strat.optimizer.constraints if c.name == "ConstituentFloor"],
                          "moment": [c.bound for c in opt.constraints if c.name.startswith("SizeMoment")],
                          "bins": len(list(out.glob("features/*/close.day.bin")))}}))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["tiny"][0].startswith(str(site)) and got["tiny"][1] == "package"
    assert got["floor"] == [0.8] and got["moment"] == [0.3] and got["bins"] >= 40


def test_local_configs_then_env_then_package(site, tmp_path):
    work, env_dir = tmp_path / "work", tmp_path / "env"
    (work / "configs" / "optimizer").mkdir(parents=True)
    (env_dir / "optimizer").mkdir(parents=True)
    (work / "configs" / "optimizer" / "figure10.yaml").write_text("stock_deviation: 0.05\nturnover: 0.5\n")
    (env_dir / "optimizer" / "figure10.yaml").write_text("stock_deviation: 0.07\n")
    (env_dir / "optimizer" / "mine.yaml").write_text("base: figure10\nturnover: 0.3\n")
    code = """
        import json
        from qlib_ext.config import load_config, locate
        print(json.dumps({n: [locate("optimizer", n).origin, load_config("optimizer", n)] for n in ("figure10", "mine")}))
    """
    proc = run_installed(site, work, code, {"QLIB_EXT_CONFIG_PATH": str(env_dir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["figure10"] == ["cwd", {"stock_deviation": 0.05, "turnover": 0.5}]      # ./configs wins
    assert got["mine"] == ["env", {"stock_deviation": 0.05, "turnover": 0.3}]          # env; base by the same lookup
    shutil.rmtree(work / "configs")
    proc = run_installed(site, work, code, {"QLIB_EXT_CONFIG_PATH": str(env_dir)})
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["figure10"] == ["env", {"stock_deviation": 0.07}]
    proc = run_installed(site, work, code.replace('"mine"', ""))
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["figure10"][0] == "package" and got["figure10"][1]["constituent_floor"] == 0.8


def test_installed_cli_lists_and_shows_presets(site, tmp_path):
    proc = run_installed(site, tmp_path, "from qlib_ext.cli import main; main(['configs', 'list'])")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert ["market", "tiny", "package"] in [r[:3] for r in rows]
    assert all(r[3].startswith(str(site)) for r in rows)
    proc = run_installed(site, tmp_path, "from qlib_ext.cli import main; main(['configs', 'show', 'floor0'])")
    assert "# optimizer/figure10: package" in proc.stdout and "constituent_floor: null" in proc.stdout
