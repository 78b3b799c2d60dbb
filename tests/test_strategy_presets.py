"""Optimizer presets (configs/optimizer/*.yaml) and plain-keyword constraint sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qlib_ext.optim import ConstituentFloor, NonlinearSize, SizeMoment, StyleDeviation, Tradability, Turnover
from qlib_ext.strategy import FIGURE10, build_constraints, load_preset, make_optimizer

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "optimizer"


def by_type(optimizer) -> dict:
    return {type(c).__name__: c for c in optimizer.constraints}


def test_figure10_preset_file_matches_the_report_table():
    raw = yaml.safe_load((PRESETS / "figure10.yaml").read_text())
    assert {k: raw[k] for k in FIGURE10} == FIGURE10
    cons = by_type(make_optimizer("figure10"))
    assert cons["StockDeviation"].bound == 0.01 and cons["IndustryDeviation"].bound == 0.02
    assert cons["StyleDeviation"].bounds == {"size": 0.3} and cons["Turnover"].limit == 0.2
    assert cons["ConstituentFloor"].floor == 0.8 and "Tradability" in cons
    assert not {"NonlinearSize", "SizeMoment"} & set(cons)


@pytest.mark.parametrize("name, check", [
    ("floor100", lambda c: c["ConstituentFloor"].floor == 1.0),
    ("floor80", lambda c: c["ConstituentFloor"].floor == 0.8),
    ("floor0", lambda c: "ConstituentFloor" not in c),
    ("nonlinear_size", lambda c: c["NonlinearSize"].bound == 0.3 and c["NonlinearSize"].factor == "nonlinear_size"),
    ("size_moment2", lambda c: c["SizeMoment"].k == 2 and c["SizeMoment"].bound == 0.3),
    ("size_moment3", lambda c: c["SizeMoment"].k == 3 and c["SizeMoment"].bound == 0.3),
])
def test_report_variant_presets(name, check):
    opt = make_optimizer(name)
    cons = by_type(opt)
    assert check(cons)
    # everything else is the figure-10 baseline, inherited through `base:`
    assert cons["Turnover"].limit == 0.2 and cons["StyleDeviation"].bounds == {"size": 0.3}
    assert opt.risk_aversion == 0.0 and opt.solvers == ("highs", "clarabel") and opt.warm_start
    assert make_optimizer(name, risk_aversion=1.0).solvers == ("clarabel", "highs")  # the QP: Clarabel first


def test_keyword_overrides_switch_constraints_on_and_off():
    with pytest.raises(ValueError, match="Turnover"):  # the penalty names a constraint switched off
        make_optimizer("figure10", turnover=None, penalties={"Turnover": 3.0})
    opt = make_optimizer("figure10", turnover=0.1, nonlinear_size=0.1, size_moment3=0.2,
                         style_deviation={"size": 0.5, "beta": 0.2}, penalties={"Turnover": 3.0})
    cons = by_type(opt)
    assert isinstance(cons["Turnover"], Turnover) and cons["Turnover"].penalty == 3.0
    assert isinstance(cons["NonlinearSize"], NonlinearSize) and cons["NonlinearSize"].bound == 0.1
    assert isinstance(cons["SizeMoment"], SizeMoment) and cons["SizeMoment"].k == 3
    assert isinstance(cons["StyleDeviation"], StyleDeviation) and cons["StyleDeviation"].bounds == {"size": 0.5, "beta": 0.2}
    names = [c.name for c in build_constraints(constituent_floor=None, tradability=False, style_deviation={})]
    assert names == ["FullyInvested", "LongOnly", "StockDeviation", "IndustryDeviation", "Turnover"]
    assert not any(isinstance(c, (ConstituentFloor, Tradability)) for c in build_constraints(
        constituent_floor=None, tradability=False))


def test_preset_files_and_errors(tmp_path):
    child = tmp_path / "mine.yaml"
    child.write_text("base: size_moment2\nsize_moment2: 0.1\nturnover: 0.3\n")
    got = load_preset(child)
    assert got["size_moment2"] == 0.1 and got["turnover"] == 0.3 and got["constituent_floor"] == 0.8
    bad = tmp_path / "bad.yaml"
    bad.write_text("turnvoer: 0.3\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*turnvoer"):
        load_preset(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(ValueError, match="circular"):
        load_preset(loop)
    with pytest.raises(FileNotFoundError, match="figure10"):  # lists the presets there are
        load_preset("no_such_preset")
    with pytest.raises(ValueError, match="unknown optimizer keywords"):
        make_optimizer("figure10", floor=0.5)


def test_extra_constraints_reach_the_optimizer_from_a_preset_and_from_overrides(tmp_path):
    """``constraints: [{class, module_path, kwargs}]`` (Qlib's shape) in a preset file and in the
    strategy's ``optimizer:`` overrides; the built-in keys still come from figure10.yaml."""
    spec = {"class": "SizeMoment", "module_path": "qlib_ext.optim.constraints", "kwargs": {"k": 4, "bound": 0.5}}
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"base": "figure10", "constraints": [spec], "penalties": {"SizeMoment4": 3.0}}))
    cons = make_optimizer(mine).constraints
    assert [c.name for c in cons][-2:] == ["Tradability", "SizeMoment4"] and cons[-1].penalty == 3.0
    assert by_type(make_optimizer(mine))["Turnover"].limit == FIGURE10["turnover"]
    opt = make_optimizer("figure10", constraints=[{**spec, "kwargs": {"k": 2, "bound": 0.1, "name": "M2"}}])
    assert opt.constraints[-1].name == "M2" and opt.constraints[-1].bound == 0.1
    assert [c.name for c in build_constraints(constraints=[spec])][-1] == "SizeMoment4"
    with pytest.raises(ValueError, match="not a Constraint"):
        make_optimizer("figure10", constraints=[{"class": "OptimInput", "module_path": "qlib_ext.optim"}])


def test_resolve_preset_is_the_one_merge_rule():
    """figure 10, then the preset's keys, then the strategy's overrides; the sweep's cell identity uses it."""
    from qlib_ext.pipeline.sweep import _normalise_strategy
    from qlib_ext.strategy.presets import resolve_preset

    assert resolve_preset(None) == FIGURE10
    base = resolve_preset("figure10")  # figure10.yaml: FIGURE10's bounds and the solver's settings
    assert {k: base[k] for k in FIGURE10} == FIGURE10
    got = resolve_preset("size_moment2", {"turnover": 0.2})
    assert got == {**base, "size_moment2": 0.3, "turnover": 0.2}
    with pytest.raises(ValueError, match="turnoverr"):
        resolve_preset("figure10", {"turnoverr": 0.2})
    cfg = {"port_analysis_config": {"strategy": {"kwargs": {"preset": "size_moment2",
                                                            "optimizer": {"turnover": 0.2}}}}}
    assert _normalise_strategy(cfg)["port_analysis_config"]["strategy"]["kwargs"] == {"optimizer": got}
