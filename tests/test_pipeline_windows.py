"""Windows fitted to a dataset's calendar (qlib_ext.pipeline.windows): the documented rule on synthetic
calendars, the minimum span, half-given windows, and the checks of given dates."""

from __future__ import annotations

import pandas as pd
import pytest

from qlib_ext.pipeline.windows import (
    FitRule,
    WindowError,
    check_windows,
    fit_windows,
    last_quarter,
    risk_warmup,
)


def sessions(start: str, n: int) -> pd.DatetimeIndex:
    """``n`` business days from ``start`` (a synthetic exchange calendar)."""
    return pd.bdate_range(start, periods=n)


def pos(cal: pd.DatetimeIndex, day) -> int:
    return int(cal.get_loc(pd.Timestamp(day)))


def test_long_calendar_gets_the_report_shape():
    """15 years: 3-year train after the look-back, 1-year valid, the rest is the backtest ending on c[N-2]."""
    cal = sessions("2010-01-04", 3660)
    w = fit_windows(cal, lookback=155, step=244)
    assert w.train[0] == cal[155]
    assert pos(cal, w.train[1]) - pos(cal, w.train[0]) + 1 == 732
    assert pos(cal, w.valid[1]) - pos(cal, w.valid[0]) + 1 == 244
    assert pos(cal, w.valid[0]) == pos(cal, w.train[1]) + 1 and pos(cal, w.backtest[0]) == pos(cal, w.valid[1]) + 1
    assert w.backtest[1] == cal[-2]
    n_bt = pos(cal, w.backtest[1]) - pos(cal, w.backtest[0]) + 1
    assert n_bt == 3660 - 1 - 155 - 732 - 244
    assert w.rolls(cal) == -(-n_bt // 244)
    assert set(w.fitted) == {"train", "valid", "backtest", "window"}


def test_short_calendar_backtest_first_then_valid_then_train():
    """785 sessions (the real fixture's length): a year of backtest, train at its minimum, valid the rest."""
    cal = sessions("2021-01-04", 785)
    w = fit_windows(cal, lookback=155, step=244)
    n = {k: pos(cal, getattr(w, k)[1]) - pos(cal, getattr(w, k)[0]) + 1 for k in ("train", "valid", "backtest")}
    assert n == {"backtest": 244, "train": 244, "valid": 785 - 1 - 155 - 244 - 244}
    assert w.train[0] == cal[155] and w.backtest[1] == cal[-2]


def test_too_short_names_the_minimum_span():
    rule = FitRule()
    need = 155 + rule.min_train + rule.min_valid + rule.min_backtest + 1
    cal = sessions("2023-01-02", need - 1)
    with pytest.raises(WindowError, match=rf"needs at least {need} .*look-back 155"):
        fit_windows(cal, lookback=155)
    w = fit_windows(sessions("2023-01-02", need), lookback=155)         # exactly the minimum fits
    assert pos(sessions("2023-01-02", need), w.backtest[1]) == need - 2


def test_risk_store_start_pushes_the_backtest():
    cal = sessions("2021-01-04", 785)
    w = fit_windows(cal, lookback=5, rule=FitRule(train_sessions=100, valid_sessions=61, min_train=100),
                    risk_start=400)
    assert w.backtest[0] == cal[400]
    with pytest.raises(WindowError, match="risk store starts after 740"):
        fit_windows(cal, lookback=5, risk_start=740)


def test_backtest_given_train_and_valid_fitted_before_it():
    cal = sessions("2021-01-04", 785)
    bt = (cal[-60], cal[-2])
    w = fit_windows(cal, lookback=21, backtest=bt)
    assert w.backtest == bt and "backtest" not in w.fitted
    assert pos(cal, w.valid[1]) == pos(cal, bt[0]) - 1
    assert pos(cal, w.valid[1]) - pos(cal, w.valid[0]) + 1 == 244
    assert w.train[0] >= cal[21]
    with pytest.raises(WindowError, match="start the backtest on or after"):
        fit_windows(cal, lookback=21, backtest=(cal[200], cal[300]))


def test_train_valid_given_backtest_fitted_after_them():
    cal = sessions("2021-01-04", 785)
    w = fit_windows(cal, lookback=21, train=(cal[30], cal[300]), valid=(cal[301], cal[400]))
    assert w.backtest == (cal[401], cal[-2]) and w.fitted[0] == "backtest"
    with pytest.raises(WindowError, match="fewer than the minimum 61"):
        fit_windows(cal, lookback=21, train=(cal[30], cal[300]), valid=(cal[301], cal[760]))


def test_window_is_the_presets_when_inside_else_the_last_full_quarter():
    cal = sessions("2021-01-04", 785)
    w = fit_windows(cal, lookback=21, window=("2023-10-02", "2023-12-29"))
    assert w.window == (pd.Timestamp("2023-10-02"), pd.Timestamp("2023-12-29")) and "window" not in w.fitted
    w = fit_windows(cal, lookback=21, window=("2015-01-01", "2015-03-31"))   # outside: fitted
    assert w.backtest[1] == pd.Timestamp("2024-01-04")         # 4 sessions of 2024Q1: 2023Q4 is the window
    assert "window" in w.fitted and w.window == (pd.Timestamp("2023-10-02"), pd.Timestamp("2023-12-29"))
    span = (cal[0], pd.Timestamp("2021-04-05"))            # the last quarter has 2 sessions: the one before
    assert last_quarter(cal, span) == (cal[0], pd.Timestamp("2021-03-31"))


def test_check_windows_names_the_first_usable_training_day():
    """Qlib's RollingGen dies with a bare `assert tp_idx > 0` on a train start at the first session:
    the check names the dates instead."""
    cal = sessions("2021-01-04", 785)
    found = check_windows(cal, (cal[0], cal[300]), (cal[301], cal[400]), (cal[401], cal[-2]), None, lookback=19,
                          why="MinuteFactors 20-day means")
    assert len(found) == 1
    what, fix = found[0]
    assert str(cal[0].date()) in what and str(cal[19].date()) in what and "MinuteFactors" in what
    assert str(cal[19].date()) in fix and "auto" in fix


def test_check_windows_reports_every_problem():
    cal = sessions("2021-01-04", 785)
    found = check_windows(cal, ("2013-01-04", "2015-12-31"), (cal[301], cal[310]), (cal[320], cal[-1]),
                          ("2015-01-01", "2015-03-31"), lookback=20, risk_start=cal[400])
    text = "\n".join(w for w, _ in found)
    assert "train 2013-01-04 .. 2015-12-31 lies outside the dataset's calendar" in text
    assert f"backtest ends {cal[-1].date()}" in text and f"backtest starts {cal[320].date()}" in text
    assert "valid" in text and "label gap" in text
    assert "window 2015-01-01 .. 2015-03-31" in text
    assert len(found) == 5


def test_given_windows_that_fit_pass():
    cal = sessions("2021-01-04", 785)
    assert check_windows(cal, (cal[30], cal[300]), (cal[301], cal[400]), (cal[401], cal[-2]),
                         (cal[700], cal[-1]), lookback=20, risk_start=cal[147]) == []


def test_fit_rule_from_yaml():
    assert FitRule.from_config({"train_sessions": 100, "min_train": 150}).train_sessions == 150
    with pytest.raises(ValueError, match="unknown keys \\['trian'\\]"):
        FitRule.from_config({"trian": 3})
    assert risk_warmup() == 147          # momentum: 126 observations lagged 21 sessions


def test_rolling_names_a_segment_on_the_first_session():
    """Qlib's RollingGen dies with a bare `assert tp_idx > 0` (qlib/workflow/task/utils.py) on a train
    segment starting on the calendar's first session; Rolling says which segment, dates and the fix."""
    from qlib_ext.models.rolling import check_segments

    cal = sessions("2021-01-04", 300)
    segs = {"train": (cal[0], cal[100]), "valid": (cal[101], cal[150]), "test": (cal[151], cal[-1])}
    with pytest.raises(ValueError, match=r"train segment starts 2021-01-04, on or before the dataset's first "
                                         r"session 2021-01-04.*on or after 2021-01-05"):
        check_segments(segs, cal, 12)
    with pytest.raises(ValueError, match="test segment starts 2021-01-08, fewer than the 12-session label gap"):
        check_segments({"train": (cal[1], cal[2]), "test": (cal[4], cal[-1])}, cal, 12)
    check_segments({**segs, "train": (cal[1], cal[100])}, cal, 12)


def test_rolling_windows_on_a_dataset_starting_at_the_train_start(micro_market):
    import qlib_ext
    from qlib_ext.data.panel import read_calendar
    from qlib_ext.models.rolling import rolling_windows

    qlib_ext.init(micro_market)
    cal = read_calendar(micro_market)
    segs = {"train": (cal[0], cal[80]), "valid": (cal[81], cal[120]), "test": (cal[121], cal[-2])}
    with pytest.raises(ValueError, match=f"train segment starts {cal[0].date()}"):
        rolling_windows(segs, step=60, trunc_days=12)
    w = fit_windows(cal, lookback=20, rule=FitRule(train_sessions=60, valid_sessions=40, min_train=40, min_valid=30,
                                                   min_backtest=30))
    wins = rolling_windows({"train": w.train, "valid": w.valid, "test": w.backtest}, step=60, trunc_days=12)
    assert wins[0]["train"][0] == w.train[0] and wins[-1]["test"][1] == w.backtest[1]
