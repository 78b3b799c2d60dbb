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


# -- signals that would trade silently on bad numbers (issue 19) ----------------------------------
import warnings  # noqa: E402

from qlib.data import D  # noqa: E402

from qlib_ext.strategy.enhancement import MAX_SIGNAL_GAP  # noqa: E402

EXECUTOR = {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
            "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}}


def universe_pred(root: Path, start: str, end: str) -> pd.DataFrame:
    """Scores for every csiall code on every session of [start, end]."""
    codes = sorted(read_instruments(root, "csiall")["instrument"].unique())
    return pred_for(codes, D.calendar(start_time=start, end_time=end))


def backtest_run(strategy, start: str, end: str) -> IndexEnhancementStrategy:
    from qlib.backtest import backtest

    from qlib_ext.backtest import report_exchange_config

    backtest(start_time=start, end_time=end, strategy=strategy, executor=EXECUTOR, benchmark="SH000905",
             account=1e8, exchange_kwargs={"exchange": report_exchange_config(start, end)})
    return strategy


def test_strategy_infinite_score_is_an_error_naming_date_and_instrument(ready):
    """Before: a +inf member score became alpha_fill='min' (the largest underweight) and the run went on."""
    root, store = ready
    pred = universe_pred(root, "2024-01-02", "2024-01-12")
    pred.loc[(pd.Timestamp("2024-01-03"), pred.index[1][1]), "score"] = np.inf
    pred.loc[(pd.Timestamp("2024-01-04"), pred.index[2][1]), "score"] = -np.inf
    with pytest.raises(ValueError, match=rf"signal: 2 infinite scores, first \[\('2024-01-03', '{pred.index[1][1]}', "
                                         r"inf\), \('2024-01-04', .*nonfinite='drop'"):
        IndexEnhancementStrategy(signal=pred, risk_store=str(store))
    with pytest.raises(ValueError, match=r"none of its \d+ scores is a finite number"):
        IndexEnhancementStrategy(signal=pred * np.inf, risk_store=str(store), nonfinite="drop")
    with pytest.raises(ValueError, match=r"nonfinite must be one of \('raise', 'drop'\), got 'keep'"):
        IndexEnhancementStrategy(signal=pred, risk_store=str(store), nonfinite="keep")


def test_strategy_infinite_scores_dropped_on_request_are_counted(ready):
    root, store = ready
    pred = universe_pred(root, "2024-01-02", "2024-01-12")
    day = pd.Timestamp("2024-01-03")                         # the signal day of the first trade day, 01-04
    from qlib_ext.data.panel import read_panel

    weight = read_panel(root, "w_csi500").loc[day]
    codes = weight.index[weight > 0]                         # benchmark members: always in the optimizer input
    pred.loc[(day, codes[0]), "score"] = np.inf
    pred.loc[(day, codes[1]), "score"] = -np.inf
    pred.loc[(day, codes[2]), "score"] = np.nan
    s = backtest_run(IndexEnhancementStrategy(signal=pred, risk_store=str(store), nonfinite="drop"),
                     "2024-01-04", "2024-01-11")
    diag = s.diagnostics()
    first = diag.iloc[0]
    assert first["signal_date"] == day and first["n_signal_inf"] == 2 and first["n_signal_nan"] == 1
    assert "2 infinite scores dropped on the signal day (nonfinite='drop')" in first["notes"]
    first_inp = s.log.weights[0].set_index("instrument")
    finite = pred.loc[day, "score"].drop(codes[:3])
    assert first_inp.loc[codes[:3], "alpha"].tolist() == [finite.min()] * 3   # dropped: alpha_fill, like a NaN
    assert s.warn_tolerated()["N infinite scores dropped on the signal day (nonfinite='drop')"] == 1


def test_strategy_signal_ending_before_the_backtest_names_the_gap(ready):
    """Before: every rebalance after the signal's end was "no signal, retried next day" and the run reported
    a normal-looking performance."""
    root, store = ready
    pred = universe_pred(root, "2024-01-02", "2024-01-12")
    with pytest.raises(ValueError, match=r"signal covers 2024-01-02\.\.2024-01-12, but the backtest 2024-01-03\.\."
                                         r"2024-02-29 trades on the signals of 2024-01-02\.\.2024-02-28: no signal "
                                         r"after 2024-01-12 \(\d+ sessions, 2024-01-15\.\.2024-02-28\).*partial_signal"):
        backtest_run(IndexEnhancementStrategy(signal=pred, risk_store=str(store)), "2024-01-03", "2024-02-29")
    s = backtest_run(IndexEnhancementStrategy(signal=pred, risk_store=str(store), partial_signal=True),
                     "2024-01-03", "2024-02-29")
    diag = s.diagnostics()
    outside = diag[diag["signal_date"] > "2024-01-12"]
    assert len(outside) > MAX_SIGNAL_GAP and (outside["status"] == "no_signal").all()
    assert (outside["notes"] == "signal day outside the signal's span (partial_signal)").all()
    assert (diag.loc[diag["signal_date"] <= "2024-01-12", "status"] != "no_signal").all()


def test_strategy_signal_starting_after_the_first_trade_day_is_tolerated_a_few_sessions(ready):
    """Qlib's usual setup (the test segment and the backtest start together) leaves the first day without a
    signal: allowed up to max_signal_gap - 1 sessions, more is the span error."""
    root, store = ready
    s = backtest_run(IndexEnhancementStrategy(signal=universe_pred(root, "2024-01-03", "2024-01-12"),
                                              risk_store=str(store)), "2024-01-03", "2024-01-10")
    assert s.diagnostics()["status"].iloc[0] == "no_signal"
    with pytest.raises(ValueError, match=r"no signal before 2024-01-10 \(5 sessions, 2024-01-03\.\.2024-01-09\)"):
        backtest_run(IndexEnhancementStrategy(signal=universe_pred(root, "2024-01-10", "2024-01-12"),
                                              risk_store=str(store)), "2024-01-04", "2024-01-12")


def test_strategy_consecutive_days_without_signal_fail_after_max_signal_gap(ready):
    """A hole inside the span (every score of ten sessions NaN; the first rebalance that meets it trades on
    01-17, signal day 01-16, then it is retried daily): before, retried forever."""
    root, store = ready
    pred = universe_pred(root, "2024-01-02", "2024-02-09")
    days = pred.index.get_level_values("datetime")
    pred.loc[(days >= "2024-01-15") & (days <= "2024-01-26"), "score"] = np.nan
    with pytest.raises(ValueError, match=rf"signal: no finite score on {MAX_SIGNAL_GAP} signal days in a row "
                                         rf"\(2024-01-16\.\.2024-01-22, max_signal_gap {MAX_SIGNAL_GAP}\)"):
        backtest_run(IndexEnhancementStrategy(signal=pred, risk_store=str(store)), "2024-01-03", "2024-02-08")
    s = backtest_run(IndexEnhancementStrategy(signal=pred, risk_store=str(store), max_signal_gap=20),
                     "2024-01-03", "2024-02-08")
    skipped = s.diagnostics()["status"] == "no_signal"
    assert skipped.sum() == 9
    assert "(9 of max_signal_gap 20 in a row)" in s.diagnostics()["notes"][skipped].iloc[-1]
    with pytest.raises(ValueError, match=r"max_signal_gap must be a whole number of rebalance days >= 1, got 0"):
        IndexEnhancementStrategy(signal=pred, risk_store=str(store), max_signal_gap=0)


def test_strategy_tz_aware_signal_is_converted_with_a_warning(ready):
    """Before: pandas' "Level type mismatch" at the first rebalance."""
    root, store = ready
    pred = universe_pred(root, "2024-01-02", "2024-01-12")
    utc = pred.copy()
    dates = pred.index.get_level_values("datetime").tz_localize("Asia/Shanghai").tz_convert("UTC")
    utc.index = pd.MultiIndex.from_arrays([dates, pred.index.get_level_values("instrument")],
                                          names=["datetime", "instrument"])
    with pytest.warns(UserWarning, match=r"signal: datetimes were tz-aware \(UTC\); converted to Asia/Shanghai dates"):
        out = normalise_signal(utc)
    pd.testing.assert_frame_equal(out, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = backtest_run(IndexEnhancementStrategy(signal=utc, risk_store=str(store)), "2024-01-04", "2024-01-11")
    diag = s.diagnostics()
    assert (diag["status"] == "optimal").all()
    assert diag["notes"].str.contains("datetimes were tz-aware").all()


def test_strategy_signal_none_says_which_shapes_are_accepted():
    """Before: Qlib's NotImplementedError("This type of signal is not supported")."""
    with pytest.raises(ValueError, match=r"signal: none given; expected a Qlib pred\.pkl.*a Qlib Signal.*"
                                         r"\(model, dataset\) pair"):
        IndexEnhancementStrategy()
    with pytest.raises(ValueError, match=r"signal: got a set; expected a Qlib pred\.pkl"):
        IndexEnhancementStrategy(signal={1, 2})


def test_strategy_refused_risk_input_names_the_rebalance_and_the_store(ready):
    """A store written elsewhere (or before its build checked) with a negative factor variance: before, the
    QP "optimised" with it; now the first rebalance stops naming its dates, the store and the factor."""
    from qlib_ext.risk import load_meta

    root, store = ready
    pred = universe_pred(root, "2024-01-02", "2024-01-12")
    s = IndexEnhancementStrategy(signal=pred, risk_store=str(store), optimizer={"risk_aversion": 1.0})
    factors = load_meta(store)["factors"]
    cov = pd.DataFrame(np.eye(len(factors)) * 1e-4, index=factors, columns=factors)
    cov.loc["size", "size"] = -5.0
    codes = pred.index.get_level_values("instrument").unique()
    s.exposures.risk = lambda day: (cov, pd.Series(1e-4, index=codes))
    with pytest.raises(ValueError, match=r"rebalance 2024-01-04 \(signal day 2024-01-03, risk store .*risk\): "
                                         r"factor_cov: negative variance for \['size'\]"):
        backtest_run(s, "2024-01-04", "2024-01-11")
