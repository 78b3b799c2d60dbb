"""Bad configuration of the index-enhancement strategy (``qlib_ext.strategy``): optimizer presets,
signal files and day fields; each error names the file, key or field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qlib_ext.data.bin_io import bin_path
from qlib_ext.data.panel import read_instruments
from qlib_ext.strategy import IndexEnhancementStrategy, load_preset, make_optimizer
from qlib_ext.strategy.market import DayFields


def test_strategy_preset_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: figure10\nturnvoer: 0.3\n")
    with pytest.raises(ValueError, match=r"mine\.yaml: unknown keys \['turnvoer'\]"):
        load_preset(path)


def test_strategy_preset_circular_base_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(ValueError, match="circular 'base' chain"):
        load_preset(tmp_path / "a.yaml")


def test_strategy_unknown_preset_lists_the_presets():
    with pytest.raises(FileNotFoundError, match=r"optimizer preset 'figure11' not found.*'figure10'"):
        make_optimizer("figure11")


def test_strategy_penalty_for_a_constraint_not_in_the_set_is_named():
    with pytest.raises(ValueError, match=r"penalties given for constraints not in the set: \['SizeMoment2'\]"):
        make_optimizer(None, penalties={"SizeMoment2": 5.0})


def test_strategy_missing_signal_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"signal file .*pred\.pkl not found"):
        IndexEnhancementStrategy(signal=str(tmp_path / "pred.pkl"))


def test_strategy_unfilled_signal_placeholder_is_named():
    with pytest.raises(ValueError, match=r"signal '<PRED>' is an unfilled placeholder"):
        IndexEnhancementStrategy(signal="<PRED>")


def test_strategy_day_field_missing_everywhere_is_named(micro_market, tmp_path):
    root = Path(shutil.copytree(micro_market, tmp_path / "ds", ignore=shutil.ignore_patterns("*.1min.bin")))
    for inst in read_instruments(root, "csiall")["instrument"].unique():
        bin_path(root, inst, "w_csi500").unlink()
    with pytest.raises(ValueError, match=r"field 'w_csi500' has no data for the instruments of 'csiall'"):
        DayFields(root, ["w_csi500", "industry"])


# -- signals that do not line up, late validation (issue 12) --------------------------------------
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import qlib_ext  # noqa: E402
from qlib_ext.risk import build_risk  # noqa: E402
from qlib_ext.strategy.enhancement import MIN_SIGNAL_COVERAGE, normalise_signal  # noqa: E402

DAY_ONLY = shutil.ignore_patterns("*.1min.bin", "1min.txt")


@pytest.fixture(scope="module")
def market(micro_market, tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, risk store) of the micro market, Qlib initialised on it."""
    root = Path(shutil.copytree(micro_market, tmp_path_factory.mktemp("strat") / "ds", ignore=DAY_ONLY))
    store = build_risk(root, progress=False, export_qlib=False)
    return root, store


@pytest.fixture()
def ready(market, tmp_path) -> tuple[Path, Path]:
    qlib_ext.init(market[0], mlruns=tmp_path / "mlruns")
    return market


def pred_for(codes, days) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product([pd.DatetimeIndex(days), list(codes)], names=["datetime", "instrument"])
    return pd.DataFrame({"score": np.linspace(-1, 1, len(idx))}, index=idx)


def test_strategy_signal_case_and_tushare_codes_are_normalised():
    days = pd.bdate_range("2024-01-02", periods=2)
    pred = pred_for(["sh600000", "000001.SZ"], days)
    out = normalise_signal(pred.swaplevel().sort_index())           # (instrument, datetime) order too
    assert out.index.names == ["datetime", "instrument"]
    assert sorted(out.index.get_level_values("instrument").unique()) == ["SH600000", "SZ000001"]
    np.testing.assert_allclose(out.loc[(days[1], "SZ000001"), "score"], pred.loc[(days[1], "000001.SZ"), "score"])
    with pytest.raises(ValueError, match=r"two rows for \(2024-01-02, SH600000\) once codes are upper-cased"):
        normalise_signal(pd.concat([pred_for(["sh600000"], days[:1]), pred_for(["SH600000"], days[:1])]))


@pytest.mark.parametrize("bad, says", [
    (pd.DataFrame({"score": [1.0, 2.0]}), r"index RangeIndex with 1 level"),
    (pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]},
                  index=pd.MultiIndex.from_tuples([(pd.Timestamp("2024-01-02"), "SH600000")])), r"3 columns"),
    (pd.Series(["x"], index=pd.MultiIndex.from_tuples([(pd.Timestamp("2024-01-02"), "SH600000")])),
     r"value 'x' on \(2024-01-02 00:00:00, SH600000\) is not a number"),
    (pd.Series([1.0], index=pd.MultiIndex.from_tuples([("2024-01-02", "SH600000")])), r"have 0 datetime levels"),
    ([1, 2, 3], r"got a list"),
])
def test_strategy_unreadable_signal_says_the_shape_it_expects(bad, says):
    with pytest.raises(ValueError, match=says + r".*expected a Qlib pred\.pkl"):
        IndexEnhancementStrategy(signal=bad)


def test_strategy_signal_file_that_is_not_a_pickle_is_named(tmp_path):
    path = tmp_path / "pred.pkl"
    path.write_text("datetime,instrument,score\n")
    with pytest.raises(ValueError, match=rf"signal file {path}: cannot read it as a pickle.*expected a Qlib pred\.pkl"):
        IndexEnhancementStrategy(signal=str(path))


