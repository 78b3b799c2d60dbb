"""Bad input to the performance tables (``qlib_ext.analysis.metrics.performance``): NaN days, a constant series, a
report frame without Qlib's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.analysis.metrics.performance import excess_returns, performance_summary

DAYS = pd.bdate_range("2024-01-02", periods=6)


def test_analysis_nan_excess_return_names_the_first_date():
    e = pd.Series([0.01, np.nan, 0.0, np.nan, 0.01, 0.0], index=DAYS)
    with pytest.raises(ValueError, match=r"excess returns: 2 NaN values \(first on \['2024-01-03', '2024-01-05'\]\)"):
        performance_summary(e)


def test_analysis_constant_series_gives_nan_ratios_not_infinities():
    e = pd.Series(0.001, index=DAYS)
    row = performance_summary(e)
    assert np.isnan(row["information_ratio"]) and np.isnan(row["calmar"])    # documented: no dispersion, no drawdown
    assert row["excess_max_drawdown"] == 0.0
    assert row["annualized_excess"] == pytest.approx(1.001 ** 252 - 1)


def test_analysis_report_without_qlib_columns_names_them():
    report = pd.DataFrame({"return": [0.01, 0.0]}, index=DAYS[:2])
    with pytest.raises(KeyError, match=r"report_normal lacks columns \['bench', 'cost'\]"):
        excess_returns(report)