@pytest.mark.parametrize("days", [2.5, "5", True, 0])
def test_strategy_rebalance_days_must_be_a_whole_number(days):
    with pytest.raises(ValueError, match=rf"rebalance_days must be .*, got {days!r}" if days else ">= 1"):
        IndexEnhancementStrategy(signal="<PRED>", rebalance_days=days)


def test_strategy_benchmark_universe_and_alpha_fill_checked_at_construction(ready):
    root, store = ready
    pred = pred_for(["SH600000"], ["2024-01-02"])
    with pytest.raises(FileNotFoundError, match=r"universe 'csi2000': .*csi2000\.txt not found \(instrument files: "):
        IndexEnhancementStrategy(signal=pred, universe="csi2000", risk_store=str(store))
    with pytest.raises(FileNotFoundError, match=r"the strategy needs day fields that the dataset lacks: 'w_csi800' "
                                                r"\(benchmark 'csi800' weights\).*--augment .*is not one of"):
        IndexEnhancementStrategy(signal=pred, benchmark="csi800", risk_store=str(store))
    with pytest.raises(ValueError, match=r"alpha_fill: unknown rule 'median'"):
        IndexEnhancementStrategy(signal=pred, alpha_fill="median", risk_store=str(store))
    s = IndexEnhancementStrategy(signal=pred, benchmark="SH000905", rebalance_days=5.0, risk_store=str(store))
    assert s.weight_field == "w_csi500" and s.rebalance_days == 5


def test_strategy_foreign_dataset_lists_every_missing_field_at_once(market, tmp_path):
    root = Path(shutil.copytree(market[0], tmp_path / "foreign"))
    for p in [*root.glob("features/*/industry.day.bin"), *root.glob("features/*/w_csi500.day.bin")]:
        p.unlink()
    qlib_ext.init(root, mlruns=tmp_path / "mlruns")
    with pytest.raises(FileNotFoundError, match=r"'w_csi500' \(benchmark 'csi500' weights\), 'industry' "
                                                r"\(industry bands\).*qlib-ext data import --source"):
        IndexEnhancementStrategy(signal=pred_for(["SH600000"], ["2024-01-02"]), risk_store=str(market[1]))


def test_strategy_signal_coverage_threshold_at_the_boundary(ready):
    root, store = ready
    members = read_instruments(root, "csiall")["instrument"].drop_duplicates().sort_values()
    members = pd.Index(members.to_numpy()[:40])
    assert len(members) == 40
    s = IndexEnhancementStrategy(signal=pred_for(["SH600000"], ["2024-01-02"]), risk_store=str(store))
    assert s.min_signal_coverage == MIN_SIGNAL_COVERAGE == 0.5
    day = pd.Timestamp("2024-01-02")
    alpha = pd.Series(1.0, index=members[:20])
    s._check_coverage(alpha, members, day)                           # exactly 50%: passes
    with pytest.raises(ValueError, match=r"signal on 2024-01-02: 19 of the 40 stocks of universe 'csiall' have a "
                                         r"signal \(47\.5% < min_signal_coverage 50%\); codes seen \['SH"):
        s._check_coverage(alpha.iloc[1:], members, day)
    strict = IndexEnhancementStrategy(signal=pred_for(["SH600000"], ["2024-01-02"]), risk_store=str(store),
                                      min_signal_coverage=0.9)
    with pytest.raises(ValueError, match=r"50\.0% < min_signal_coverage 90%"):
        strict._check_coverage(alpha, members, day)


def test_strategy_signal_of_another_market_fails_the_first_rebalance(ready, tmp_path):
    """Codes of another market: the backtest stops at its first rebalance, naming codes seen and expected."""
    from qlib.backtest import backtest

    from qlib_ext.backtest import report_exchange_config

    root, store = ready
    days = pd.bdate_range("2024-01-02", "2024-01-12")
    pred = pred_for([f"HK{k:05d}" for k in range(40)], days)
    strategy = IndexEnhancementStrategy(signal=pred, risk_store=str(store))
    executor = {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}}
    with pytest.raises(ValueError, match=r"signal on 2024-01-0\d: 0 of the \d+ stocks of universe 'csiall' have a "
                                         r"signal \(0\.0% < .*codes seen \['HK00000'.*codes expected \['S[HZ]"):
        backtest(start_time="2024-01-03", end_time="2024-01-10", strategy=strategy, executor=executor,
                 benchmark="SH000905", account=1e8,
                 exchange_kwargs={"exchange": report_exchange_config("2024-01-03", "2024-01-10")})


def test_strategy_tolerated_inputs_are_counted_and_warned_at_the_end(ready):
    """Fills and stale exposures do not stop a run; at its end one warning per kind says on how many rebalances."""
    root, store = ready
    s = IndexEnhancementStrategy(signal=pred_for(["SH600000"], ["2024-01-02"]), risk_store=str(store))
    s.log.records = [
        {"notes": "alpha filled ('min') for 3 stocks without a signal; NaN exposures set to 0 in ['size'] (2 stocks)",
         "n_stale_exposures": 0},
        {"notes": "alpha filled ('min') for 7 stocks without a signal", "n_stale_exposures": 4},
        {"notes": "", "n_stale_exposures": 0},
    ]
    said = []
    s.logger = type("L", (), {"warning": lambda self, m: said.append(m), "info": lambda self, m: None})()
    kinds = s.warn_tolerated()
    assert kinds == {"alpha filled ('min') for N stocks without a signal": 2,
                     "NaN exposures set to N in ['size'] (N stocks)": 1,
                     "exposures carried from an earlier date for N stocks without a row that day": 1}
    assert "2 of 3 rebalances: alpha filled ('min') for N stocks without a signal (see optim/diagnostics)" in said
    assert len(said) == 3
